"""The fitting problem: movies, numerical settings, and loss, gradient and simulation through the core."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.special import ndtri

from .. import _core
from ..floor.parallel import agree, fingerprint
from .movie import Movie
from .observations import BLUR_COPIES, initial_condition, observation_weight, quantile_match, rate_drive, site_weight
from .params import Params
from .sharding import Shards


@dataclass
class Evaluation:
    """Loss and gradient on site vectors, in particle order."""

    loss: float                         #: misfit + theta penalty
    misfit: float                       #: data term alone
    grad_globals: np.ndarray            #: in the order of Params.names()
    grad_theta: List[np.ndarray]        #: per particle, (n_sites,)
    grad_c0: List[np.ndarray]           #: per particle, d loss / d c^0 (the frame-0 target follows mean(c^0))
    stats: Dict[str, int] = field(default_factory=dict)


@dataclass
class Solution:
    """Forward solution at the frame times, with solver statistics."""

    concentration: Dict[str, np.ndarray]  #: (T, H, W), NaN off the mask
    voltage: Dict[str, np.ndarray]        #: (T,) V at the frame times (NaN at frame 0 under rate driving)
    stats: Dict[str, int] = field(default_factory=dict)


@dataclass
class HessianProduct:
    """The Gauss-Newton Hessian of the loss applied to a direction d, on site vectors."""

    quadratic: float                    #: d^T H_misfit d / 2, the misfit's quadratic model along d
    globals: np.ndarray                 #: in the order of Params.names()
    theta: List[np.ndarray]             #: per particle
    c0: List[np.ndarray]                #: per particle
    stats: Dict[str, int] = field(default_factory=dict)


#: Per-particle result fields of a gradient, and of the frames.
_GRADIENT = ("grad_globals", "grad_theta", "grad_c0")
_FRAMES = ("concentration", "voltage", "stats")
_LOSS = ("loss", "misfit", "stats")


class Linearization:
    """The forward solutions at one point (p, theta, c0), kept in the core for many Gauss-Newton
    Hessian-vector products there: each costs one tangent-linear and one adjoint sweep (two linear
    solves per time step) and no Newton iterations. Made by :meth:`Problem.linearize`."""

    def __init__(self, problem: "Problem", p: Params, theta: Sequence[np.ndarray],
                 c0: Optional[Sequence[np.ndarray]], with_gradient: bool):
        self.problem = problem
        self.params = p
        self._n_globals = len(p.names())
        theta = [np.asarray(t, float) for t in theta]
        c0 = [] if c0 is None else [np.asarray(c, float) for c in c0]
        self._core = None

        def work():
            local = problem._local
            self._core = _core.Linearization(problem._batch, p.to_core(), local(theta), problem.settings, local(c0),
                                             with_gradient)
            return self._core.results()

        fields = _LOSS + (_GRADIENT if with_gradient else ())
        results = problem._gather(work, fields, p, theta, c0)
        #: loss and gradient at the point (gradient entries only with ``with_gradient``)
        self.evaluation = Problem._evaluation(results) if with_gradient else Evaluation(
            float(sum(r["loss"] for r in results)), float(sum(r["misfit"] for r in results)),
            np.zeros(self._n_globals), [], [], Problem._sum_stats(results))

    def product(self, d_globals: np.ndarray, d_theta: Sequence[np.ndarray],
                d_c0: Optional[Sequence[np.ndarray]] = None) -> HessianProduct:
        """H d for d = (raw globals in Params.names() order, theta per particle, c^0 per particle;
        None: zeros). Summed over particles in particle order, so independent of the threads."""
        d_globals = np.asarray(d_globals, float)
        if d_globals.shape != (self._n_globals,):
            raise ValueError(f"d_globals must have shape ({self._n_globals},), got {d_globals.shape}")
        d_theta = [np.asarray(t, float) for t in d_theta]
        d_c0 = [np.zeros_like(t) for t in d_theta] if d_c0 is None else [np.asarray(c, float) for c in d_c0]
        local = self.problem._local
        results = self.problem._gather(
            lambda: self._core.gauss_newton_product(d_globals, local(d_theta), local(d_c0)),
            _LOSS + _GRADIENT, d_globals, d_theta, d_c0, n_globals=self._n_globals)
        g = np.zeros(self._n_globals)
        quadratic = 0.0
        for r in results:
            g += r["grad_globals"]
            quadratic += r["misfit"]
        return HessianProduct(float(quadratic), g, [np.asarray(r["grad_theta"]) for r in results],
                              [np.asarray(r["grad_c0"]) for r in results], Problem._sum_stats(results))


class Problem:
    """Loss of MODEL.md section 7 over any number of particles, each with its own time grid.

    scheme: "be" or "bdf2"; n_sub: equal steps per frame interval; sigma: noise level of the loss;
    lam_s, lam_0: smoothness and size penalties on theta; linear_solver: "auto", "symmetric" or "lu";
    fit_initial: frame 0 enters the loss, for fits in which the initial state c^0 is a parameter (pass it
    as ``c0``; by default every method starts from :func:`initial_condition`); newton_budget: a solve that
    needs more Newton iterations per planned step than this (on average) raises SolverError (0: no limit);
    comm: an MPI communicator (:func:`pixelkinetics.floor.parallel.world`) over whose ranks the particles are
    shared; every method is then collective, and returns on every rank what one process would.
    """

    def __init__(self, movies: Sequence[Movie], scheme: str = "be", n_sub: int = 20, sigma: float = 0.02,
                 lam_s: float = 0.0, lam_0: float = 0.0, linear_solver: str = "auto",
                 newton_tol: float = 1e-12, h: float = 1.0, fit_initial: bool = False, newton_budget: float = 0.0,
                 comm=None):
        if isinstance(movies, Movie):
            movies = [movies]
        self.movies: List[Movie] = list(movies)
        if not self.movies:
            raise ValueError("a Problem needs at least one movie")
        names = [m.name for m in self.movies]
        if len(set(names)) != len(names):
            raise ValueError(f"movie names must be unique, got {names}")
        self.settings = _core.SolverSettings()
        self.settings.scheme = scheme
        self.settings.n_sub = int(n_sub)
        self.settings.sigma = float(sigma)
        self.settings.lam_s = float(lam_s)
        self.settings.lam_0 = float(lam_0)
        self.settings.linear_solver = linear_solver
        self.settings.newton_tol = float(newton_tol)
        self.settings.fit_initial = bool(fit_initial)
        self.settings.newton_budget = float(newton_budget)
        self.settings.validate()
        #: per particle (T, n_sites): the loss weight w_{f,i} of each observation (0 where missing)
        self.obs_weights: List[np.ndarray] = [observation_weight(m, self.settings.sigma) for m in self.movies]
        #: the particles' split over the ranks of ``comm`` (None: this process solves all of them)
        self.shards: Optional[Shards] = None
        if comm is not None and comm.Get_size() > 1:
            self.shards = Shards(comm, [m.n_sites for m in self.movies], [m.shape[0] for m in self.movies],
                                 [m.n_sites * max(m.shape[0] - 1, 1) * n_sub for m in self.movies])
        self._h = h
        #: snapshot movies, whose observations are matched by quantile at every evaluation
        self._quantile = [k for k, m in enumerate(self.movies) if m.kind == "snapshot"]
        if self._quantile and self.shards is not None:
            raise ValueError("snapshot (quantile-matched) populations are not shared over MPI ranks; "
                             "fit them in one process")
        #: fixed standard-normal draws per snapshot movie (common random numbers): every model
        #: value stands for BLUR_COPIES copies with the noise sigma * draw added, ranked and compared with
        #: the observations, so that the broadening of a measured distribution by noise is not mistaken
        #: for spread of the particles (several copies keep the draws' own scatter small)
        self._blur = {k: np.random.default_rng(zlib.crc32(self.movies[k].name.encode())).standard_normal(
            (self.movies[k].shape[0], self.movies[k].n_sites, BLUR_COPIES)) for k in self._quantile}
        local = self._local(list(zip(self.movies, self.obs_weights)))
        # Each rank builds its own movies: an invalid one must fail every rank, not its owner alone.
        self._core_movies = agree(comm, lambda: [self._core_movie(m, w, h) for m, w in local])
        self._batch = _core.Batch(self._core_movies)
        self._matched_at = None

    # -- set-up ------------------------------------------------------------------------------------
    def _core_movie(self, m: Movie, obs_weight: np.ndarray, h: float,
                    observed: Optional[np.ndarray] = None) -> "_core.Movie":
        """The core's form of a movie; ``observed`` replaces its observations (a snapshot's matched ones)."""
        c0 = initial_condition(m, self.settings.sigma)
        drive = rate_drive(m, c0) if m.driving == "rate" else m.voltage
        observed = m.concentration[:, m.mask] if observed is None else observed
        return _core.Movie(m.name, m.mask.astype(np.uint8), h, m.connect, site_weight(m), c0, m.time, m.driving,
                           drive, np.where(obs_weight > 0, observed, 0.0), obs_weight)

    def _rematch(self, p: Params, theta: Sequence[np.ndarray], c0: Sequence[np.ndarray]) -> None:
        """Re-assign the observations of snapshot movies to their sites by the rank of the model's
        values at (p, theta, c0): the k-th smallest model value of a frame meets the observed quantile at
        level (k + 1/2) / N, weighted n_f / N so that a frame counts as many observations as it has. The
        loss is then the squared 1-D Wasserstein distance per frame between the observations and the
        model's values blurred by the noise (fixed draws, see ``_blur``); it is continuous where ranks swap (tied
        values meet the same quantiles), and its gradient is that of the matched least squares."""
        if not self._quantile:
            return
        key = (tuple(p.values().values()), p.j0_base) + tuple(np.asarray(t).tobytes() for t in theta) + tuple(
            np.asarray(c).tobytes() for c in c0)
        if key == self._matched_at:
            return
        frames = self._batch.simulate(p.to_core(), list(theta), self.settings, list(c0))
        for k in self._quantile:
            m = self.movies[k]
            model = np.asarray(frames[k]["concentration"])
            observed, weight = quantile_match(m.concentration[:, m.mask], model,
                                              self.settings.sigma * self._blur[k])
            self._core_movies[k] = self._core_movie(m, weight, self._h, observed)
        self._batch = _core.Batch(self._core_movies)
        self._matched_at = key

    @property
    def names(self) -> List[str]:
        return [m.name for m in self.movies]

    @property
    def n_sites(self) -> int:
        return sum(m.n_sites for m in self.movies)

    def _site_vectors(self, maps: Mapping[str, np.ndarray], label: str, default) -> List[np.ndarray]:
        """Per-particle site vectors from a dict of (H, W) maps; a missing name takes ``default(movie)``."""
        unknown = set(maps) - set(self.names)
        if unknown:
            raise ValueError(f"{label} has maps for unknown particles {sorted(unknown)}; known: {self.names}")
        out = []
        for m in self.movies:
            if m.name not in maps:
                out.append(default(m))
                continue
            t = np.asarray(maps[m.name], dtype=np.float64)
            if t.shape != m.mask.shape:
                raise ValueError(f"{label}[{m.name!r}] must have the mask shape {m.mask.shape}, got {t.shape}")
            out.append(t[m.mask])
        return out

    def theta_vectors(self, theta: Optional[Mapping[str, np.ndarray]]) -> List[np.ndarray]:
        """Per-particle site vectors from a dict of (H, W) maps; a missing name means zeros."""
        out = self._site_vectors(theta or {}, "theta", self.default_theta)
        for m, v in zip(self.movies, out):
            if not np.all(np.isfinite(v)):
                raise ValueError(f"theta[{m.name!r}] must be finite on the mask")
        return out

    def default_theta(self, movie: Movie) -> np.ndarray:
        """theta where none is given: 0, except in snapshot populations, whose particles cannot be told
        apart from frame to frame: there the model's particles take the quantiles of the prior
        N(0, 1 / lam_0) (in a fixed shuffled order), so that the model population has the prior's
        spread of rates without learning one rate per particle the data cannot tell."""
        n = movie.n_sites
        if movie.kind != "snapshot" or self.settings.lam_0 <= 0:
            return np.zeros(n)
        spread = ndtri((np.arange(n) + 0.5) / n) / np.sqrt(self.settings.lam_0)  # the normal quantiles
        return np.random.default_rng(zlib.crc32(movie.name.encode()) + 1).permutation(spread)

    def initial_states(self) -> List[np.ndarray]:
        """The default c^0 of every particle as site vectors (MODEL.md section 7)."""
        return [initial_condition(m, self.settings.sigma) for m in self.movies]

    def c0_vectors(self, c0: Optional[Mapping[str, np.ndarray]]) -> List[np.ndarray]:
        """Site vectors from a dict of (H, W) initial-state maps; a missing name takes the default;
        None gives an empty list (the core then uses each particle's own c^0)."""
        return [] if c0 is None else self._site_vectors(c0, "c0", initial_condition)

    def to_map(self, movie: Movie, values: np.ndarray) -> np.ndarray:
        """Scatter site values (..., n_sites) into (..., H, W) maps, NaN off the mask."""
        values = np.asarray(values)
        out = np.full(values.shape[:-1] + movie.mask.shape, np.nan)
        out[..., movie.mask] = values
        return out

    # -- evaluation --------------------------------------------------------------------------------
    def _local(self, items: Sequence) -> list:
        """The entries of a per-particle list that this rank solves (all of them without MPI)."""
        return list(items) if self.shards is None else self.shards.select(items)

    def _gather(self, work, fields: Sequence[str], *inputs, n_globals: Optional[int] = None) -> list:
        """Every particle's results of ``work`` (this rank's core call) on every rank; ``inputs`` (Params
        and per-particle arrays) identify the call, to check that the ranks agree on it."""
        if self.shards is None:
            return work()
        flat: list = []
        for x in inputs:
            if isinstance(x, Params):
                flat.append(list(x.values().values()))
                n_globals = len(x.names()) if n_globals is None else n_globals
            else:
                flat.extend(x if isinstance(x, list) else [x])
        return self.shards.run(work, fields, n_globals, fingerprint(*flat))

    def _batch_call(self, mode: str, p: Params, theta: Sequence[np.ndarray], c0: Sequence[np.ndarray],
                    fields: Sequence[str]) -> list:
        theta, c0 = list(theta), list(c0)
        return self._gather(lambda: getattr(self._batch, mode)(p.to_core(), self._local(theta), self.settings,
                                                               self._local(c0)), fields, p, theta, c0)

    @staticmethod
    def _sum_stats(results) -> Dict[str, int]:
        total: Dict[str, int] = {}
        for r in results:
            for k, v in r["stats"].items():
                total[k] = total.get(k, 0) + v
        return total

    def solve(self, p: Params, theta: Optional[Mapping[str, np.ndarray]] = None,
              c0: Optional[Mapping[str, np.ndarray]] = None) -> Solution:
        """Forward solution with voltages and solver statistics; ``c0`` optionally replaces initial states."""
        results = self._batch_call("simulate", p, self.theta_vectors(theta), self.c0_vectors(c0), _FRAMES)
        conc = {m.name: self.to_map(m, r["concentration"]) for m, r in zip(self.movies, results)}
        volt = {m.name: np.asarray(r["voltage"]) for m, r in zip(self.movies, results)}
        return Solution(conc, volt, self._sum_stats(results))

    def simulate(self, p: Params, theta: Optional[Mapping[str, np.ndarray]] = None,
                 c0: Optional[Mapping[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
        """{name: (T, H, W) concentration at the frame times}, NaN off the mask."""
        return self.solve(p, theta, c0).concentration

    def simulate_vectors(self, p: Params, theta: Sequence[np.ndarray],
                         c0: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
        """Concentration at the frame times on site vectors: per particle (T, n_sites)."""
        results = self._batch_call("simulate", p, theta, [] if c0 is None else c0, _FRAMES)
        return [np.asarray(r["concentration"]) for r in results]

    def loss(self, p: Params, theta: Optional[Mapping[str, np.ndarray]] = None,
             c0: Optional[Mapping[str, np.ndarray]] = None) -> float:
        theta_v, c0_v = self.theta_vectors(theta), self.c0_vectors(c0)
        self._rematch(p, theta_v, c0_v)
        results = self._batch_call("loss", p, theta_v, c0_v, _LOSS)
        return float(sum(r["loss"] for r in results))

    def loss_and_gradient(self, p: Params, theta: Optional[Mapping[str, np.ndarray]] = None
                          ) -> Tuple[float, Dict[str, float], Dict[str, np.ndarray]]:
        """Loss, its gradient in every raw global (dict keyed by Params.names()) and in theta
        (dict of (H, W) maps, NaN off the mask), by the discrete adjoint."""
        loss, g_vec, g_theta, _ = self.loss_and_gradient_vectors(p, self.theta_vectors(theta))
        g_globals = dict(zip(p.names(), (float(v) for v in g_vec)))
        return loss, g_globals, {m.name: self.to_map(m, g) for m, g in zip(self.movies, g_theta)}

    def loss_and_gradient_vectors(self, p: Params, theta: Sequence[np.ndarray]):
        """The same on site vectors: (loss, global gradient array, [theta gradients], stats)."""
        e = self.evaluate(p, theta)
        return e.loss, e.grad_globals, e.grad_theta, e.stats

    def evaluate(self, p: Params, theta: Sequence[np.ndarray], c0: Optional[Sequence[np.ndarray]] = None
                 ) -> Evaluation:
        """Loss and gradient on site vectors, optionally from given initial states ``c0`` (site vectors).
        Particle contributions are summed in particle order, so the result does not depend on threads."""
        self._rematch(p, theta, [] if c0 is None else c0)
        results = self._batch_call("loss_and_gradient", p, theta, [] if c0 is None else c0, _LOSS + _GRADIENT)
        return self._evaluation(results)

    def linearize(self, p: Params, theta: Sequence[np.ndarray], c0: Optional[Sequence[np.ndarray]] = None,
                  with_gradient: bool = True) -> Linearization:
        """Solve at (p, theta, c0) (site vectors) and keep the solutions for Gauss-Newton Hessian-vector
        products; ``with_gradient`` also gives the loss gradient there (``.evaluation``)."""
        self._rematch(p, theta, [] if c0 is None else c0)
        return Linearization(self, p, theta, c0, with_gradient)

    @classmethod
    def _evaluation(cls, results) -> Evaluation:
        loss = misfit = 0.0
        g = np.zeros_like(np.asarray(results[0]["grad_globals"], float))
        for r in results:
            loss += r["loss"]
            misfit += r["misfit"]
            g += r["grad_globals"]
        return Evaluation(float(loss), float(misfit), g, [np.asarray(r["grad_theta"]) for r in results],
                          [np.asarray(r["grad_c0"]) for r in results], cls._sum_stats(results))
