"""Many particles in one electrode: population data, and the stability of a homogeneous population.

A population is one constraint group of edge-less sites (MODEL.md section 1): every particle is one
homogeneous site with its own rate factor theta_i, all share the electrode potential V(t), and the group
mean is weighted by particle size. :meth:`Population.to_movie` turns it into the :class:`Movie` the solver,
fitting and uncertainty code take unchanged (B = 0 for populations: the coherency term belongs inside one
particle). Snapshots (unlinked particles per frame) become quantile-matched movies: the loss compares each
frame's distribution of fractions (a 1-D Wasserstein distance) and stays differentiable.

Stability (electro-autocatalysis, "fictitious phase separation"): a homogeneous population at mean
composition c driven at the current I = dc/dt has, for every zero-mean perturbation (which leaves V
unchanged to first order), the growth rate

    lambda(c, I) = dR/dc at fixed V = I (ln j0)'(c) + k0 j0(c) g'(eta) mu_h'(c),   k0 j0(c) g(eta) = I

with g(eta) = exp(-alpha eta) - exp((1 - alpha) eta). The second term is stabilising wherever mu_h rises
(no miscibility gap); the first destabilises when j0 grows in the direction the population moves. lambda > 0
splits the population into lithium-rich and lithium-poor particles.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

import h5py
import numpy as np
from scipy.optimize import brentq

from .io import _attr_str, _open, _read, _read_members, _write_truth, atomic_h5
from .movie import CONCENTRATION_TOLERANCE, Movie
from .params import Params

KINDS = ("tracked", "snapshot")


@dataclass
class Population:
    """Lithium fractions of N particles at T times.

    fraction: (T, N), NaN where a particle is not measured; time: (T,) seconds, strictly increasing;
    size: (N,) particle volumes (weights of the electrode mean; default equal); current: (T,) the imposed
    dc/dt in 1/s, or voltage: (T,) the dimensionless electrode potential (potentiostatic driving);
    kind: "tracked" (column n is the same particle in every frame) or "snapshot" (unlinked particles per
    frame, as from quenched electrodes: only the distribution of each frame is compared).
    """

    name: str
    fraction: np.ndarray
    time: np.ndarray
    size: Optional[np.ndarray] = None
    current: Optional[np.ndarray] = None
    voltage: Optional[np.ndarray] = None
    kind: str = "tracked"

    def __post_init__(self) -> None:
        where = f"population {self.name!r}"
        self.fraction = np.asarray(self.fraction, dtype=np.float64)
        self.time = np.asarray(self.time, dtype=np.float64)
        if self.fraction.ndim != 2:
            raise ValueError(f"{where}: fraction must be 2-D (T, N), got shape {self.fraction.shape}")
        T, N = self.fraction.shape
        if T < 2 or N < 1:
            raise ValueError(f"{where}: fraction needs at least 2 frames and 1 particle, got shape {(T, N)}")
        if self.time.shape != (T,):
            raise ValueError(f"{where}: time must have shape ({T},) to match fraction, got {self.time.shape}")
        if not np.all(np.isfinite(self.time)) or np.any(np.diff(self.time) <= 0):
            raise ValueError(f"{where}: time must be finite and strictly increasing")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        observed = self.fraction[np.isfinite(self.fraction)]
        tol = CONCENTRATION_TOLERANCE
        if observed.size and (observed.min() < -tol or observed.max() > 1 + tol):
            raise ValueError(f"{where}: fraction must lie in [0, 1] (noise up to {tol} allowed), got values in "
                             f"[{observed.min():.4g}, {observed.max():.4g}]")
        empty = np.flatnonzero(~np.isfinite(self.fraction).any(axis=1))
        if empty.size:
            raise ValueError(f"{where}: fraction frame {int(empty[0])} has no measured particle")
        if self.size is not None:
            self.size = np.asarray(self.size, dtype=np.float64)
            if self.size.shape != (N,) or not np.all(np.isfinite(self.size) & (self.size > 0)):
                raise ValueError(f"{where}: size must hold {N} positive particle volumes, got shape "
                                 f"{self.size.shape}")
        if self.current is not None and self.voltage is not None:
            raise ValueError(f"{where}: give the current or the voltage, not both")
        for field in ("current", "voltage"):
            value = getattr(self, field)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (T,) or not np.all(np.isfinite(value)):
                    raise ValueError(f"{where}: {field} must be {T} finite values, got shape {value.shape}")
                setattr(self, field, value)

    @property
    def shape(self):
        """(T, N)"""
        return self.fraction.shape

    @property
    def driving(self) -> str:
        return "potential" if self.voltage is not None else "rate"

    def to_movie(self) -> Movie:
        """The population as a :class:`Movie` of N edge-less sites in one row, weighted by size: what the
        solver, ``fit`` and ``uq`` take. Rate driving follows the observed size-weighted means of tracked
        particles; a snapshot's samples change from frame to frame, so its mean follows the applied current
        from the frame-0 mean when the current is known."""
        T, N = self.shape
        mean_path = None
        if self.kind == "snapshot" and self.current is not None:
            from scipy.integrate import cumulative_trapezoid

            first = self.fraction[0][np.isfinite(self.fraction[0])]
            mean_path = np.average(first) + cumulative_trapezoid(self.current, self.time, initial=0.0)
        return Movie(self.name, np.ones((1, N), dtype=bool), self.fraction[:, None, :], self.time,
                     voltage=self.voltage, driving=self.driving,
                     site_weight=None if self.size is None else self.size[None, :], connect=False,
                     matching="quantile" if self.kind == "snapshot" else "tracked", mean_path=mean_path)


def load_populations(path: "str | os.PathLike") -> List[Population]:
    """Every population under ``/populations`` of an HDF5 file; errors name the file and the dataset."""
    path = os.fspath(path)
    with _open(path) as f:
        return read_populations(f, path)


def read_populations(f: h5py.File, path: str) -> List[Population]:
    """:func:`load_populations` of a file already open (``path`` names it in errors)."""
    if "populations" not in f or not isinstance(f["populations"], h5py.Group):
        raise ValueError(f"{path}: group /populations is missing")
    out = _read_members(f["populations"], path, lambda name, g: Population(
        name=name, fraction=_read(g, "fraction", path), time=_read(g, "time", path),
        size=_read(g, "size", path, required=False), current=_read(g, "current", path, required=False),
        voltage=_read(g, "voltage", path, required=False), kind=_attr_str(g, "kind", "tracked")), "population")
    if not out:
        raise ValueError(f"{path}: /populations holds no population")
    return out


def write_populations(path: "str | os.PathLike", populations: List[Population], truth=None) -> None:
    """Write populations (and an optional synthetic ``/truth``) atomically."""
    with atomic_h5(path) as f:
        for p in populations:
            g = f.create_group(f"populations/{p.name}")
            g["fraction"] = p.fraction
            g["time"] = p.time
            g.attrs["kind"] = p.kind
            for field in ("size", "current", "voltage"):
                if getattr(p, field) is not None:
                    g[field] = getattr(p, field)
        if truth is not None:
            _write_truth(f, truth)


# -- stability of a homogeneous population ---------------------------------------------------------
def _butler_volmer(alpha: float, eta: float):
    return np.exp(-alpha * eta) - np.exp((1 - alpha) * eta), -alpha * np.exp(-alpha * eta) - (1 - alpha) * np.exp(
        (1 - alpha) * eta)


def overpotential(params: Params, c: float, current: float) -> float:
    """The overpotential eta at which a particle of composition c reacts at rate ``current`` (1/s):
    k0 j0(c) g(eta) = current (g falls monotonically from +inf to -inf, so eta is unique)."""
    target = current / (params.k0 * float(params.j0(c)))
    lo, hi = -1.0, 1.0
    while _butler_volmer(params.alpha, lo)[0] < target:
        lo *= 2
    while _butler_volmer(params.alpha, hi)[0] > target:
        hi *= 2
    return brentq(lambda e: _butler_volmer(params.alpha, e)[0] - target, lo, hi, xtol=1e-14, rtol=1e-14)


def growth_rate(params: Params, c: float, current: float, dc: float = 1e-6) -> float:
    """lambda(c, I) of the module docstring, in 1/s: > 0 where a homogeneous population splits."""
    eta = overpotential(params, c, current)
    _, dg = _butler_volmer(params.alpha, eta)
    dlog_j0 = (np.log(params.j0(c + dc)) - np.log(params.j0(c - dc))) / (2 * dc)
    dmu_h = (params.mu_h(c + dc) - params.mu_h(c - dc)) / (2 * dc)
    return float(current * dlog_j0 + params.k0 * params.j0(c) * dg * dmu_h)


def phase_diagram(params: Params, currents: np.ndarray, compositions: np.ndarray) -> np.ndarray:
    """(len(currents), len(compositions)) growth rates; the population splits where they are > 0."""
    return np.array([[growth_rate(params, c, i) for c in compositions] for i in currents])


def log_amplification(params: Params, c_start: float, c_end: float, current: float) -> float:
    """ln of the factor by which the linear analysis grows a small spread while the mean moves from
    ``c_start`` to ``c_end`` at ``current``: the integral of lambda dt = lambda dc / I."""
    from scipy.integrate import quad

    return float(quad(lambda c: growth_rate(params, c, current) / current, c_start, c_end, limit=200)[0])


def simulate_driven(params: Params, start: np.ndarray, current: float, time: np.ndarray,
                    size: Optional[np.ndarray] = None, theta: Optional[np.ndarray] = None, scheme: str = "bdf2",
                    n_sub: int = 100, newton_tol: float = 1e-12) -> np.ndarray:
    """(T, N) fractions of particles started at ``start`` (N,) whose size-weighted mean the electrode drives
    at ``current`` (dc/dt, 1/s) over the frame ``time`` (T,), with rate factors ``theta`` (N,)."""
    from .problem import Problem

    frames = np.tile((np.average(start, weights=size) + current * time)[:, None], (1, start.size))
    frames[0] = start
    movie = Population("driven", frames, time, size=size, current=np.full(time.size, current)).to_movie()
    problem = Problem([movie], scheme=scheme, n_sub=n_sub, newton_tol=newton_tol)
    return problem.simulate(params, None if theta is None else {"driven": theta[None, :]})["driven"][:, 0, :]


def simulated_growth_rate(params: Params, c: float, current: float, delta: float = 1e-4, window: float = 0.004,
                          n_sub: int = 200):
    """(growth rate, mean composition it belongs to) of a +-``delta`` split of two equal particles
    simulated by the core at ``current`` while the mean moves by ``window``: the solver's own answer to
    :func:`growth_rate`."""
    t_end = window / abs(current)
    out = simulate_driven(params, np.array([c + delta, c - delta]), current, np.linspace(0.0, t_end, 3),
                          n_sub=n_sub, newton_tol=1e-14)
    spread = (out[:, 0] - out[:, 1]) / 2
    return float(np.log(spread[-1] / spread[0]) / t_end), c + current * t_end / 2


# -- synthetic populations -------------------------------------------------------------------------
def synthetic_population(params: Params, n_particles: int = 60, n_frames: int = 8, current: float = -2e-3,
                         c_start: float = 0.9, spread: float = 0.02, theta_std: float = 0.3, noise: float = 0.01,
                         kind: str = "tracked", observed: float = 0.7, scheme: str = "bdf2", n_sub: int = 40,
                         seed: int = 0, name: str = "population"):
    """A population driven at constant ``current`` (dc/dt, 1/s) from mean ``c_start`` over the time the
    mean needs to move by 0.6 in the current's direction, simulated with the core and observed with Gaussian
    noise. Particles have log-normal sizes, rate factors theta ~ N(0, theta_std^2) and initial fractions
    spread by ``spread``. ``kind="snapshot"`` keeps a random ``observed`` share of the particles in each
    frame, shuffled (unlinked). Returns (population, truth dict: params, theta (N,), clean (T, N))."""
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
    population = Population(name, noisy, time, size=None if kind == "snapshot" else size,
                            current=np.full(n_frames, current), kind=kind)
    return population, dict(params=params, theta=theta, clean=clean, size=size)


def bimodality(fractions: np.ndarray) -> float:
    """Sarle's bimodality coefficient (skewness^2 + 1) / (kurtosis + 3 (n-1)^2 / ((n-2)(n-3))) of a
    population's fractions: about 1/3 for a normal spread, above 5/9 for two groups; 0 for a population
    without spread (all particles alike)."""
    x = np.asarray(fractions, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    sd = x.std()
    if n < 4 or sd < 1e-9:
        return 0.0
    z = (x - x.mean()) / sd
    skewness = np.mean(z ** 3) * np.sqrt(n * (n - 1)) / (n - 2)
    excess = ((n + 1) * (np.mean(z ** 4) - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))
    return float((skewness ** 2 + 1) / (excess + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def simulate_population(params: Params, c: float, current: float, travel: float, n_particles: int = 100,
                        spread: float = 0.005, n_frames: int = 3, n_sub: int = 100, seed: int = 0) -> np.ndarray:
    """(n_frames, n_particles) fractions of a population of equal particles started around mean ``c``
    (normal spread ``spread``) and driven at ``current`` while its mean moves by ``travel``."""
    rng = np.random.default_rng(seed)
    start = np.clip(c + spread * rng.standard_normal(n_particles), 0.01, 0.99)
    return simulate_driven(params, start, current, np.linspace(0.0, abs(travel / current), n_frames), n_sub=n_sub)
