"""HDF5 movie files (MODEL.md section 9)."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from .movie import Movie
from .params import BASE_NAMES, SCALAR_NAMES, Params


def _read(group: h5py.Group, name: str, path: str, required: bool = True) -> Optional[np.ndarray]:
    if name not in group:
        if required:
            raise ValueError(f"{path}: dataset {group.name}/{name} is missing")
        return None
    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{path}: {obj.name} must be a dataset, found a group")
    return obj[()]


def _read_members(parent: h5py.Group, path: str, build, label: str) -> list:
    """``build(name, group)`` for every member of ``parent``, each of which must be a group. The objects name
    the field first ("<label> 'name': time must ..."); such an error becomes one naming the file and the
    dataset path, and so does non-numeric data."""
    out = []
    for name, g in parent.items():
        if not isinstance(g, h5py.Group):
            raise ValueError(f"{path}: {g.name} must be a group of datasets")
        try:
            out.append(build(name, g))
        except ValueError as exc:
            what = str(exc).removeprefix(f"{label} {name!r}: ")
            raise ValueError(f"{path}: {g.name}/{what}") from None
        except TypeError as exc:
            raise ValueError(f"{path}: {g.name}: datasets must be numeric ({exc})") from None
    return out


def _attr_str(group: h5py.Group, name: str, default: str) -> str:
    value = group.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _open(path: str) -> h5py.File:
    """Open an HDF5 file for reading; anything but a missing file becomes a ValueError naming it."""
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None


def load_movies(path: "str | os.PathLike", group: str = "/") -> List[Movie]:
    """Read every particle under ``<group>/particles`` of an HDF5 movie file, and every population under
    ``/populations`` (:mod:`pixelkinetics.population`) as an edge-less movie.

    Raises ValueError naming the file and the dataset for anything that is missing or malformed.
    """
    path = os.fspath(path)
    with _open(path) as f:
        if group not in f:
            raise ValueError(f"{path}: group {group} not found")
        root = f[group]
        has_populations = group == "/" and "populations" in f
        populations = _population_movies(f, path) if has_populations else []
        if "particles" not in root or not isinstance(root["particles"], h5py.Group):
            if populations:
                return populations
            raise ValueError(f"{path}: group {root.name.rstrip('/')}/particles is missing")
        movies = _read_members(root["particles"], path, lambda name, g: Movie(
            name=name,
            mask=_read(g, "mask", path),
            concentration=_read(g, "concentration", path),
            time=_read(g, "time", path),
            sigma=_read(g, "sigma", path, required=False),
            voltage=_read(g, "voltage", path, required=False),
            carbon_thickness=_read(g, "carbon_thickness", path, required=False),
            driving=_attr_str(g, "driving", "rate"),
            pixel_size_nm=g.attrs.get("pixel_size_nm"),
        ), "movie")
        if not movies:
            raise ValueError(f"{path}: {root.name.rstrip('/')}/particles holds no particle")
    names = [m.name for m in movies + populations]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: {twice} name both a particle and a population")
    return movies + populations


def _write_population_movie(f: h5py.File, m: Movie) -> None:
    g = f.create_group(f"populations/{m.name}")
    g["fraction"] = m.concentration[:, 0, :]
    g["time"] = m.time
    g.attrs["kind"] = "snapshot" if m.matching == "quantile" else "tracked"
    if m.site_weight is not None:
        g["size"] = m.site_weight[0]
    if m.driving == "potential":
        g["voltage"] = m.voltage


def _population_movies(f: h5py.File, path: str) -> List[Movie]:
    from .population import read_populations

    return [p.to_movie() for p in read_populations(f, path)]


@contextmanager
def atomic_file(path: "str | os.PathLike", update: bool = False):
    """A temporary name in the same directory as ``path`` (with a copy of ``path`` when ``update``) that
    is renamed to ``path`` when the block completes, so an interrupted run never leaves a half-written file."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if update:
            shutil.copyfile(path, tmp)
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_h5(path: "str | os.PathLike", update: bool = False):
    """An HDF5 file written (or, with ``update``, changed in a copy) under a temporary name and renamed to
    ``path`` when the block completes (:func:`atomic_file`)."""
    with atomic_file(path, update) as tmp, h5py.File(tmp, "r+" if update else "w") as f:
        yield f


