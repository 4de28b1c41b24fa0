"""Synthetic correlated strain and composition maps with a known law, for tests, demos and benchmarks."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.ndimage import gaussian_filter

from .elastic import LFP_AC, ElasticModel, StrainParticle, relative_to_reference

PATTERNS = ("two-phase", "core-shell", "blobs", "linear")
#: LiFePO4-like Vegard misfit: +5.0% along a, -1.9% along c
LFP_MISFIT = (0.05, -0.019)


def composition_pattern(pattern: str, n: int, rng: np.random.Generator):
    """(mask, composition) of an elliptical particle of n x n pixels with a composition ``pattern``."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    y, x = np.mgrid[0:n, 0:n] + 0.5
    u, v = (x - n / 2) / (0.44 * n), (y - n / 2) / (0.34 * n)
    r = np.hypot(u, v)
    mask = r < 1
    width = 1.5 / (0.44 * n)  # interfaces about 1.5 pixels wide
    if pattern == "two-phase":
        c = 0.5 * (1 + np.tanh((0.15 - u) / width))
    elif pattern == "core-shell":
        c = 0.5 * (1 + np.tanh((r - 0.6) / width))
    elif pattern == "blobs":
        field = gaussian_filter(rng.standard_normal((n, n)), n / 10)
        c = 0.5 * (1 + np.tanh(field / field[mask].std() / 0.5))
    else:
        c = np.clip(0.5 + 0.5 * u, 0, 1)
    return mask, np.where(mask, c, np.nan)


def synthetic_particle(pattern: str, n: int = 64, misfit=LFP_MISFIT, noise: float = 1e-3,
                       stiffness: np.ndarray = LFP_AC, angle: float = 0.0, composition_noise: float = 0.0,
                       pixel_size_nm: float = 10.0, seed: int = 0, name: Optional[str] = None) -> StrainParticle:
    """A particle with a composition ``pattern`` (PATTERNS) whose strain is the elastic response to the
    Vegard ``misfit`` (per crystal axis, the crystal at ``angle`` from the image x axis), measured against
    its median lattice (as py4DSTEM does: a product, (I + H)(I + H_median)^-1 - I), with Gaussian noise
    ``noise``. With
    ``composition_noise`` the composition map given is the truth plus that noise, with its sigma."""
    rng = np.random.default_rng(seed)
    mask, c = composition_pattern(pattern, n, rng)
    particle = StrainParticle(name or pattern, mask, np.zeros((4, n, n)), c, pixel_size_nm=pixel_size_nm)
    model = ElasticModel([particle], stiffness, angle)
    responses = model.responses([c[mask]], 1)[0]
    clean = misfit[0] * responses[0] + misfit[1] * responses[1]
    clean = relative_to_reference(clean, np.median(clean, axis=0))
    strain = np.full((4, n, n), np.nan)
    strain[:, mask] = (clean + noise * rng.standard_normal(clean.shape)).T
    particle.strain = strain
    if composition_noise > 0:
        particle.composition = np.where(mask, c + composition_noise * rng.standard_normal(c.shape), np.nan)
        particle.composition_sigma = np.where(mask, composition_noise, np.nan)
    return particle
