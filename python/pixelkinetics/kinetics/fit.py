"""Fitting: the model of MODEL.md section 7 fitted to movies, as a library function (``pixelkinetics fit``).

The objective is the loss divided by the number of observations, so it is O(1) (about 1/2 at a good fit).
The optimiser (:mod:`.optimizers`) works in transformed, preconditioned coordinates
(:class:`~pixelkinetics.kinetics.space.ParameterSpace`):

- positive globals (k0, kappa, D) in log space, alpha through the logit, the others as they are
  (:mod:`.coordinates`), each scaled by its Gauss-Newton curvature;
- per pixel, (theta_i, c^0_i) through the inverse Cholesky factor of its 2 x 2 Gauss-Newton block,
  estimated from finite-difference probes of the forward model and rebuilt at a few iterations
  (``precondition_at``);
- theta has its global mean removed (``theta_mean = "zero"``), which removes the exact degeneracy of
  k0 with the mean of theta without biasing the shape of the map;
- c^0 stays in [EPS, 1 - EPS] through bounds.

Fits write a checkpoint every few iterations (Gauss-Newton) or at each restart (L-BFGS-B, whose curvature
memory cannot be saved); ``resume=True`` continues from the last one, and a resumed fit retraces the
uninterrupted one.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from ..floor.checkpoint import Checkpoint, digest
from ..floor.parallel import on_root, processes, rank_of
from .config import FitConfig, as_config
from .estimate import Estimate, data_fingerprint
from .files import read_data
from .movie import Movie
from .objective import FitObjective
from .observations import count_observations
from .optimizers import HISTORY, Monitor, minimize_gauss_newton, minimize_lbfgsb
from .params import Params
from .results import Results, write_results
from .space import ParameterSpace

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """The outcome of a fit: the estimate (:attr:`estimate`), the fitted movies and how the fit went."""

    params: Params
    theta: Dict[str, np.ndarray]          #: (H, W) maps, NaN off the mask
    c0: Dict[str, np.ndarray]             #: (H, W) initial states (fitted or the default)
    fitted: Dict[str, np.ndarray]         #: (T, H, W) model movies at the frame times
    voltage: Dict[str, np.ndarray]        #: (T,) model V at the frame times
    loss: float
    misfit: float
    n_obs: int                            #: observations in the misfit
    n_free: int                           #: free parameters (globals, theta entries, c^0 entries)
    n_iter: int
    n_fev: int                            #: loss-and-gradient evaluations (trial points included)
    success: bool
    message: str
    wall_time: float
    history: Dict[str, np.ndarray]        #: per iteration: iteration, loss, grad_norm, n_fev, n_hessp, wall_time
    config: FitConfig
    n_hessp: int = 0                      #: Gauss-Newton Hessian-vector products
    time_fev: float = 0.0                 #: seconds in evaluations (this session of a resumed fit)
    time_hessp: float = 0.0               #: seconds in Hessian-vector products (likewise)
    fingerprint: Optional[str] = None     #: of the data (:func:`~pixelkinetics.kinetics.estimate.data_fingerprint`)

    @property
    def reduced_chi2(self) -> float:
        """2 misfit / (n_obs - n_free): about 1 when the model and the noise level are right."""
        return 2.0 * self.misfit / max(self.n_obs - self.n_free, 1)

    @property
    def estimate(self) -> Estimate:
        """The fitted point, for uq, bootstrap and simulate."""
        return Estimate(self.config, self.params, self.theta, self.c0, self.fingerprint)

    def summary(self) -> List[str]:
        """How the fit went, in a few lines."""
        n_sites = sum(int(np.isfinite(t).sum()) for t in self.theta.values())
        work = f"{self.n_fev} loss-and-gradient evaluations ({self.time_fev / max(self.n_fev - 1, 1):.3f} s each)"
        if self.n_hessp:
            work += f", {self.n_hessp} Hessian-vector products ({self.time_hessp / self.n_hessp:.3f} s each)"
        values = self.params.values()
        return [self.message,
                f"{len(self.theta)} particles, {n_sites} sites: {self.n_iter} iterations, {work}; "
                f"{self.wall_time:.1f} s in all",
                f"loss {self.loss:.6g}, reduced chi-square {self.reduced_chi2:.4f} ({self.n_obs} observations, "
                f"{self.n_free} free parameters)",
                ", ".join(f"{n} {values[n]:.4g}" for n in self.config.free)]


def fit(data, config=None, *, output: "Optional[str | os.PathLike]" = None,
        checkpoint: "Optional[str | os.PathLike]" = None, resume: bool = False, max_iter: Optional[int] = None,
        progress: bool = True, comm=None) -> FitResult:
    """Fit the model to movies (``config.method``: Gauss-Newton trust region or L-BFGS-B).

    data: a list of :class:`~pixelkinetics.Movie`, or the path of a movie file; config: a
    :class:`~pixelkinetics.kinetics.config.FitConfig`, the path of its TOML file, or None for the defaults;
    output: a results file to write (MODEL.md section 9, with the data's ``/truth`` when it has one);
    checkpoint: the checkpoint file, written every ``config.checkpoint_every`` iterations (L-BFGS-B: at its
    restarts; default with an output: OUTPUT.checkpoint, removed once the results are written); resume:
    continue from it when it exists; max_iter: overrides ``config.max_iter`` (iterations in total, counting
    those before a resume);
    progress: show a progress bar with loss and gradient norm; comm: an MPI communicator
    (:func:`pixelkinetics.floor.parallel.world`): the particles are shared over its ranks, every rank returns
    what one process would, and only rank 0 shows progress and writes files (call it on every rank).
    """
    movies, path = read_data(data, comm)
    config = as_config(config, comm)
    pixels = (", theta" if config.fit_theta else "") + (", c0" if config.fit_initial else "")
    logger.debug(f"free: {', '.join(config.free) or 'none'}{pixels}; {processes(comm)}")
    if checkpoint is None and output is not None:
        checkpoint = f"{os.fspath(output)}.checkpoint"
    data_id = data_fingerprint(movies)
    # The checkpoint is never resumed on other data or another configuration.
    store = Checkpoint(checkpoint, digest(config.identity(), data_id), "fit", comm)
    result = _optimise(movies, config, store, store.begin(resume), max_iter, progress and rank_of(comm) == 0, comm)
    result.fingerprint = data_id
    if output is not None:
        on_root(comm, lambda: write_results(output, Results.of_fit(result, movies, data_path=path)))
        store.discard()
    return result


def _optimise(movies: List[Movie], config: FitConfig, store: Checkpoint, saved: Optional[Dict], max_iter: Optional[int],
              show: bool, comm) -> FitResult:
    """The fit itself, from the start or from ``saved`` (a checkpoint's tree)."""
    if config.refuse_degenerate:
        config.check_identifiable(movies)
    limit = config.max_iter if max_iter is None else int(max_iter)
    problem = config.problem(movies, comm)
    n_obs = count_observations(movies, config.fit_initial)
    space = ParameterSpace(config, problem, n_obs)
    n_free = len(space.free) + space.dim * space.n_sites
    if config.fit_theta and config.theta_mean == "zero":
        n_free -= 1

    history: Dict[str, list] = {k: [] for k in HISTORY}
    t_start = time.perf_counter()
    counters: Dict[str, float] = {}
    if saved is None:
        space.precondition()
        u0 = np.zeros(space.size)
    else:
        u0 = saved.pop("u")
        space.set_state(saved.pop("space"))
        history = {k: list(v) for k, v in saved.pop("history").items()}
        counters = saved
        t_start -= counters["wall_time"]
    objective = FitObjective(space, problem, n_fev=int(counters.get("n_fev", 0)),
                             n_hessp=int(counters.get("n_hessp", 0)))
    monitor = Monitor(config, objective, store, history, limit, t_start, show)
    try:
        if config.method == "gauss-newton":
            u_best, success, message = minimize_gauss_newton(
                objective, monitor, u0, float(counters.get("trust_radius", config.trust_radius)),
                bool(counters.get("fresh", True)))
        else:
            u_best, success, message = minimize_lbfgsb(objective, monitor, u0)
    finally:
        monitor.close()

    params, thetas, c0s, _, _ = space.unpack(u_best)
    final = problem.evaluate(params, thetas, c0s)
    c0s = c0s if c0s is not None else problem.initial_states()
    theta_maps = {m.name: problem.to_map(m, t) for m, t in zip(movies, thetas)}
    c0_maps = {m.name: problem.to_map(m, c) for m, c in zip(movies, c0s)}
    solution = problem.solve(params, theta_maps, c0_maps)
    return FitResult(
        params=params, theta=theta_maps, c0=c0_maps, fitted=solution.concentration, voltage=solution.voltage,
        loss=final.loss, misfit=final.misfit, n_obs=n_obs, n_free=n_free,
        n_iter=monitor.done, n_fev=objective.n_fev + 1, n_hessp=objective.n_hessp, success=success,
        message=message, wall_time=time.perf_counter() - t_start,
        time_fev=objective.time_fev, time_hessp=objective.time_hessp,
        history={k: np.asarray(v) for k, v in history.items()},
        config=config,
    )
