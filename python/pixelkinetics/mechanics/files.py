"""Strain files: correlated strain and composition maps in, fitted laws and residual maps out.

Input (any HDF5 file with a ``/strain`` group; one subgroup per particle or field of view)::

    /strain                      attrs: angle_deg    crystal axis 1 from the image x axis (default 0)
                                        stiffness    (3, 3) plane-stress Voigt stiffness of the crystal
                                                     axes (default LiFePO4 a-c); only ratios matter
                                        strain_sigma strain noise (default: estimated from the residuals)
    /strain/<name>               attrs: pixel_size_nm (required), convention "real" (default) or "py4dstem"
        e_xx, e_yy, e_xy         (H, W) strain; NaN where not measured
        rotation                 (H, W) optional ("theta" also read for py4dstem)
        mask                     (H, W) nonzero on the particle
        composition              (H, W) lithium fraction, finite on the particle
        composition_sigma        (H, W) optional

Axes: x along image columns, y along rows, rotation = (d u_y/dx - d u_x/dy) / 2; ``angle_deg`` is from
the image x axis in either convention. Pixels not measured are NaN (``mask`` is the particle's outline,
not a fit-quality flag: apply py4DSTEM's own mask as NaN before writing).

Convention "py4dstem" reads maps as py4DSTEM's strain step writes them (``e_xx`` or ``exx``, ..., and
``theta``): e = I - beta from the transformation beta of the reciprocal lattice (g = beta g_ref), in
diffraction-space axes with x = Qx along the first array axis (rows). These must be calibrated to the
scan (the real-to-diffraction rotation and flip removed, no extra coordinate rotation), so that Qx, Qy
run along the scan's rows and columns. The maps are converted exactly to the real-space displacement
gradient H = beta^-T - I in the axes above (a real stretch s, which py4DSTEM reports as s / (1 + s),
reads s again); without ``theta`` the rotation is taken as 0, exact only to first order.

The fit takes every strain as measured against a reference lattice (py4DSTEM's median lattice), as a
product (I + H)(I + G)^-1 - I with G fitted per particle, and lets every rigid piece rotate.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import h5py
import numpy as np

from ..floor.hdf5 import atomic_h5, attr_str, attributes, open_file, read_dataset
from .elastic import COMPONENTS, LFP_AC, StrainParticle, displacement_gradient, strain_components

if TYPE_CHECKING:  # annotations only: the writer needs no fitting code
    from .vegard import Prediction, VegardFit

CONVENTIONS = ("real", "py4dstem")


_SWAP = np.array([[0.0, 1.0], [1.0, 0.0]])  # py4DSTEM's x is the first array axis (rows): our y


def from_py4dstem(e_xx, e_yy, e_xy, theta) -> np.ndarray:
    """(4, ...) real-space strain in pixelkinetics axes of py4DSTEM's reciprocal-space strain maps."""
    e_xx, e_yy, e_xy, theta = (np.asarray(a, dtype=np.float64) for a in (e_xx, e_yy, e_xy, theta))
    beta = np.stack([np.stack([1 - e_xx, theta - e_xy], -1), np.stack([-theta - e_xy, 1 - e_yy], -1)], -2)
    ok = np.all(np.isfinite(beta), axis=(-2, -1))
    H = np.full(beta.shape, np.nan)
    H[ok] = np.swapaxes(np.linalg.inv(beta[ok]), -2, -1) - np.eye(2)
    return strain_components(_SWAP @ H @ _SWAP)


