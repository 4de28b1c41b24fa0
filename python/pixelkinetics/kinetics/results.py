"""Results files (MODEL.md section 9): a fit, its uncertainty and its bootstrap, in one layout that the
writer and the reader share.

:class:`Results` is the file in memory. A fit makes one without touching the disk
(:meth:`Results.of_fit`); :func:`write_results` writes it whole, :func:`add_intervals` adds the intervals of
``uq`` or ``uq --bootstrap`` to a file, and :func:`load_results` reads any of it back. The names of every
group, dataset and attribute are declared once below.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import h5py
import numpy as np

from ..floor.hdf5 import atomic_h5, attributes, open_file, read_dataset, replace_dataset, string_array, strings
from ..floor.parallel import agree
from .config import FitConfig
from .estimate import Estimate
from .files import Truth, load_truth, read_params, read_truth, write_params, write_truth
from .movie import Movie
from .params import Params

# -- the layout ---------------------------------------------------------------------------------------------
#: ``/particles/<name>``: the datasets of every fitted movie, then those it may have
PARTICLE_DATASETS = ("theta", "fitted", "observed", "c0", "mask", "time", "voltage")
PARTICLE_OPTIONAL = ("carbon_thickness", "sigma")
#: datasets written with gzip (movies)
COMPRESSED = ("fitted", "observed", "sigma")
#: ``/fit`` attributes that restate settings of the configuration for readers of the file (the configuration
#: itself is the JSON attribute ``config``, the one encoding that is read back)
CONFIG_ATTRS = ("method", "fit_theta", "theta_mean", "fit_initial", "lam_s", "lam_0", "sigma", "scheme", "n_sub")
#: ``/fit`` attributes of the outcome
OUTCOME_ATTRS = ("loss", "misfit", "n_obs", "n_free", "n_iter", "n_fev", "n_hessp", "success", "message",
                 "wall_time", "time_fev", "time_hessp", "reduced_chi2")
#: groups every results file has
REQUIRED_GROUPS = ("particles", "parameters", "history", "fit")
#: ``/uncertainty`` (Laplace) and ``/bootstrap``: arrays every one has, then each kind's own arrays, string
#: lists and attributes; the j0 and mu_h bands go under ``curves/``
INTERVAL_ARRAYS = ("values", "sd", "lower", "upper", "covariance")
INTERVAL_KINDS = {
    "uncertainty": dict(arrays=("precision", "eigenvalues", "determined"), strings=("undetermined",),
                        attrs=("level", "log_evidence", "bic", "loss", "misfit", "n_obs", "n_hessp", "wall_time",
                               "time_hessp")),
    "bootstrap": dict(arrays=("corrected", "bias", "replicates"), strings=("failed",),
                      attrs=("level", "method", "seed", "n_replicates", "wall_time")),
}
#: per-pixel standard deviations that ``uq`` adds to every particle
SD_MAPS = ("theta_sd", "c0_sd")


def curve_table(c: np.ndarray, mid: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Dict[str, np.ndarray]:
    """The ``curves/`` of an interval group from (2, len(c)) arrays of ln(k0 j0) and mu_h (params.CURVES):
    c, j0, j0_lower, j0_upper (k0 j0, from the log scale), mu_h, mu_h_lower, mu_h_upper."""
    return {"c": c, "j0": np.exp(mid[0]), "j0_lower": np.exp(lower[0]), "j0_upper": np.exp(upper[0]),
            "mu_h": mid[1], "mu_h_lower": lower[1], "mu_h_upper": upper[1]}


@dataclass
class FittedMovie:
    """One movie of a results file: the data and what the fit made of them."""

    mask: np.ndarray
    time: np.ndarray
    observed: np.ndarray          #: (T, H, W) the data
    fitted: np.ndarray            #: (T, H, W) the model at the frame times
    theta: np.ndarray             #: (H, W) log-rate map, NaN off the mask
    c0: np.ndarray                #: (H, W) initial state used by the fit
    voltage: np.ndarray           #: (T,) model V at the frame times
    carbon_thickness: Optional[np.ndarray] = None
    sigma: Optional[np.ndarray] = None  #: (T, H, W) per-pixel noise level of the data, when given
    driving: str = "rate"


@dataclass
class Uncertainty:
    """The intervals of the free globals in ``/uncertainty`` (Laplace, ``kind="uncertainty"``) or
    ``/bootstrap``: what :meth:`Posterior.to_uncertainty` and :meth:`Bootstrap.to_uncertainty` make and the
    results file keeps."""

    kind: str
    free: List[str]
    values: np.ndarray            #: raw values of the free globals
    sd: np.ndarray                #: inf where a parameter takes part in an undetermined combination
    lower: np.ndarray
    upper: np.ndarray
    covariance: np.ndarray        #: of the fit coordinates (ln k0, ..., the others as they are)
    curves: Dict[str, np.ndarray]  #: c, j0, j0_lower, j0_upper, mu_h, mu_h_lower, mu_h_upper
    attrs: Dict[str, Any]         #: the kind's attributes (INTERVAL_KINDS): level, wall_time, ...
    #: the kind's own arrays and string lists: precision, eigenvalues, determined, undetermined (Laplace);
    #: corrected, bias, replicates, failed (bootstrap)
    extra: Dict[str, Any] = field(default_factory=dict)
    theta_sd: Dict[str, np.ndarray] = field(default_factory=dict)  #: (H, W) per particle (Laplace)
    c0_sd: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def undetermined(self) -> List[str]:
        """The combinations of globals these data leave undetermined, described (Laplace)."""
        return list(self.extra.get("undetermined", []))


@dataclass
class Results:
    """A results file (MODEL.md section 9) in memory."""

    params: Params
    particles: Dict[str, FittedMovie]
    history: Dict[str, np.ndarray]
    fit: Dict[str, Any]           #: attributes of /fit: free parameters, settings, figures of merit
    truth: Optional[Truth] = None
    uncertainty: Optional[Uncertainty] = None
    bootstrap: Optional[Uncertainty] = None   #: intervals from refits of simulated data
    source: Optional[str] = None              #: the file these results were read from

    @classmethod
    def of_fit(cls, result, movies: Sequence[Movie], data_path: "Optional[str | os.PathLike]" = None,
               truth: Optional[Truth] = None) -> "Results":
        """The results of a :class:`~pixelkinetics.kinetics.fit.FitResult` of ``movies``, with the truth of
        the data file ``data_path`` when it has one (or ``truth``)."""
        particles = {m.name: FittedMovie(
            mask=m.mask, time=m.time, observed=m.concentration, fitted=result.fitted[m.name],
            theta=result.theta[m.name], c0=result.c0[m.name], voltage=result.voltage[m.name],
            carbon_thickness=m.carbon_thickness, sigma=m.sigma, driving=m.driving) for m in movies}
        config = result.config.to_dict()
        fit = {"free": list(result.config.free), **{k: config["fit"][k] for k in CONFIG_ATTRS},
               **{k: getattr(result, k) for k in OUTCOME_ATTRS}, "config": json.dumps(config)}
        if data_path is not None:
            fit["data"] = os.fspath(data_path)
            truth = truth if truth is not None else load_truth(data_path)
        if truth is not None and hasattr(truth, "params"):  # a SyntheticTruth: what a truth file holds of it
            truth = (truth.params, truth.theta)
        if result.fingerprint is not None:
            fit["fingerprint"] = result.fingerprint
        return cls(result.params, particles, dict(result.history), fit, truth)

    @property
    def config(self) -> FitConfig:
        """The configuration of the fit."""
        where = self.source or "results"
        if "config" not in self.fit:
            raise ValueError(f"{where}: /fit has no config attribute (written by an old version); fit again")
        return FitConfig.from_dict(json.loads(self.fit["config"]), where=where)

    @property
    def estimate(self) -> Estimate:
        """The fitted point, for uq, bootstrap and simulate."""
        return Estimate(self.config, self.params, {n: p.theta for n, p in self.particles.items()},
                        {n: p.c0 for n, p in self.particles.items()}, self.fit.get("fingerprint"))


def estimate_of(source, movies: Sequence[Movie], comm=None) -> Estimate:
    """The estimate of ``source`` (as :func:`as_estimate` takes it), refused unless it was fitted to these
    movies (:meth:`Estimate.check`); read and checked on every rank of ``comm``, which fail together."""
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the estimate"

    def read() -> Estimate:
        estimate = as_estimate(source)
        estimate.check(movies, where)
        return estimate

    return agree(comm, read)


def as_estimate(source) -> Estimate:
    """An :class:`Estimate` from an Estimate, anything with an ``estimate`` (a FitResult, Results) or the path
    of a results file."""
    if isinstance(source, Estimate):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_results(source).estimate
    if hasattr(source, "estimate"):
        return source.estimate
    raise TypeError(f"an estimate must be an Estimate, a FitResult, Results or a results file, got "
                    f"{type(source).__name__}")


# -- writing ---------------------------------------------------------------------------------------------------
def write_results(path: "str | os.PathLike", results: Results) -> None:
    """Write ``results`` whole, atomically."""
    with atomic_h5(path) as f:
        for name, p in results.particles.items():
            g = f.create_group(f"particles/{name}")
            for key in PARTICLE_DATASETS + PARTICLE_OPTIONAL:
                value = getattr(p, key)
                if value is not None:
                    g.create_dataset(key, data=value.astype(np.uint8) if key == "mask" else value,
                                     **({"compression": "gzip"} if key in COMPRESSED else {}))
            g.attrs["driving"] = p.driving
        write_params(f.create_group("parameters"), results.params)
        h = f.create_group("history")
        for name, values in results.history.items():
            h[name] = np.asarray(values)
        a = f.create_group("fit").attrs
        for key, value in results.fit.items():
            a[key] = string_array(value) if key == "free" else value
        if results.truth is not None:
            write_truth(f, results.truth)
        for intervals in (results.uncertainty, results.bootstrap):
            if intervals is not None:
                _write_intervals(f, intervals)


def add_intervals(path: "str | os.PathLike", intervals: Uncertainty) -> None:
    """Add (or replace) the ``/uncertainty`` or ``/bootstrap`` group of a results file, with the sd maps of
    its particles; the file is changed in a copy that replaces it when complete."""
    with atomic_h5(path, update=True) as f:
        _write_intervals(f, intervals)


def _write_intervals(f: h5py.File, u: Uncertainty) -> None:
    layout = INTERVAL_KINDS[u.kind]
    if u.kind in f:
        del f[u.kind]
    g = f.create_group(u.kind)
    g["free"] = string_array(u.free)
    for key in INTERVAL_ARRAYS:
        g[key] = np.asarray(getattr(u, key))
    for key in layout["arrays"]:
        g[key] = np.asarray(u.extra[key])
    for key in layout["strings"]:
        g[key] = string_array(u.extra[key])
    for key in layout["attrs"]:
        g.attrs[key] = u.attrs[key]
    for key, value in u.curves.items():
        g[f"curves/{key}"] = value
    for key in SD_MAPS:
        for name, values in getattr(u, key).items():
            replace_dataset(f[f"particles/{name}"], key, values)


def is_results(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a results file (has every group of one)."""
    return all(name in f for name in REQUIRED_GROUPS)


