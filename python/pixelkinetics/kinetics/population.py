"""Populations of particles in one electrode, simulated: a population driven at a current, and synthetic
population data with their truth.

A population is one movie of edge-less sites (MODEL.md section 1; :meth:`Movie.population`): every particle
is one homogeneous site with its own rate factor theta_i, all share the electrode potential V(t), and the
group mean is weighted by particle size (B = 0: the coherency term belongs inside one particle).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .movie import Movie
from .params import Params
from .problem import Problem


def simulate_driven(params: Params, start: np.ndarray, current: float, time: np.ndarray,
                    size: Optional[np.ndarray] = None, theta: Optional[np.ndarray] = None, scheme: str = "bdf2",
                    n_sub: int = 100, newton_tol: float = 1e-12) -> np.ndarray:
    """(T, N) fractions of particles started at ``start`` (N,) whose size-weighted mean the electrode drives
    at ``current`` (dc/dt, 1/s) over the frame ``time`` (T,), with rate factors ``theta`` (N,)."""
    frames = np.tile((np.average(start, weights=size) + current * time)[:, None], (1, start.size))
    frames[0] = start
    movie = Movie.population("driven", frames, time, size=size, current=np.full(time.size, current))
    problem = Problem([movie], scheme=scheme, n_sub=n_sub, newton_tol=newton_tol)
    return problem.simulate(params, None if theta is None else {"driven": theta[None, :]})["driven"][:, 0, :]


def synthetic_population(params: Params, n_particles: int = 60, n_frames: int = 8, current: float = -2e-3,
                         c_start: float = 0.9, spread: float = 0.02, theta_std: float = 0.3, noise: float = 0.01,
                         kind: str = "tracked", observed: float = 0.7, scheme: str = "bdf2", n_sub: int = 40,
                         seed: int = 0, name: str = "population"):
    """A population driven at constant ``current`` (dc/dt, 1/s) from mean ``c_start`` over the time the
    mean needs to move by 0.6 in the current's direction, simulated with the core and observed with Gaussian
    noise. Particles have log-normal sizes, rate factors theta ~ N(0, theta_std^2) and initial fractions
    spread by ``spread``. ``kind="snapshot"`` keeps a random ``observed`` share of the particles in each
    frame, shuffled (unlinked). Returns (population movie, truth dict: params, theta (N,), clean (T, N))."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0.0, 0.6 / abs(current), n_frames)
    # a snapshot carries no particle identity, hence no sizes the model could weight: its electrode has
    # equal particles
    size = rng.lognormal(0.0, 0.3, n_particles) if kind == "tracked" else np.ones(n_particles)
    c0 = np.clip(c_start + spread * rng.standard_normal(n_particles), 0.01, 0.99)
    theta = theta_std * rng.standard_normal(n_particles)
    clean = simulate_driven(params, c0, current, time, size=size, theta=theta, scheme=scheme, n_sub=n_sub)
    noisy = clean + noise * rng.standard_normal(clean.shape)
    if kind == "snapshot":
        shown = np.full_like(noisy, np.nan)
        for f in range(n_frames):
            keep = rng.permutation(n_particles)[: max(1, int(round(observed * n_particles)))]
            shown[f, : keep.size] = noisy[f, keep]
        noisy = shown
    population = Movie.population(name, noisy, time, size=None if kind == "snapshot" else size,
                                  current=np.full(n_frames, current), kind=kind)
    return population, dict(params=params, theta=theta, clean=clean, size=size)


def simulate_population(params: Params, c: float, current: float, travel: float, n_particles: int = 100,
                        spread: float = 0.005, n_frames: int = 3, n_sub: int = 100, seed: int = 0) -> np.ndarray:
    """(n_frames, n_particles) fractions of a population of equal particles started around mean ``c``
    (normal spread ``spread``) and driven at ``current`` while its mean moves by ``travel``."""
    rng = np.random.default_rng(seed)
    start = np.clip(c + spread * rng.standard_normal(n_particles), 0.01, 0.99)
    return simulate_driven(params, start, current, np.linspace(0.0, abs(travel / current), n_frames), n_sub=n_sub)
