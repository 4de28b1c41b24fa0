"""Chemo-mechanics: learn the strain-composition law (Vegard) through the equations of elasticity.

A particle's measured lattice strain is the total strain eps(u) of the displacement that balances an
eigenstrain eps0(c) = sum_k beta_k phi_k(c) per crystal axis (cpp/elasticity.hpp): where composition is
not uniform, the particle constrains itself and eps(u) differs from eps0(c), so regressing strain on
composition pixel by pixel is biased. Because eps(u) is linear in the beta_k, each (k, axis) basis field
is solved once with the particle's factorised stiffness, and the beta_k, with a per-component strain
offset (strains are measured against a reference lattice), come from one weighted linear least squares.

Basis: phi_1(c) = c (Vegard: beta_1 is the misfit between c = 0 and c = 1), phi_k(c) = P_k(2c - 1) for
k >= 2 (Legendre terms, orthogonal to the linear law on [0, 1]). A constant is not identifiable beside
the offsets. Axes: x along image columns, y along rows; the crystal's first axis lies at ``angle`` from x.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from numpy.polynomial import legendre

from . import _core

COMPONENTS = ("e_xx", "e_yy", "e_xy", "rotation")


def plane_stress(C: np.ndarray, in_plane=(0, 2), shear: int = 4) -> np.ndarray:
    """Plane-stress stiffness (3 x 3 Voigt, engineering shear) of an orthotropic crystal with 6 x 6
    stiffness ``C`` for the plane of axes ``in_plane`` (free of stress normal to it); ``shear`` is the
    Voigt index of their shear."""
    S = np.linalg.inv(C)
    i, j = in_plane
    sub = np.array([[S[i, i], S[i, j], 0.0], [S[j, i], S[j, j], 0.0], [0.0, 0.0, S[shear, shear]]])
    return np.linalg.inv(sub)


#: LiFePO4 (Pnma; a, b, c) elastic constants in GPa, first-principles values of Maxisch and Ceder
#: (Phys. Rev. B 73, 174112, 2006), as commonly quoted
LFP_CIJ = np.array([
    [138.9, 72.4, 52.4, 0, 0, 0], [72.4, 198.0, 46.1, 0, 0, 0], [52.4, 46.1, 173.0, 0, 0, 0],
    [0, 0, 0, 36.4, 0, 0], [0, 0, 0, 0, 50.1, 0], [0, 0, 0, 0, 0, 47.6]], dtype=np.float64)
#: a platelet particle seen down b: the a-c plane, a along the first crystal axis
LFP_AC = plane_stress(LFP_CIJ, in_plane=(0, 2), shear=4)


def rotate_stiffness(Q: np.ndarray, angle: float) -> np.ndarray:
    """The Voigt stiffness ``Q`` of crystal axes turned by ``angle`` (radians) from the image axes."""
    c, s = np.cos(angle), np.sin(angle)
    T = np.array([[c * c, s * s, -2 * s * c], [s * s, c * c, 2 * s * c], [s * c, -s * c, c * c - s * s]])
    return T @ Q @ T.T


def basis(c: np.ndarray, order: int) -> np.ndarray:
    """(n, order) basis phi_1 .. phi_order of the eigenstrain law at compositions ``c``."""
    c = np.asarray(c, dtype=np.float64)
    out = [c]
    for k in range(2, order + 1):
        out.append(legendre.legval(2 * c - 1, np.eye(k + 1)[k]))
    return np.column_stack(out)


def _axis_tensor(axis: int, angle: float) -> np.ndarray:
    """Tensor (xx, yy, xy) in image axes of a unit stretch along crystal axis ``axis`` (0 or 1)."""
    t = angle + (np.pi / 2 if axis else 0.0)
    return np.array([np.cos(t) ** 2, np.sin(t) ** 2, np.sin(t) * np.cos(t)])


@dataclass
class StrainParticle:
    """Correlated maps of one particle. strain: (4, H, W) e_xx, e_yy, e_xy, rotation (NaN where not
    measured; rotation may be all NaN); composition: (H, W); mask: (H, W); composition_sigma optional."""

    name: str
    mask: np.ndarray
    strain: np.ndarray
    composition: np.ndarray
    composition_sigma: Optional[np.ndarray] = None
    pixel_size_nm: float = 1.0

    def __post_init__(self) -> None:
        where = f"particle {self.name!r}"
        self.mask = np.asarray(self.mask).astype(bool)
        self.strain = np.asarray(self.strain, dtype=np.float64)
        self.composition = np.asarray(self.composition, dtype=np.float64)
        if self.mask.ndim != 2 or not self.mask.any():
            raise ValueError(f"{where}: mask must be a non-empty 2-D map")
        if self.strain.shape != (4,) + self.mask.shape:
            raise ValueError(f"{where}: strain must be (4, H, W) = {(4,) + self.mask.shape} (e_xx, e_yy, e_xy, "
                             f"rotation), got {self.strain.shape}")
        if self.composition.shape != self.mask.shape:
            raise ValueError(f"{where}: composition must have the mask's shape {self.mask.shape}, got "
                             f"{self.composition.shape}")
        if not np.all(np.isfinite(self.composition[self.mask])):
            raise ValueError(f"{where}: composition must be finite on every particle pixel")


@dataclass
class VegardFit:
    """beta: (order, 2) eigenstrain coefficients per crystal axis; covariance of beta.ravel();
    offsets: {particle: (4,) strain offsets}; predicted, residual: {particle: (4, H, W)}."""

    beta: np.ndarray
    covariance: np.ndarray
    offsets: Dict[str, np.ndarray]
    predicted: Dict[str, np.ndarray]
    residual: Dict[str, np.ndarray]
    chi2: float
    n_obs: int
    sigma: float
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def beta_sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance)).reshape(self.beta.shape)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.n_obs - self.covariance.shape[0], 1)


class ElasticModel:
    """The particles' meshes and factorised stiffness, and their strain responses to basis eigenstrains."""

    def __init__(self, particles: Sequence[StrainParticle], stiffness: np.ndarray = LFP_AC, angle: float = 0.0):
        self.particles = list(particles)
        self.angle = float(angle)
        self.batch = _core.ElasticBatch([p.mask.astype(np.uint8) for p in self.particles],
                                        [float(p.pixel_size_nm) for p in self.particles])
        self.set_stiffness(stiffness)

    def set_stiffness(self, stiffness: np.ndarray) -> None:
        """Factorises every particle for the crystal-axes stiffness ``stiffness``."""
        self.stiffness = np.asarray(stiffness, dtype=np.float64)
        self.batch.factorize(rotate_stiffness(self.stiffness, self.angle))

    def eigenstrains(self, compositions: Sequence[np.ndarray], order: int) -> List[List[np.ndarray]]:
        """Per particle, the (n_elements, 3) eigenstrain of every basis term and axis, (k, axis) order."""
        out = []
        for c in compositions:
            phi = basis(c, order)
            out.append([phi[:, [k]] * _axis_tensor(a, self.angle)[None, :] for k in range(order) for a in (0, 1)])
        return out

    def responses(self, compositions: Sequence[np.ndarray], order: int) -> List[List[np.ndarray]]:
        """Per particle, the (n_elements, 4) strain response of every basis term and axis."""
        return self.batch.strains(self.eigenstrains(compositions, order))