def to_py4dstem(strain: np.ndarray) -> np.ndarray:
    """(4, ...) py4DSTEM e_xx, e_yy, e_xy, theta of real-space strain in pixelkinetics axes (the inverse
    of :func:`from_py4dstem`)."""
    F = _SWAP @ displacement_gradient(np.asarray(strain, dtype=np.float64)) @ _SWAP + np.eye(2)
    ok = np.all(np.isfinite(F), axis=(-2, -1))
    beta = np.full(F.shape, np.nan)
    beta[ok] = np.swapaxes(np.linalg.inv(F[ok]), -2, -1)
    return np.stack([1 - beta[..., 0, 0], 1 - beta[..., 1, 1], -0.5 * (beta[..., 0, 1] + beta[..., 1, 0]),
                     0.5 * (beta[..., 0, 1] - beta[..., 1, 0])])


class StrainData:
    """The particles of a strain file and its settings."""

    def __init__(self, particles: List[StrainParticle], angle: float, stiffness: np.ndarray,
                 strain_sigma: Optional[float], truth: Optional[dict] = None):
        self.particles, self.angle, self.stiffness = particles, angle, stiffness
        self.strain_sigma, self.truth = strain_sigma, truth


def read_strain(path: "str | os.PathLike") -> StrainData:
    """Read and validate ``/strain`` of ``path``; errors name the file, the dataset and what is wrong."""
    path = os.fspath(path)
    with open_file(path) as f:
        if "strain" not in f or not isinstance(f["strain"], h5py.Group):
            raise ValueError(f"{path}: no /strain group of particles (see pixelkinetics.mechanics.files)")
        root = f["strain"]
        angle = _number_attr(root, "angle_deg", path, default=0.0)
        stiffness = _number_attr(root, "stiffness", path, default=LFP_AC, shape=(3, 3))
        if not np.allclose(stiffness, stiffness.T) or not np.all(np.linalg.eigvalsh(stiffness) > 0):
            raise ValueError(f"{path}: /strain attribute stiffness must be a symmetric positive definite 3 x 3 "
                             f"matrix, got {stiffness.tolist()}")
        sigma = _number_attr(root, "strain_sigma", path, default=None)
        if sigma is not None and not sigma > 0:
            raise ValueError(f"{path}: /strain attribute strain_sigma must be positive, got {sigma}")
        particles = []
        for name, group in root.items():
            if not isinstance(group, h5py.Group):
                raise ValueError(f"{path}: {group.name} must be a group of datasets")
            try:
                particles.append(_read_particle(name, group, path))
            except ValueError as exc:
                text = str(exc)
                raise ValueError(text if text.startswith(path) else f"{path}: {group.name}: {text}") from None
            except TypeError as exc:
                raise ValueError(f"{path}: {group.name}: datasets must be numeric ({exc})") from None
        if not particles:
            raise ValueError(f"{path}: /strain holds no particles")
        truth = dict(f["truth"].attrs) if "truth" in f else None
    return StrainData(particles, np.deg2rad(angle), stiffness, None if sigma is None else float(sigma), truth)


def _number_attr(group: h5py.Group, name: str, path: str, default, shape=()):
    """A finite number (or array of ``shape``) attribute of ``group``, else a ValueError naming it."""
    if name not in group.attrs:
        return None if default is None else np.asarray(default, dtype=np.float64) if shape else float(default)
    raw = group.attrs[name]
    try:
        value = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.shape != shape or not np.all(np.isfinite(value)):
        what = "a finite number" if shape == () else f"a finite {' x '.join(map(str, shape))} array"
        raise ValueError(f"{path}: {group.name} attribute {name} must be {what}, got {raw!r}")
    return float(value) if shape == () else value


