"""How sure are we, when the noise is not the only chance in the data: the parametric bootstrap.

The Laplace approximation (:mod:`pixelkinetics.uncertainty`) takes the measurement noise as the only
random part of the data. For snapshots of a population that is not so: which particles run ahead, and so
the distribution of every frame, depends on the population's own draw of rates and initial states, and in
the splitting (electro-autocatalytic) regime that draw moves the distributions far more than a noise of
0.01 does. Measured at the truth on four populations of 100 particles, the delithiating ones misfit at
chi^2 / observation 5.6-5.8 and the lithiating ones at 0.1-0.2; Laplace intervals were ~9 times narrower
than the spread of the estimates over population realisations, and missed the truth.

The bootstrap asks the model itself: data sets are simulated at the estimate, refitted with the same
configuration from the estimate, and the spread of the refits is the error bar. Each replicate data set is

* for a snapshot (quantile-matched) population, a new population: rates theta ~ N(mean of the fitted
  thetas, 1 / lam_0) (the model's population of rates; with lam_0 = 0 the fitted thetas resampled),
  initial states drawn from a smoothed bootstrap of the fitted ones (resampled with a Gaussian kernel,
  shrunk so the spread is kept), simulated with the core at the estimate, then observed as the data
  were: the same number of particles per frame, picked at random and shuffled, with the fit's noise
  sigma added; its mean path starts from its own frame-0 mean as the data's did;
* for every other movie, the fitted model at the estimate (its theta and c^0) with noise drawn at the
  fit's sigma (or the movie's sigma maps) wherever the data were observed.

Intervals are taken in the fit's coordinates z (ln k0, ln kappa, ln D, logit alpha, the others as they
are): ``corrected`` (the default) z_hat - bias +- q sd, with bias = mean(z*) - z_hat the replicates'
mean shift; ``normal`` z_hat +- q sd; ``basic`` [2 z_hat - Q(1 - a/2), 2 z_hat - Q(a/2)] from the
replicates' quantiles (needs many). The snapshot estimates of s and c* are biased low, and the
replicates measure it: over synthetic data sets (benchmarks/study_snapshot_bootstrap.py) the
mean estimate of s was 11.59 (20 sets of 4 x 60 particles) and 11.60 (10 sets of 4 x 100) for a true 12,
and 11.90 and 11.94 once corrected (c*: 0.478 and 0.491 for 0.5, corrected 0.491 and 0.497). The 95%
intervals held the truth in 53 of those 60 cases (s and c*): the replicates' spread was 0.86-0.87 of
the spread of the estimates over data sets. Ask for level 0.99 where 95% must be a floor.

Replicate b draws from ``numpy.random.default_rng([seed, b])``, so a bootstrap is the same on any number
of MPI ranks (the replicates are shared round-robin) and can be resumed from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

from .._core import SolverError
from ..floor.checkpoint import Checkpoint, digest
from ..floor.parallel import CollectiveError, on_root, processes, rank_of, size_of
from ..floor.progress import progress as progress_bar
from .config import FitConfig
from .coordinates import FitCoordinates
from .estimate import Estimate, data_fingerprint
from .files import read_data
from .fit import fit
from .movie import Movie
from .observations import EPS
from .params import CURVE_GRID, CURVES, Params
from .problem import Problem
from .results import INTERVAL_KINDS, Uncertainty, add_intervals, curve_table, estimate_of

logger = logging.getLogger(__name__)

METHODS = ("corrected", "normal", "basic")


# -- replicate data sets -----------------------------------------------------------------------------
def smoothed_resample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw of ``values.size`` new values from the distribution the sample ``values`` stands for:
    resampled with replacement, plus a Gaussian kernel (Silverman's bandwidth), shrunk towards the mean
    so that the draw keeps the sample's variance (a resample alone would repeat values exactly)."""
    x = np.asarray(values, float)
    mean, sd = x.mean(), x.std()
    if sd == 0.0:
        return x.copy()
    iqr = np.subtract(*np.percentile(x, [75, 25]))
    h = 0.9 * min(sd, iqr / 1.34 if iqr > 0 else sd) * x.size ** -0.2
    draw = rng.choice(x, x.size) - mean + h * rng.standard_normal(x.size)
    return mean + draw / np.sqrt(1.0 + (h / sd) ** 2)