def _write_truth(f: h5py.File, truth) -> None:
    """``truth``: a SyntheticTruth or a (Params, {name: theta map}) pair as :func:`load_truth` returns."""
    params, thetas = (truth.params, truth.theta) if hasattr(truth, "params") else truth
    t = f.create_group("truth")
    _write_params(t, params)
    for name, theta in thetas.items():
        t[f"theta/{name}"] = theta


def load_truth(path: "str | os.PathLike"):
    """The ``/truth`` of a synthetic movie file as (Params, {name: theta map}), or None without one."""
    path = os.fspath(path)
    with _open(path) as f:
        return _read_truth(f, path)


def _read_truth(f: h5py.File, path: str):
    if "truth" not in f:
        return None
    t = f["truth"]
    theta = {name: d[()] for name, d in t["theta"].items()} if "theta" in t else {}
    return _params_from_attrs(t.attrs, f"{path}: /truth"), theta


def _params_from_attrs(attrs, where: str) -> Params:
    attrs = dict(attrs)
    missing = [n for n in SCALAR_NAMES if n not in attrs]
    if missing:
        raise ValueError(f"{where}: parameter attributes {missing} are missing")
    a = [float(attrs[f"a{m}"]) for m in range(1, 100) if f"a{m}" in attrs]
    b = [float(attrs[f"b{m}"]) for m in range(100) if f"b{m}" in attrs]
    base = attrs.get("j0_base", "sqrt")
    extra = {n: float(attrs[n]) for n in BASE_NAMES if n in attrs}
    return Params(**{n: float(attrs[n]) for n in SCALAR_NAMES}, a=a, b=b,
                  j0_base=base.decode() if isinstance(base, bytes) else str(base), **extra)


def _write_params(group: h5py.Group, params: Params) -> None:
    for name, value in params.values().items():
        group.attrs[name] = value
    group.attrs["j0_base"] = params.j0_base


def write_movies(path: "str | os.PathLike", movies, truth=None, extra=None) -> None:
    """Write movies in the layout of MODEL.md section 9, with an optional synthetic ``/truth``,
    atomically (:func:`atomic_h5`); ``extra(file)`` adds more groups before the rename."""
    with atomic_h5(path) as f:
        for m in movies:
            if not m.connect and m.mask.shape[0] == 1 and m.mask.all():  # a population (Population.to_movie)
                _write_population_movie(f, m)
                continue
            g = f.create_group(f"particles/{m.name}")
            g.create_dataset("concentration", data=m.concentration, compression="gzip")
            g["mask"] = m.mask.astype(np.uint8)
            g["time"] = m.time
            g.attrs["driving"] = m.driving
            for name in ("sigma", "voltage", "carbon_thickness"):
                value = getattr(m, name)
                if value is not None:
                    g[name] = value
            if m.pixel_size_nm is not None:
                g.attrs["pixel_size_nm"] = m.pixel_size_nm
        if truth is not None:
            _write_truth(f, truth)
        if extra is not None:
            extra(f)


# -- results files ------------------------------------------------------------------------------------
@dataclass
class ParticleFit:
    """One particle of a results file."""

    mask: np.ndarray
    time: np.ndarray
    observed: np.ndarray          #: (T, H, W) the data
    fitted: np.ndarray            #: (T, H, W) the model at the frame times
    theta: np.ndarray             #: (H, W) log-rate map, NaN off the mask
    c0: np.ndarray                #: (H, W) initial state used by the fit
    voltage: np.ndarray           #: (T,) model V at the frame times
    carbon_thickness: Optional[np.ndarray] = None
    sigma: Optional[np.ndarray] = None  #: (T, H, W) per-pixel noise level of the data, when given


