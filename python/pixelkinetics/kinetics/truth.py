"""Comparison with a ground truth (synthetic data): one definition of a parameter's error, the correlation
of theta maps, and the recovery lines shown after a fit of synthetic data."""
from __future__ import annotations

from typing import List, Mapping, Tuple

import numpy as np

from .params import Params


def parameter_error(value: float, truth: float) -> Tuple[float, bool]:
    """(error, relative): (value - truth) / |truth|, or value - truth where the truth is 0 (relative False).
    Positive: the fit is above the truth, whatever the truth's sign."""
    if truth != 0:
        return (value - truth) / abs(truth), True
    return value - truth, False


def format_error(value: float, truth: float) -> str:
    """:func:`parameter_error` as text: "+5%", or "+0.1 (abs)" where the truth is 0."""
    error, relative = parameter_error(value, truth)
    return f"{100 * error:+.3g}%" if relative else f"{error:+.3g} (abs)"


def true_value(truth: Params, name: str) -> float:
    """The true value of a global; a Legendre coefficient the true set lacks counts as 0."""
    return truth.values().get(name, 0.0)


def theta_correlation(theta_a: Mapping[str, np.ndarray], theta_b: Mapping[str, np.ndarray],
                      masks: Mapping[str, np.ndarray], remove_mean: bool = True) -> float:
    """Pearson correlation of two sets of per-particle maps, pooled over the mask pixels of every particle
    in ``masks`` where both maps are finite.

    With ``remove_mean`` each particle's mean (over those pixels) is taken off both maps first, so only the
    pattern within particles counts, not particle-to-particle offsets (which k0 and the mean of theta
    trade against each other). NaN when fewer than two pixels remain or either side is constant.
    Raises KeyError when a particle of ``masks`` has no map in ``theta_a`` or ``theta_b``.
    """
    return pearson(*pooled(theta_a, theta_b, masks, remove_mean))


def pooled(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray],
           remove_mean: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Values of two map sets at the mask pixels where both are finite, pooled over the particles of
    ``masks``; ``remove_mean`` takes each particle's mean off both."""
    xs, ys = [np.empty(0)], [np.empty(0)]
    for name, mask in masks.items():
        for maps in (a, b):
            if name not in maps:
                raise KeyError(f"no map for particle {name!r}")
        mask = np.asarray(mask, dtype=bool)
        x, y = np.asarray(a[name], dtype=float)[mask], np.asarray(b[name], dtype=float)[mask]
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if remove_mean and x.size:
            x, y = x - x.mean(), y - y.mean()
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN for fewer than two points or a constant side."""
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if denominator == 0:
        return float("nan")
    return float(np.clip(np.sum(dx * dy) / denominator, -1.0, 1.0))


def recovery_lines(results) -> List[str]:
    """How well a fit of synthetic data recovered its truth: the theta correlation and, per free global, the
    fitted and true values and the error (``results``: :class:`~pixelkinetics.kinetics.results.Results`
    with a truth)."""
    true_params, true_theta = results.truth
    masks = {n: p.mask for n, p in results.particles.items() if n in true_theta}
    fitted = {n: results.particles[n].theta for n in masks}
    corr = theta_correlation(fitted, true_theta, masks, remove_mean=True)
    lines = [f"theta correlation with the truth (per-particle means removed): {corr:.4f}"]
    for name in results.fit["free"]:
        t, v = true_value(true_params, name), results.params.value(name)
        lines.append(f"{name:6s} fitted {v:9.4g}   truth {t:9.4g}   error {format_error(v, t)}")
    return lines