def _snapshot_replicate(movie: Movie, problem: Problem, params: Params, theta: np.ndarray, c0: np.ndarray,
                        sigma: float, lam_0: float, rng: np.random.Generator) -> Movie:
    """A new population like the snapshot ``movie`` at ``params`` (module docstring)."""
    n = movie.n_sites
    theta_new = (theta.mean() + rng.standard_normal(n) / np.sqrt(lam_0) if lam_0 > 0 else rng.choice(theta, n))
    c0_new = np.clip(smoothed_resample(c0, rng), EPS, 1.0 - EPS)
    # Frame 0 holds the new initial states, and the rate drive moves with their mean: the applied
    # current's path, or the observed means of the later frames, shifted by as much as the start moved.
    frames = movie.concentration.copy()
    shift = c0_new.mean() - c0.mean()
    frames[1:] += shift
    frames[0][movie.mask] = c0_new
    source = dataclasses.replace(movie, concentration=frames)  # a current's path starts from the new mean
    simulator = Problem([source], scheme=problem.settings.scheme, n_sub=problem.settings.n_sub,
                        newton_tol=problem.settings.newton_tol)
    clean = simulator.simulate_vectors(params, [theta_new], [c0_new])[0]
    observed = movie.concentration[:, movie.mask]
    shown = np.full_like(observed, np.nan)
    for f in range(observed.shape[0]):
        slots = np.flatnonzero(np.isfinite(observed[f]))
        picked = rng.permutation(n)[: slots.size]
        shown[f, slots] = clean[f, picked] + sigma * rng.standard_normal(slots.size)
    out = np.full_like(movie.concentration, np.nan)
    out[:, movie.mask] = shown
    return dataclasses.replace(movie, concentration=out)


def _noisy_replicate(movie: Movie, fitted: np.ndarray, sigma: float, rng: np.random.Generator) -> Movie:
    """``fitted`` (T, H, W) observed with noise where ``movie`` was observed."""
    observed = np.isfinite(movie.concentration) & movie.mask[None]
    scale = sigma if movie.sigma is None else np.where(observed, movie.sigma, 0.0)
    noisy = fitted + scale * rng.standard_normal(fitted.shape)
    return dataclasses.replace(movie, concentration=np.where(observed, noisy, np.nan))


def replicate(movies: Sequence[Movie], estimate: Estimate, rng: np.random.Generator, problem: Optional[Problem] = None,
              fitted: Optional[Dict[str, np.ndarray]] = None) -> List[Movie]:
    """One bootstrap data set: every movie simulated at the estimate as the module docstring says.
    ``problem`` and ``fitted`` (the model at the estimate) may be passed to save their set-up."""
    config, params = estimate.config, estimate.params
    problem = problem or config.problem(movies)
    theta_v = problem.theta_vectors(estimate.theta)
    c0_v = problem.c0_vectors(estimate.c0 or {})
    if fitted is None:
        fitted = problem.simulate(params, estimate.theta, estimate.c0)
    out = []
    for k, m in enumerate(movies):
        if m.kind == "snapshot":
            out.append(_snapshot_replicate(m, problem, params, theta_v[k], c0_v[k], config.sigma, config.lam_0, rng))
        else:
            out.append(_noisy_replicate(m, fitted[m.name], config.sigma, rng))
    return out