@dataclass
class Uncertainty:
    """The ``/uncertainty`` group of a results file (:func:`write_uncertainty`)."""

    free: List[str]
    value: np.ndarray
    sd: np.ndarray                #: inf where a parameter takes part in an undetermined combination
    lower: np.ndarray
    upper: np.ndarray
    covariance: np.ndarray        #: of the fit coordinates (ln k0, ..., the others as they are)
    undetermined: List[str]       #: descriptions of the combinations the data leave undetermined
    curves: Dict[str, np.ndarray]  #: c, j0, j0_lower, j0_upper, mu_h, mu_h_lower, mu_h_upper
    theta_sd: Dict[str, np.ndarray]
    attrs: Dict[str, object]      #: level, n_hessp, wall_time, time_hessp, log_evidence, bic, ...
    #: the bootstrap's own entries (``/bootstrap``): corrected, bias, replicates (B, n_free), failed
    extra: Dict[str, object] = field(default_factory=dict)


@dataclass
class Results:
    """A results file (MODEL.md section 9) read back."""

    params: Params
    particles: Dict[str, ParticleFit]
    history: Dict[str, np.ndarray]
    fit: Dict[str, object]        #: attributes of /fit: free parameters, settings, figures of merit
    truth: Optional[Tuple[Params, Dict[str, np.ndarray]]] = None
    uncertainty: Optional[Uncertainty] = None
    bootstrap: Optional[Uncertainty] = None   #: ``/bootstrap``: intervals from refits of simulated data


def write_results(path: "str | os.PathLike", result, movies: Sequence[Movie], data_path: Optional[str] = None,
                  truth=None) -> None:
    """Write a :class:`pixelkinetics.fit.FitResult` atomically: ``/particles/<name>/{theta, fitted, ...}``,
    ``/parameters`` (attributes), ``/history`` and ``/fit`` (settings and figures of merit)."""
    with atomic_h5(path) as f:
        for m in movies:
            g = f.create_group(f"particles/{m.name}")
            g["theta"] = result.theta[m.name]
            g.create_dataset("fitted", data=result.fitted[m.name], compression="gzip")
            g.create_dataset("observed", data=m.concentration, compression="gzip")
            g["c0"] = result.c0[m.name]
            g["mask"] = m.mask.astype(np.uint8)
            g["time"] = m.time
            g["voltage"] = result.voltage[m.name]
            g.attrs["driving"] = m.driving
            if m.carbon_thickness is not None:
                g["carbon_thickness"] = m.carbon_thickness
            if m.sigma is not None:
                g.create_dataset("sigma", data=m.sigma, compression="gzip")
        _write_params(f.create_group("parameters"), result.params)
        h = f.create_group("history")
        for name, values in result.history.items():
            h[name] = np.asarray(values)
        a = f.create_group("fit").attrs
        a["free"] = list(result.config.free) or [""]
        for key in ("method", "fit_theta", "theta_mean", "fit_initial", "lam_s", "lam_0", "sigma", "scheme", "n_sub"):
            a[key] = getattr(result.config, key)
        for key in ("loss", "misfit", "n_obs", "n_free", "n_iter", "n_fev", "n_hessp", "success", "message",
                    "wall_time", "time_fev", "time_hessp", "reduced_chi2"):
            a[key] = getattr(result, key)
        a["config"] = json.dumps(result.config.to_dict())
        if data_path is not None:
            a["data"] = os.fspath(data_path)
        if truth is not None:
            _write_truth(f, truth)


