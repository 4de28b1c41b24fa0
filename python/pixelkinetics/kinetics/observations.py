"""What the loss sees of a movie (MODEL.md section 7): which frames are fitted, the initial state, the rate
drive, the weight of every observation, and the matching of snapshot observations to model particles.

Every part of the package that counts observations, draws residuals or builds the core's input takes these
rules from here; the frame rule itself is the core's (``SolverSettings::first_fitted_frame``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _core
from .movie import Movie

#: Initial concentrations are clipped into [EPS, 1 - EPS] (MODEL.md section 7).
EPS = 1e-3


def first_fitted_frame(fit_initial: bool) -> int:
    """The first frame in the loss: 0 when the initial state is fitted, else 1 (frame 0 then only sets the
    initial state)."""
    settings = _core.SolverSettings()
    settings.fit_initial = bool(fit_initial)
    return settings.first_fitted_frame()


def count_observations(movies: Sequence[Movie], fit_initial: bool) -> int:
    """Observed values (non-NaN pixels on the masks) in the frames of the loss."""
    first = first_fitted_frame(fit_initial)
    return int(sum(np.isfinite(m.concentration[first:][:, m.mask]).sum() for m in movies))


def observation_weight(movie: Movie, sigma: float) -> np.ndarray:
    """(T, n_sites) loss weight w_{f,i} of every observation: 0 where missing, (sigma / sigma_{f,i})^2 with a
    per-pixel sigma, else 1."""
    observed = movie.concentration[:, movie.mask]
    weight = np.isfinite(observed).astype(np.float64)
    if movie.sigma is not None:
        s = movie.sigma[:, movie.mask]
        weight = np.where(weight > 0, (sigma / np.where(weight > 0, s, 1.0)) ** 2, 0.0)
    return weight


def initial_condition(movie: Movie, sigma: float = 0.0) -> np.ndarray:
    """c^0 on the sites: missing first-frame pixels take the observed mean, then clip into (0, 1). Snapshot
    observations give the frame-0 quantiles at levels (k + 1/2) / N instead, drawn in towards their mean
    so that their variance loses the noise's ``sigma``^2 (the measured distribution is the particles'
    broadened by the noise)."""
    c0 = movie.concentration[0][movie.mask].copy()
    missing = ~np.isfinite(c0)
    if movie.kind == "snapshot":
        values = np.sort(c0[~missing])
        c0 = np.interp((np.arange(c0.size) + 0.5) / c0.size, (np.arange(values.size) + 0.5) / values.size, values)
        variance = c0.var()
        if variance > 0:
            c0 = c0.mean() + (c0 - c0.mean()) * np.sqrt(max(variance - sigma ** 2, 0.0) / variance)
        return np.clip(c0, EPS, 1.0 - EPS)
    if missing.any():
        c0[missing] = np.mean(c0[~missing])
    return np.clip(c0, EPS, 1.0 - EPS)


def site_weight(movie: Movie) -> np.ndarray:
    """Weights of the group mean on the sites (particle volumes of a population; default 1)."""
    return np.ones(movie.n_sites) if movie.site_weight is None else movie.site_weight[movie.mask]


def rate_drive(movie: Movie, c0: np.ndarray) -> np.ndarray:
    """(T,) the group mean that rate driving prescribes at the frame times: the mean of c^0 at frame 0, then
    the movie's mean path or the weighted means of the observed pixels, clipped into [EPS, 1 - EPS]."""
    weight = site_weight(movie)
    observed = movie.concentration[:, movie.mask]
    path = movie.mean_path
    later = path[1:] if path is not None else [_weighted_mean(observed[f], weight)
                                               for f in range(1, movie.shape[0])]
    return np.clip(np.array([_weighted_mean(c0, weight), *later]), EPS, 1.0 - EPS)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values)
    return float(np.sum(values[ok] * weights[ok]) / np.sum(weights[ok]))


#: Noisy copies of each model value in the comparison of snapshot distributions.
BLUR_COPIES = 8


def quantile_match(observed: np.ndarray, model: np.ndarray, blur: Optional[np.ndarray] = None):
    """(targets, weights) per frame and site for unlinked observations ``observed`` (T, N) with NaN where
    nothing was measured. Without ``blur``, site i of frame f meets the observed quantile at level
    (r + 1/2) / N, r the rank of model[f, i] in its frame. With ``blur`` (T, N, R), each site stands for
    R noisy copies model[f, i] + blur[f, i, r]; the N R copies meet the quantiles at levels
    (r + 1/2) / (N R), and the site's target is the mean over its copies of quantile - blur (the least
    squares of the copies, up to a constant). Weights are n_f / N (n_f measured values)."""
    T, N = model.shape
    copies = model[:, :, None] if blur is None else model[:, :, None] + blur
    R = copies.shape[2]
    out = np.zeros((T, N))
    weight = np.zeros((T, N))
    levels = (np.arange(N * R) + 0.5) / (N * R)
    for f in range(T):
        values = np.sort(observed[f][np.isfinite(observed[f])])
        if not values.size:
            continue
        matched = np.empty(N * R)
        matched[np.argsort(copies[f].ravel(), kind="stable")] = np.interp(
            levels, (np.arange(values.size) + 0.5) / values.size, values)
        shift = matched.reshape(N, R) - copies[f] + model[f][:, None]
        out[f] = shift.mean(axis=1)
        weight[f] = values.size / N
    return out, weight