# -- the bootstrap -------------------------------------------------------------------------------------
@dataclass
class Bootstrap:
    """Bootstrap intervals of the free globals (module docstring)."""

    params: Params                 #: the estimate the replicates were simulated at
    free: List[str]                #: free globals, in Params.names() order
    values: np.ndarray             #: their estimated raw values
    corrected: np.ndarray          #: raw values with the bootstrap bias removed (z_hat - bias, mapped back)
    bias: np.ndarray               #: mean(z*) - z_hat, in the fit coordinates
    sd: np.ndarray                 #: spread of the replicates, raw (delta method from the fit coordinates)
    lower: np.ndarray              #: raw interval at ``level``
    upper: np.ndarray
    level: float
    method: str
    covariance: np.ndarray         #: of the replicates' fit coordinates
    replicates: np.ndarray         #: (B, n_free) raw values of the refits that succeeded
    failed: List[str]              #: why the other refits failed
    seed: int
    wall_time: float

    @property
    def n_replicates(self) -> int:
        return int(self.replicates.shape[0])

    @property
    def coordinates(self) -> FitCoordinates:
        return FitCoordinates(self.free)

    def interval(self, name: str, method: Optional[str] = None):
        """(lower, upper) of one global, by ``method`` (default: the bootstrap's own)."""
        i = self.free.index(name)
        if method is None or method == self.method:
            return float(self.lower[i]), float(self.upper[i])
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        z = np.array([self.coordinates.z(self._params_of(r)) for r in self.replicates])
        low, high = _interval(self.coordinates.z(self.params), z, self.level, method)
        return float(self.coordinates.raw(low)[i]), float(self.coordinates.raw(high)[i])

    def curves(self, c: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
        """j0(c) (times k0) and mu_h(c) with bands at ``level`` from the replicates' curves (by ``method``)."""
        c = CURVE_GRID if c is None else np.asarray(c, float)

        def curves_of(params: Params) -> np.ndarray:
            return np.array([params.curve(curve, c) for curve in CURVES])

        mid = curves_of(self.params)
        reps = np.array([curves_of(self._params_of(r)) for r in self.replicates])
        return curve_table(c, mid, *_interval(mid, reps, self.level, self.method))

    def _params_of(self, raw: np.ndarray) -> Params:
        return self.params.replace(**{n: float(v) for n, v in zip(self.free, raw)})

    def to_uncertainty(self) -> Uncertainty:
        """What the results file keeps of it (``/bootstrap``)."""
        return Uncertainty(
            "bootstrap", list(self.free), self.values, self.sd, self.lower, self.upper, self.covariance,
            self.curves(), attrs={k: getattr(self, k) for k in INTERVAL_KINDS["bootstrap"]["attrs"]},
            extra=dict(corrected=self.corrected, bias=self.bias, replicates=self.replicates, failed=self.failed))

    def summary(self) -> List[str]:
        lines = [f"parametric bootstrap: {self.n_replicates} refits of data simulated at the estimate "
                 f"({len(self.failed)} failed), {self.wall_time:.1f} s; {100 * self.level:.0f}% intervals "
                 f"({self.method})"]
        for i, name in enumerate(self.free):
            lines.append(f"  {name:6s} {self.values[i]:10.5g} +- {self.sd[i]:.3g}   [{self.lower[i]:.5g}, "
                         f"{self.upper[i]:.5g}]   bias-corrected value {self.corrected[i]:.5g}")
        for why in self.failed[:3]:
            lines.append(f"  failed: {why}")
        return lines


def _interval(estimate: np.ndarray, replicates: np.ndarray, level: float, method: str):
    """(lower, upper) of ``estimate`` (...) from ``replicates`` (B, ...) by ``method`` (module docstring)."""
    if method in ("normal", "corrected"):
        q = stats.norm.ppf(0.5 + level / 2)
        centre = estimate if method == "normal" else 2 * estimate - replicates.mean(axis=0)
        spread = q * replicates.std(axis=0, ddof=1)
        return centre - spread, centre + spread
    low, high = np.quantile(replicates, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return 2 * estimate - high, 2 * estimate - low


#: Refits stop when the loss (chi-square / 2) can fall by less than this: a fit stopped 0.05 short of its
#: optimum (the default loss_tol) can sit 0.3 sd from it, towards the start, and shrink the replicates'
#: spread; 1e-3 leaves < 0.05 sd.
REFIT_LOSS_TOL = 1e-3


def refit_config(config: FitConfig, params: Params) -> FitConfig:
    """The configuration of a refit: ``config`` started at the estimate, converged tightly, without the
    warm-up that holds the globals (they start right)."""
    return dataclasses.replace(config, initial=params, loss_tol=min(config.loss_tol, REFIT_LOSS_TOL), warmup_iter=0)


def _refit(movies: Sequence[Movie], estimate: Estimate, fitted, seed: int, b: int, problem: Problem,
           coordinates: FitCoordinates):
    """(fit coordinates of replicate b, or None, and why it failed)."""
    rng = np.random.default_rng([seed, b])
    try:
        data = replicate(movies, estimate, rng, problem=problem, fitted=fitted)
        result = fit(data, refit_config(estimate.config, estimate.params), progress=False)
    except (SolverError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        # one replicate's failure (a solver that does not converge at an unlucky draw) is counted, not fatal
        return None, f"replicate {b}: {type(exc).__name__}: {exc}"
    # A refit that stopped early sits near its start, the estimate, and would shrink the spread.
    if not result.success:
        return None, f"replicate {b}: the refit did not converge ({result.message})"
    z = coordinates.z(result.params)
    if not (np.isfinite(result.loss) and np.all(np.isfinite(z))):
        return None, f"replicate {b}: the refit ended at a non-finite loss or parameter"
    return z, ""


def bootstrap(data, estimate, n: int = 40, *, level: float = 0.95, method: str = "corrected", seed: int = 0,
              output: "Optional[str | os.PathLike]" = None, checkpoint: "Optional[str | os.PathLike]" = None,
              resume: bool = False, progress: bool = True, comm=None) -> Bootstrap:
    """The parametric bootstrap of a fit (``pixelkinetics uq --bootstrap N``): ``n`` data sets simulated at
    the estimate and refitted with its configuration from it.

    data: the movies that were fitted (a list or the path of a movie file); estimate: the fit (a FitResult,
    Results, an Estimate or the path of its results file); output: a results file to which ``/bootstrap``
    is added (rank 0 writes); checkpoint: a file in which finished replicates are kept (default with an
    output: OUTPUT.bootstrap-checkpoint, removed once the results are written); resume: take them from it;
    comm: an MPI communicator: the replicates are shared over its ranks (each refit runs in one process) and
    every rank returns the same result."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if n < 2:
        raise ValueError(f"the bootstrap needs at least 2 replicates, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    t_start = time.perf_counter()
    movies, _ = read_data(data, comm)
    estimate = estimate_of(estimate, movies, comm)
    config, params = estimate.config, estimate.params
    logger.info(f"{n} refits of data simulated at the estimate, {len(movies)} particles, seed {seed} "
                f"({processes(comm)})")
    coordinates = FitCoordinates([name for name in params.names() if name in config.free])
    problem = config.problem(movies)
    fitted = problem.simulate(params, estimate.theta, estimate.c0)

    if checkpoint is None and output is not None:
        checkpoint = f"{os.fspath(output)}.bootstrap-checkpoint"
    # The replicates belong to these data, this fit and this seed.
    store = Checkpoint(checkpoint, digest(config.identity(), data_fingerprint(movies), params.values(),
                                               params.j0_base, seed), "bootstrap", comm)
    done, z, why = np.zeros(n, bool), np.full((n, len(coordinates.names)), np.nan), [""] * n
    saved = store.begin(resume)
    if saved is not None:
        m = min(n, saved["done"].shape[0])
        done[:m], z[:m], why[:m] = saved["done"][:m], saved["z"][:m], saved["why"][:m]
    todo = [b for b in range(n) if not done[b]]
    bar = progress_bar(n, "bootstrap", "refit", show=progress and rank_of(comm) == 0, initial=n - len(todo))
    ranks, rank = size_of(comm), rank_of(comm)
    for start in range(0, len(todo), ranks):
        batch = todo[start:start + ranks]
        try:
            mine = _refit(movies, estimate, fitted, seed, batch[rank], problem, coordinates) \
                if rank < len(batch) else (None, "")
            error = ""
        except Exception as exc:  # noqa: BLE001 (raised on every rank below, so that none waits)
            if ranks == 1:
                raise
            mine, error = (None, ""), f"rank {rank}: {type(exc).__name__}: {exc}"
        outcomes = [mine]
        if ranks > 1:
            gathered = comm.allgather((mine, error))
            errors = [e for _, e in gathered if e]
            if errors:
                failure = CollectiveError(f"a bootstrap refit failed: {errors[0]}")
                failure.collective = True
                raise failure
            outcomes = [o for o, _ in gathered]
        for b, (z_b, why_b) in zip(batch, outcomes):
            done[b], why[b] = True, why_b
            if z_b is not None:
                z[b] = z_b
        store.save(dict(done=done, z=z, why=why))
        bar.update(len(batch))
    bar.close()

    ok = done & np.all(np.isfinite(z), axis=1)
    failed = [w for w in why if w]
    if ok.sum() < 2:
        raise ValueError(f"the bootstrap needs at least 2 successful refits, got {int(ok.sum())} of {n}: "
                         + "; ".join(failed[:3]))
    Z = z[ok]
    z_hat = coordinates.z(params)
    bias = Z.mean(axis=0) - z_hat
    lo_z, hi_z = _interval(z_hat, Z, level, method)
    result = Bootstrap(params=params, free=list(coordinates.names), values=coordinates.raw(z_hat),
                       corrected=coordinates.raw(z_hat - bias), bias=bias,
                       sd=Z.std(axis=0, ddof=1) * coordinates.jacobian(z_hat), lower=coordinates.raw(lo_z),
                       upper=coordinates.raw(hi_z), level=level, method=method,
                       covariance=np.atleast_2d(np.cov(Z, rowvar=False)),
                       replicates=np.array([coordinates.raw(r) for r in Z]), failed=failed, seed=seed,
                       wall_time=time.perf_counter() - t_start)
    if output is not None:
        on_root(comm, lambda: add_intervals(output, result.to_uncertainty()))
        store.discard()  # only once the refits are stored
    return result