def fit_vegard(particles: Sequence[StrainParticle], order: int = 1, stiffness: np.ndarray = LFP_AC,
               angle: float = 0.0, sigma: Optional[float] = None) -> VegardFit:
    """The eigenstrain law and strain offsets of ``particles`` by weighted linear least squares on the
    elastic basis responses. ``sigma``: the strain noise (the covariance then follows from it); None
    estimates it from the residuals."""
    particles = list(particles)
    model = ElasticModel(particles, stiffness, angle)
    compositions = [p.composition[p.mask] for p in particles]
    responses = model.responses(compositions, order)
    n_beta = 2 * order
    rows, data = [], []
    n_offsets = 4 * len(particles)
    for k, (p, response) in enumerate(zip(particles, responses)):
        measured = p.strain[:, p.mask].T  # (n_elements, 4)
        ok = np.isfinite(measured)
        design = np.zeros((measured.shape[0], 4, n_beta + n_offsets))
        for j, r in enumerate(response):
            design[:, :, j] = r
        for comp in range(4):
            design[:, comp, n_beta + 4 * k + comp] = 1.0
        rows.append(design[ok])
        data.append(measured[ok])
    A, y = np.concatenate(rows), np.concatenate(data)
    used = np.flatnonzero(np.abs(A).sum(axis=0) > 0)  # offsets of components nobody measured drop out
    solution, *_ = np.linalg.lstsq(A[:, used], y, rcond=None)
    x = np.zeros(A.shape[1])
    x[used] = solution
    residual = y - A @ x
    n_obs = y.size
    chi2_raw = float(residual @ residual)
    s = sigma if sigma is not None else np.sqrt(chi2_raw / max(n_obs - used.size, 1))
    cov_all = s ** 2 * np.linalg.inv(A[:, used].T @ A[:, used])
    beta = x[:n_beta].reshape(order, 2)
    predicted, residual_maps, offsets = {}, {}, {}
    for k, (p, response) in enumerate(zip(particles, responses)):
        offsets[p.name] = x[n_beta + 4 * k: n_beta + 4 * k + 4]
        pred = sum(b * r for b, r in zip(x[:n_beta], response)) + offsets[p.name]
        full = np.full((4,) + p.mask.shape, np.nan)
        full[:, p.mask] = pred.T
        predicted[p.name] = full
        residual_maps[p.name] = p.strain - full
    return VegardFit(beta, cov_all[:n_beta, :n_beta], offsets, predicted, residual_maps,
                     chi2_raw / s ** 2, n_obs, float(s), extra=dict(stiffness=model.stiffness, angle=angle))