def _strings(values) -> List[str]:
    """An HDF5 string array (or one string) as a list; empty entries (placeholders of empty lists) dropped."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values) if v]


def load_results(path: "str | os.PathLike") -> Results:
    """Read a results file written by :func:`write_results` (``pixelkinetics fit``)."""
    path = os.fspath(path)
    with _open(path) as f:
        for name in ("particles", "parameters", "history", "fit"):
            if name not in f:
                raise ValueError(f"{path}: /{name} is missing: not a pixelkinetics results file")
        particles = {}
        for name, g in f["particles"].items():
            fields = {}
            for key in ("mask", "time", "observed", "fitted", "theta", "c0", "voltage"):
                fields[key] = _read(g, key, path)
            for key in ("carbon_thickness", "sigma"):
                fields[key] = _read(g, key, path, required=False)
            fields["mask"] = fields["mask"].astype(bool)
            particles[name] = ParticleFit(**fields)
        fit = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["fit"].attrs.items()}
        fit["free"] = _strings(fit["free"])
        return Results(params=_params_from_attrs(f["parameters"].attrs, f"{path}: /parameters"),
                       particles=particles, history={k: v[()] for k, v in f["history"].items()}, fit=fit,
                       truth=_read_truth(f, path), uncertainty=_read_uncertainty(f, path),
                       bootstrap=_read_bootstrap(f, path))


def _string_array(values: Sequence[str]) -> np.ndarray:
    """An HDF5 string array; an empty list is stored as one empty placeholder (:func:`_strings` drops it)."""
    return np.array(list(values) or [""], dtype=h5py.string_dtype())


def _write_intervals(f: h5py.File, name: str, source, arrays: Sequence[str], attrs: Sequence[str]) -> h5py.Group:
    """Replace the group ``/name`` with the intervals of ``source`` (a Posterior or a Bootstrap): its free
    globals, the named arrays and attributes, and its j0 and mu_h curves with their bands."""
    if name in f:
        del f[name]
    g = f.create_group(name)
    g["free"] = _string_array(source.free)
    for key in arrays:
        g[key] = np.asarray(getattr(source, key))
    for key in attrs:
        g.attrs[key] = getattr(source, key)
    for key, value in source.curves().items():
        g[f"curves/{key}"] = value
    return g


def _read_intervals(f: h5py.File, path: str, name: str, rest) -> Optional[Uncertainty]:
    """The group ``/name`` written by :func:`_write_intervals` as an :class:`Uncertainty`; ``rest(group)``
    gives its own fields (undetermined, theta_sd, extra)."""
    if name not in f:
        return None
    g = f[name]
    try:
        return Uncertainty(
            free=_strings(g["free"][()]), value=g["values"][()], sd=g["sd"][()], lower=g["lower"][()],
            upper=g["upper"][()], covariance=g["covariance"][()], curves={k: v[()] for k, v in g["curves"].items()},
            attrs={k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}, **rest(g))
    except KeyError as exc:
        raise ValueError(f"{path}: /{name} is incomplete ({exc})") from None


def write_uncertainty(path: "str | os.PathLike", posterior) -> None:
    """Add (or replace) the ``/uncertainty`` group of a results file from a
    :class:`pixelkinetics.uncertainty.Posterior`, and ``theta_sd`` / ``c0_sd`` maps per particle. The file
    is changed in a copy that replaces it when complete."""
    with atomic_h5(path, update=True) as f:
        g = _write_intervals(f, "uncertainty", posterior,
                             ("values", "sd", "lower", "upper", "covariance", "precision", "eigenvalues", "determined"),
                             ("level", "log_evidence", "bic", "loss", "misfit", "n_obs", "n_hessp", "wall_time",
                              "time_hessp"))
        g["undetermined"] = _string_array([c.describe() for c in posterior.undetermined])
        for name in posterior.theta_sd:
            particle = f[f"particles/{name}"]
            for key, maps in (("theta_sd", posterior.theta_sd), ("c0_sd", posterior.c0_sd)):
                if key in particle:
                    del particle[key]
                particle[key] = maps[name]


def write_bootstrap(path: "str | os.PathLike", boot) -> None:
    """Add (or replace) the ``/bootstrap`` group of a results file from a
    :class:`pixelkinetics.bootstrap.Bootstrap` (changed in a copy that replaces the file when complete)."""
    with atomic_h5(path, update=True) as f:
        g = _write_intervals(f, "bootstrap", boot,
                             ("values", "corrected", "bias", "sd", "lower", "upper", "covariance", "replicates"),
                             ("level", "method", "seed", "n_replicates", "wall_time"))
        g["failed"] = _string_array(boot.failed)


def _read_bootstrap(f: h5py.File, path: str) -> Optional[Uncertainty]:
    return _read_intervals(f, path, "bootstrap", lambda g: dict(
        undetermined=[], theta_sd={},
        extra={**{k: g[k][()] for k in ("corrected", "bias", "replicates")}, "failed": _strings(g["failed"][()])}))


def _read_uncertainty(f: h5py.File, path: str) -> Optional[Uncertainty]:
    return _read_intervals(f, path, "uncertainty", lambda g: dict(
        undetermined=_strings(g["undetermined"][()]),
        theta_sd={n: p["theta_sd"][()] for n, p in f["particles"].items() if "theta_sd" in p}))
