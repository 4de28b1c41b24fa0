"""The elastic model of a particle: stiffness, the eigenstrain basis, and strain responses.

A particle's measured lattice strain is the total strain eps(u) of the displacement that balances an
eigenstrain eps0(c) = sum_k beta_k phi_k(c) per crystal axis (cpp/elasticity.hpp). Because eps(u) is
linear in the beta_k, each (k, axis) basis field is solved once with the particle's factorised stiffness.

Basis: phi_1(c) = c (Vegard: beta_1 is the misfit between c = 0 and c = 1), phi_k(c) = P_k(2c - 1) for
k >= 2 (Legendre terms, orthogonal to the linear law on [0, 1]). A constant is not identifiable beside
the strain offsets. Axes: x along image columns, y along rows; the crystal's first axis lies at
``angle`` (radians, counter-clockwise in (x, y)) from x.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from numpy.polynomial import legendre

from .. import _core

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


def voigt_rotation(angle: float) -> np.ndarray:
    """T with which a Voigt stiffness of crystal axes at ``angle`` (radians) from the image axes reads
    T Q T^T in image axes."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c * c, s * s, -2 * s * c], [s * s, c * c, 2 * s * c], [s * c, -s * c, c * c - s * s]])


def rotate_stiffness(Q: np.ndarray, angle: float) -> np.ndarray:
    """The Voigt stiffness ``Q`` of crystal axes turned by ``angle`` (radians) from the image axes."""
    T = voigt_rotation(angle)
    return T @ Q @ T.T


def displacement_gradient(strain: np.ndarray) -> np.ndarray:
    """(..., 2, 2) displacement gradient [[e_xx, e_xy - w], [e_xy + w, e_yy]] of (4, ...) strain."""
    exx, eyy, exy, w = strain
    return np.stack([np.stack([exx, exy - w], -1), np.stack([exy + w, eyy], -1)], -2)


def strain_components(gradient: np.ndarray) -> np.ndarray:
    """(4, ...) e_xx, e_yy, e_xy, rotation of a (..., 2, 2) displacement gradient."""
    H = gradient
    return np.stack([H[..., 0, 0], H[..., 1, 1], 0.5 * (H[..., 0, 1] + H[..., 1, 0]),
                     0.5 * (H[..., 1, 0] - H[..., 0, 1])])


def relative_to_reference(strain: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(n, 4) strain measured against a reference lattice strained by ``reference`` (n, 4 or 4,): the
    deformation (I + H)(I + G)^-1 - I, as a diffraction measurement relative to a reference lattice
    reads it (py4DSTEM divides by the median lattice)."""
    F = np.eye(2) + displacement_gradient(np.asarray(strain, dtype=np.float64).T)
    G = np.eye(2) + displacement_gradient(np.broadcast_to(reference, np.shape(strain)).T)
    return strain_components(F @ np.linalg.inv(G) - np.eye(2)).T


def undo_reference(measured: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The inverse of :func:`relative_to_reference`: (I + H_m)(I + G) - I. Components not measured (NaN)
    stay NaN; they enter the others' correction as 0 (a second-order term)."""
    measured = np.asarray(measured, dtype=np.float64)
    F = np.eye(2) + displacement_gradient(np.nan_to_num(measured).T)
    G = np.eye(2) + displacement_gradient(np.broadcast_to(reference, measured.shape).T)
    return np.where(np.isnan(measured), np.nan, strain_components(F @ G - np.eye(2)).T)


def basis(c: np.ndarray, order: int) -> np.ndarray:
    """(n, order) basis phi_1 .. phi_order of the eigenstrain law at compositions ``c``."""
    c = np.asarray(c, dtype=np.float64)
    out = [c]
    for k in range(2, order + 1):
        out.append(legendre.legval(2 * c - 1, np.eye(k + 1)[k]))
    return np.column_stack(out)


def axis_tensor(axis: int, angle: float) -> np.ndarray:
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
        if self.composition_sigma is not None:
            self.composition_sigma = np.asarray(self.composition_sigma, dtype=np.float64)
            if self.composition_sigma.shape != self.mask.shape:
                raise ValueError(f"{where}: composition_sigma must have the mask's shape {self.mask.shape}, got "
                                 f"{self.composition_sigma.shape}")
            sigma = self.composition_sigma[self.mask]
            if not np.all(np.isfinite(sigma) & (sigma >= 0)):
                raise ValueError(f"{where}: composition_sigma must be finite and >= 0 on every particle pixel")
        if not (np.isfinite(self.pixel_size_nm) and self.pixel_size_nm > 0):
            raise ValueError(f"{where}: pixel_size_nm must be positive, got {self.pixel_size_nm}")
        if not np.isfinite(self.measured).any():
            raise ValueError(f"{where}: no strain is measured on the particle")

    @property
    def measured(self) -> np.ndarray:
        """(n_pixels, 4) strain on the particle's pixels (row-major), NaN where not measured."""
        return self.strain[:, self.mask].T


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
            out.append([phi[:, [k]] * axis_tensor(a, self.angle)[None, :] for k in range(order) for a in (0, 1)])
        return out

    def responses(self, compositions: Sequence[np.ndarray], order: int) -> List[List[np.ndarray]]:
        """Per particle, the (n_elements, 4) strain response of every basis term and axis."""
        return self.batch.strains(self.eigenstrains(compositions, order))

    def eigenstrain(self, composition: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """(n_elements, 3) eigenstrain of the law ``beta`` (order, 2) at ``composition``."""
        phi = basis(composition, beta.shape[0]) @ beta  # (n, 2) misfit per crystal axis
        return phi[:, [0]] * axis_tensor(0, self.angle) + phi[:, [1]] * axis_tensor(1, self.angle)

    def offset_groups(self) -> List[np.ndarray]:
        """Per particle, (n_elements, 4) labels of the pixels that share a strain offset: one per strain
        component (the image's reference lattice), and one rotation per 4-connected piece (each piece is
        its own rigid body)."""
        out = []
        for k in range(len(self.particles)):
            piece = np.asarray(self.batch.component(k))
            groups = np.empty((piece.size, 4), dtype=np.int64)
            groups[:, :3] = np.arange(3)
            groups[:, 3] = 3 + piece
            out.append(groups)
        return out