# -- reading ----------------------------------------------------------------------------------------------------
def load_results(path: "str | os.PathLike") -> Results:
    """Read a results file written by :func:`write_results` (``pixelkinetics fit``)."""
    path = os.fspath(path)
    with open_file(path) as f:
        for name in REQUIRED_GROUPS:
            if name not in f:
                raise ValueError(f"{path}: /{name} is missing: not a pixelkinetics results file")
        particles = {}
        for name, g in f["particles"].items():
            fields = {key: read_dataset(g, key, path) for key in PARTICLE_DATASETS}
            fields.update({key: read_dataset(g, key, path, required=False) for key in PARTICLE_OPTIONAL})
            fields["mask"] = fields["mask"].astype(bool)
            particles[name] = FittedMovie(**fields, driving=attributes(g).get("driving", "rate"))
        fit = attributes(f["fit"])
        fit["free"] = strings(fit.get("free", []))
        return Results(params=read_params(f["parameters"], f"{path}: /parameters"), particles=particles,
                       history={k: v[()] for k, v in f["history"].items()}, fit=fit, truth=read_truth(f, path),
                       uncertainty=_read_intervals(f, path, "uncertainty"),
                       bootstrap=_read_intervals(f, path, "bootstrap"), source=path)


def _read_intervals(f: h5py.File, path: str, kind: str) -> Optional[Uncertainty]:
    if kind not in f:
        return None
    layout, g = INTERVAL_KINDS[kind], f[kind]
    try:
        extra: Dict[str, Any] = {key: g[key][()] for key in layout["arrays"]}
        extra.update({key: strings(g[key][()]) for key in layout["strings"]})
        maps = {key: {n: p[key][()] for n, p in f["particles"].items() if key in p} for key in SD_MAPS}
        return Uncertainty(kind, strings(g["free"][()]), *(g[key][()] for key in INTERVAL_ARRAYS),
                           curves={k: v[()] for k, v in g["curves"].items()}, attrs=attributes(g), extra=extra,
                           **(maps if kind == "uncertainty" else {}))
    except KeyError as exc:
        raise ValueError(f"{path}: /{kind} is incomplete ({exc})") from None