def _read_particle(name: str, group: h5py.Group, path: str) -> StrainParticle:
    convention = attr_str(group, "convention", "real")
    if convention not in CONVENTIONS:
        raise ValueError(f"attribute convention must be one of {CONVENTIONS}, got {convention!r}")
    if "pixel_size_nm" not in group.attrs:
        raise ValueError("attribute pixel_size_nm is missing")
    pixel_size = _number_attr(group, "pixel_size_nm", path, default=None)
    mask = read_dataset(group, "mask", path)
    if mask.ndim != 2:
        raise ValueError(f"{path}: {group.name}/mask must be 2-D, got shape {mask.shape}")
    if not np.all(np.isfinite(mask)):
        raise ValueError(f"{path}: {group.name}/mask must be 0 off and nonzero on the particle, found NaN")
    fields = []
    for key in COMPONENTS:
        names = [key]
        if convention == "py4dstem":
            names += ["theta"] if key == "rotation" else [key.replace("_", "")]
        found = next((n for n in names if n in group), None)
        values = read_dataset(group, found or key, path, required=key != "rotation")
        if values is None:
            values = np.full(mask.shape, np.nan)
        if values.shape != mask.shape:
            raise ValueError(f"{path}: {group.name}/{found or key} has shape {values.shape}, the mask {mask.shape}")
        fields.append(np.asarray(values, dtype=np.float64))
    strain = np.stack(fields)
    if convention == "py4dstem":
        no_rotation = np.isnan(strain[3])
        strain = from_py4dstem(*strain[:3], np.where(no_rotation, 0.0, strain[3]))
        strain[3][no_rotation] = np.nan
    composition = read_dataset(group, "composition", path)
    sigma = read_dataset(group, "composition_sigma", path, required=False)
    c = composition[mask != 0]
    if np.any(np.isfinite(c)) and (np.nanmin(c) < -0.2 or np.nanmax(c) > 1.2):
        raise ValueError(f"{path}: {group.name}/composition runs from {np.nanmin(c):g} to {np.nanmax(c):g}: it must "
                         f"be a lithium fraction in [0, 1] (not percent)")
    try:
        return StrainParticle(name, mask != 0, strain, composition, sigma, pixel_size)
    except ValueError as exc:  # the particle names itself; the caller names the file and group
        raise ValueError(str(exc).removeprefix(f"particle {name!r}: ")) from None


