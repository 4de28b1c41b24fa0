"""Synthetic particles and movies with a known ground truth, generated in code.

Particles are irregular blobs; the log-rate field theta is a smooth random field that follows a
synthetic carbon-coating thickness map (as found in the published work); movies are simulated with
the core and then corrupted with Gaussian noise and, optionally, missing pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy import ndimage

from .files import write_movies
from .movie import Movie
from .params import Params
from .problem import Problem

#: Ground truth of ``synth`` and ``demo``: a j0(c) with a learned shape (b1, b2) on the sqrt base.
SYNTH_TRUTH = dict(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0, 0.5, -0.3], j0_base="sqrt")


@dataclass
class SyntheticTruth:
    """What generated a synthetic data set."""

    params: Params
    theta: Dict[str, np.ndarray]           #: (H, W) maps, NaN off the mask
    concentration: Dict[str, np.ndarray]   #: noise-free movies (T, H, W)
    settings: Dict[str, object] = field(default_factory=dict)


def particle_mask(rng: np.random.Generator, n_sites: int) -> np.ndarray:
    """A connected, irregular blob of about ``n_sites`` pixels (a rotated, wobbly ellipse)."""
    aspect = rng.uniform(1.0, 2.0)
    semi_minor = np.sqrt(n_sites / (np.pi * aspect))
    semi_major = aspect * semi_minor
    size = int(np.ceil(2 * semi_major)) + 6
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    phi = np.arctan2(v, u)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    wobble = 1.0 + 0.08 * np.sin(3 * phi + phase[0]) + 0.05 * np.sin(5 * phi + phase[1])
    mask = (u / semi_major) ** 2 + (v / semi_minor) ** 2 <= wobble ** 2
    labels, n = ndimage.label(mask)
    if n > 1:  # keep the largest connected piece
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    rows, cols = np.nonzero(mask)
    return mask[rows.min() - 1:rows.max() + 2, cols.min() - 1:cols.max() + 2] if rows.min() > 0 else mask


def smooth_field(rng: np.random.Generator, shape: Tuple[int, int], length: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``length`` pixels."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), length, mode="reflect")
    f -= f.mean()
    return f / (f.std() + 1e-300)


def make_movies(
    n_particles: int = 8,
    sites: Tuple[int, int] = (300, 700),
    n_frames: int = 8,
    t_end: float = 70.0,
    params: Optional[Params] = None,
    theta_std: float = 0.5,
    noise: float = 0.02,
    missing: float = 0.0,
    driving: str = "rate",
    c_start: float = 0.1,
    c_end: float = 0.9,
    scheme: str = "be",
    n_sub: int = 20,
    seed: int = 0,
) -> Tuple[List[Movie], SyntheticTruth]:
    """Noisy synthetic movies with their ground truth.

    Each particle is lithiated from about ``c_start`` to ``c_end`` over ``t_end`` seconds (rate driving:
    the mean follows a slightly particle-dependent ramp; potential driving: a voltage ramp). theta is
    a smooth field with standard deviation ``theta_std``; the carbon-thickness map is an affine image of
    it plus 10% independent structure. ``missing`` is the fraction of pixels dropped (NaN) per frame.
    """
    rng = np.random.default_rng(seed)
    params = params or Params(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0], j0_base="sqrt")
    times = np.linspace(0.0, t_end, n_frames)
    clean_movies, thetas, thickness = [], {}, {}
    for k in range(n_particles):
        name = f"particle_{k:03d}"
        mask = particle_mask(rng, int(rng.integers(sites[0], sites[1] + 1)))
        field_ = smooth_field(rng, mask.shape, length=3.0)
        theta = np.where(mask, theta_std * field_, np.nan)
        thetas[name] = theta
        carbon = 5.0 + 2.0 * field_ + 0.2 * smooth_field(rng, mask.shape, length=2.0)
        thickness[name] = np.where(mask, carbon, np.nan)
        c0 = np.clip(c_start + 0.02 * rng.standard_normal(mask.shape), 0.01, 0.99)
        frames = np.empty((n_frames,) + mask.shape)
        frames[0] = c0
        # Rate driving only needs the frame means; they ramp with a particle-dependent curvature.
        s = np.linspace(0.0, 1.0, n_frames)
        bend = rng.uniform(-0.3, 0.3)
        means = c_start + (c_end - c_start) * (s + bend * s * (1 - s))
        frames[1:] = means[1:, None, None]
        voltage = None
        if driving == "potential":
            voltage = np.linspace(-1.0, -3.0, n_frames)
        clean_movies.append(Movie(name, mask, np.where(mask, frames, np.nan), times, driving=driving,
                                  voltage=voltage, carbon_thickness=thickness[name]))

    truth_conc = Problem(clean_movies, scheme=scheme, n_sub=n_sub).simulate(params, thetas)
    movies = observe(clean_movies, truth_conc, noise, missing, rng)
    truth = SyntheticTruth(params=params, theta=thetas, concentration=truth_conc,
                           settings=dict(noise=noise, missing=missing, scheme=scheme, n_sub=n_sub, seed=seed))
    return movies, truth


def observe(movies: List[Movie], clean: Dict[str, np.ndarray], noise: float, missing: float = 0.0,
            rng: "np.random.Generator | int" = 0) -> List[Movie]:
    """Copies of ``movies`` whose frames are the noise-free ``clean`` movies plus Gaussian noise of standard
    deviation ``noise``, with a fraction ``missing`` of the pixels of every frame dropped (NaN); many
    draws from one truth calibrate the uncertainty estimates."""
    rng = np.random.default_rng(rng)
    out = []
    for m in movies:
        frames = clean[m.name]
        noisy = frames + noise * rng.standard_normal(frames.shape)
        if missing > 0:
            drop = rng.random(frames.shape) < missing
            drop[:, ~m.mask] = False
            first_pixel = tuple(np.argwhere(m.mask)[0])
            for f in range(drop.shape[0]):  # every frame keeps at least one pixel
                if drop[f][m.mask].all():
                    drop[f][first_pixel] = False
            noisy[drop] = np.nan
        noisy = np.where(m.mask, noisy, np.nan)
        out.append(Movie(m.name, m.mask, noisy, m.time, driving=m.driving, voltage=m.voltage,
                         carbon_thickness=m.carbon_thickness))
    return out


def synth(output: "Optional[str | os.PathLike]" = None, *, particles: int = 40, sites: Tuple[int, int] = (300, 700),
          frames: int = 8, noise: float = 0.02, missing: float = 0.0, driving: str = "rate", scheme: str = "bdf2",
          n_sub: int = 40, seed: int = 0) -> Tuple[List[Movie], SyntheticTruth]:
    """Synthetic movies of :data:`SYNTH_TRUTH` with their ground truth (``pixelkinetics synth``), written
    with the truth under ``/truth`` to ``output`` when given. The truth is integrated with ``scheme`` at
    ``n_sub`` steps per frame, finer than a fit's default, so that a fit never sees its own discretisation."""
    movies, truth = make_movies(n_particles=particles, sites=tuple(sites), n_frames=frames, noise=noise,
                                missing=missing, driving=driving, params=Params(**SYNTH_TRUTH), scheme=scheme,
                                n_sub=n_sub, seed=seed)
    if output is not None:
        write_movies(output, movies, truth)
    return movies, truth