def naive_regression(particle: StrainParticle) -> np.ndarray:
    """(slope e_xx, slope e_yy) of strain regressed on composition pixel by pixel: the misfit the data
    would suggest without elasticity (for the crystal at angle 0)."""
    c = particle.composition[particle.mask]
    out = []
    for comp in range(2):
        e = particle.strain[comp][particle.mask]
        ok = np.isfinite(e)
        out.append(np.polyfit(c[ok], e[ok], 1)[0])
    return np.array(out)


# -- synthetic particles -----------------------------------------------------------------------------
PATTERNS = ("two-phase", "core-shell", "blobs", "linear")


def synthetic_particle(pattern: str, n: int = 64, misfit=(0.05, -0.019), noise: float = 1e-3,
                       stiffness: np.ndarray = LFP_AC, seed: int = 0, name: Optional[str] = None) -> StrainParticle:
    """An elliptical particle with a composition ``pattern`` (PATTERNS) whose strain is the elastic
    response to the Vegard misfit ``misfit`` (per crystal axis, crystal along the image axes), relative
    to its median (as py4DSTEM references strain to a median lattice), with Gaussian noise ``noise``."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    rng = np.random.default_rng(seed)
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
        from scipy.ndimage import gaussian_filter
        field = gaussian_filter(rng.standard_normal((n, n)), n / 10)
        c = 0.5 * (1 + np.tanh(field / field[mask].std() / 0.5))
    else:
        c = np.clip(0.5 + 0.5 * u, 0, 1)
    c = np.where(mask, c, np.nan)
    particle = StrainParticle(name or pattern, mask, np.zeros((4, n, n)), c)
    model = ElasticModel([particle], stiffness)
    responses = model.responses([c[mask]], 1)[0]
    clean = misfit[0] * responses[0] + misfit[1] * responses[1]
    clean -= np.median(clean, axis=0)
    strain = np.full((4, n, n), np.nan)
    strain[:, mask] = (clean + noise * rng.standard_normal(clean.shape)).T
    particle.strain = strain
    return particle