def write_strain(path: "str | os.PathLike", particles: Sequence[StrainParticle], angle: float = 0.0,
                 stiffness: Optional[np.ndarray] = None, convention: str = "real",
                 strain_sigma: Optional[float] = None, truth: Optional[dict] = None) -> None:
    """Write ``particles`` as a strain file (atomically); ``angle`` in radians."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    with atomic_h5(path) as f:
        root = f.create_group("strain")
        root.attrs["angle_deg"] = np.rad2deg(angle)
        if stiffness is not None:
            root.attrs["stiffness"] = np.asarray(stiffness, dtype=np.float64)
        if strain_sigma is not None:
            root.attrs["strain_sigma"] = float(strain_sigma)
        for p in particles:
            g = root.create_group(p.name)
            g.attrs["pixel_size_nm"] = p.pixel_size_nm
            g.attrs["convention"] = convention
            strain = p.strain if convention == "real" else to_py4dstem(p.strain)
            names = COMPONENTS if convention == "real" else ("e_xx", "e_yy", "e_xy", "theta")
            for key, values in zip(names, strain):
                g.create_dataset(key, data=values, compression="gzip")
            g.create_dataset("mask", data=p.mask.astype(np.uint8), compression="gzip")
            g.create_dataset("composition", data=p.composition, compression="gzip")
            if p.composition_sigma is not None:
                g.create_dataset("composition_sigma", data=p.composition_sigma, compression="gzip")
        if truth:
            t = f.create_group("truth")
            for key, value in truth.items():
                t.attrs[key] = value


def write_strain_results(path: "str | os.PathLike", fit: VegardFit, particles: Sequence[StrainParticle],
                         naive: Dict[str, np.ndarray], held_out: Sequence[StrainParticle] = (),
                         prediction: Optional[Prediction] = None, data_path: str = "",
                         truth: Optional[dict] = None) -> None:
    """Write a fit, its maps and the naive regression (atomically)."""
    with atomic_h5(path) as f:
        v = f.create_group("vegard")
        v.attrs.update(order=fit.order, sigma=fit.sigma, chi2=fit.chi2, reduced_chi2=fit.reduced_chi2,
                       n_obs=fit.n_obs, angle_deg=np.rad2deg(fit.angle), data=data_path,
                       basis="phi_1 = c, phi_k = P_k(2c - 1); columns: crystal axis 1, axis 2")
        v.create_dataset("beta", data=fit.beta)
        v.create_dataset("beta_sd", data=fit.beta_sd)
        v.create_dataset("covariance", data=fit.covariance)
        for name, cov in fit.covariance_parts.items():
            v.create_dataset(f"covariance_{name}", data=cov)
        if fit.composition_bias is not None:  # what the redrawn compositions removed from beta
            v.create_dataset("composition_bias_removed", data=fit.composition_bias)
        s = f.create_group("stiffness")
        s.create_dataset("Q", data=fit.stiffness)
        s.attrs["fitted"] = fit.stiffness_fit is not None
        if fit.stiffness_fit is not None:
            sf = fit.stiffness_fit
            s.create_dataset("start", data=sf.start)
            s.create_dataset("parameters", data=sf.parameters)
            s.attrs["parameter_names"] = list(sf.parameter_names)
            s.create_dataset("parameter_covariance", data=sf.covariance)
            s.create_dataset("loss_history", data=np.asarray(sf.history, dtype=np.float64))
            s.attrs.update(converged=sf.converged, message=sf.message, iterations=sf.iterations)
            for name, (value, sd) in sf.ratios().items():
                s.attrs[name] = value
                s.attrs[f"{name} sd"] = sd
        for group_name, members, maps in (("particles", particles, (fit.predicted, fit.residual)),
                                          ("held_out", held_out, (prediction.predicted, prediction.residual)
                                           if prediction else ({}, {}))):
            if not members:
                continue
            root = f.create_group(group_name)
            for p in members:
                g = root.create_group(p.name)
                g.attrs["pixel_size_nm"] = p.pixel_size_nm
                g.create_dataset("measured", data=p.strain, compression="gzip")
                g.create_dataset("predicted", data=maps[0][p.name], compression="gzip")
                g.create_dataset("residual", data=maps[1][p.name], compression="gzip")
                g.create_dataset("mask", data=p.mask.astype(np.uint8), compression="gzip")
                g.create_dataset("composition", data=p.composition, compression="gzip")
                g.create_dataset("naive_slope", data=naive[p.name])
                if group_name == "particles":
                    g.create_dataset("offsets", data=fit.offsets[p.name])
                else:
                    g.attrs["rms"] = prediction.rms[p.name]
        if truth:
            t = f.create_group("truth")
            for key, value in truth.items():
                t.attrs[key] = value


def is_strain_results(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a strain results file (:func:`write_strain_results`)."""
    return "vegard" in f


def read_strain_results(path: "str | os.PathLike") -> dict:
    """A strain results file as nested dicts of arrays and attributes (for reports)."""
    path = os.fspath(path)
    with open_file(path) as f:
        if not is_strain_results(f):
            raise ValueError(f"{path}: not a strain results file (no /vegard group)")

        def load(group: h5py.Group) -> dict:
            out = {key: (load(obj) if isinstance(obj, h5py.Group) else obj[()]) for key, obj in group.items()}
            out["attrs"] = attributes(group)
            return out

        return load(f)


def strain_file_summary(data: StrainData) -> List[str]:
    """One line per particle of a strain file: size, pixel size and the measured fraction of each map."""
    lines = []
    for p in data.particles:
        H, W = p.mask.shape
        measured = np.isfinite(p.measured).mean(axis=0)
        lines.append(f"{p.name}: {H}x{W} pixels, {p.mask.sum()} on the particle, pixel {p.pixel_size_nm:g} nm, "
                     f"measured fraction (e_xx, e_yy, e_xy, rotation) {np.round(measured, 3).tolist()}")
    return lines

