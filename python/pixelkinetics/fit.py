"""Fitting: L-BFGS-B over the free globals, the theta maps and (optionally) the initial states.

The objective is the loss of MODEL.md section 7 divided by the number of observations, so it is O(1)
(about 1/2 at a good fit). The optimiser works in transformed, preconditioned coordinates
(:class:`ParameterSpace`):

- positive globals (k0, kappa, D) in log space, alpha through the logit, the others as they are, each
  scaled by its Gauss-Newton curvature;
- per pixel, (theta_i, c^0_i) through the inverse Cholesky factor of its 2 x 2 Gauss-Newton block,
  estimated from finite-difference probes of the forward model and rebuilt at a few iterations
  (``precondition_at``), when L-BFGS-B restarts;
- theta has its global mean removed (``theta_mean = "zero"``), which removes the exact degeneracy of
  k0 with the mean of theta without biasing the shape of the map;
- c^0 stays in [EPS, 1 - EPS] through bounds.

Fits write a checkpoint every few iterations; :func:`fit` with ``resume=True`` restarts L-BFGS-B from
the last one (its curvature memory is rebuilt, so a resumed fit ends at the same optimum to the
optimiser's tolerance, not bit for bit).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np
from scipy import optimize

from ._core import SolverError
from .io import atomic_h5
from .movie import Movie
from .parallel import on_root, rank_of
from .params import Params
from .problem import EPS, Problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Parameters optimised in log space.
POSITIVE = ("k0", "kappa", "D")
#: Parameters optimised through the logistic map.
UNIT_INTERVAL = ("alpha",)
#: Optimisers of :func:`fit`.
METHODS = ("gauss-newton", "l-bfgs-b")


def read_toml(path: "str | os.PathLike") -> Dict:
    """A TOML file as a dict; invalid TOML is a ValueError naming the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None


class DegenerateParametersError(ValueError):
    """The free parameters contain a combination the model cannot determine from any data."""


@dataclass
class FitConfig:
    """What to fit and how. ``initial`` is the starting (and, for fixed parameters, the final) model.

    free: names of free globals (Params.names(): k0, alpha, Omega, kappa, B, D, a1.., b0..);
    fit_theta: learn the per-pixel log-rate maps; theta_mean: "zero" (k0 carries the mean rate) or
    "free" (then lam_0 > 0 is needed when k0 or b0 is free); fit_initial: learn c^0 with frame 0 in the
    loss; bounds: {name: (low, high)} on raw values; lam_s, lam_0: theta penalties; sigma: noise level.
    """

    initial: Params = field(default_factory=lambda: Params(k0=0.01, alpha=0.5, Omega=3.0, kappa=1.0, B=1.0,
                                                               b=[0.0, 0.0, 0.0], j0_base="sqrt"))
    free: List[str] = field(default_factory=lambda: ["k0", "Omega", "kappa", "b1", "b2"])
    fit_theta: bool = True
    theta_mean: str = "zero"
    fit_initial: bool = True
    bounds: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    lam_s: float = 2.0
    lam_0: float = 0.0
    sigma: float = 0.02
    #: "gauss-newton": trust-region Newton-CG on the Gauss-Newton Hessian (products from the core);
    #: "l-bfgs-b": SciPy's L-BFGS-B with the adjoint gradient alone
    method: str = "gauss-newton"
    #: BDF2 keeps the time-discretisation error of the fitted movies far below the noise (backward Euler
    #: at n_sub = 20 leaves a systematic 0.18 sigma, enough to bias the shape of j0(c))
    scheme: str = "bdf2"
    n_sub: int = 20
    #: Newton tolerance of the fit's solves, a concentration: 1e-10 is far below any noise, and
    #: solves near the rounding limit would otherwise stall
    newton_tol: float = 1e-10
    #: sparse factorisation of the Newton and adjoint systems: "auto", "symmetric" (LDLT) or "lu"
    linear_solver: str = "auto"
    #: Newton iterations per planned step beyond which a trial point counts as failed (the line search
    #: backtracks); normal solves need 2 to 4.
    newton_budget: float = 30.0
    max_iter: int = 1000
    #: converged when the loss (chi-square / 2) fell by less than loss_tol over the last loss_window
    #: iterations: far below what the data can tell apart
    loss_tol: float = 0.05
    loss_window: int = 10
    gtol: float = 1e-8   #: L-BFGS-B's own test on the projected gradient of the O(1) objective
    ftol: float = 1e-12  #: L-BFGS-B's own test on the decrease of the O(1) objective
    maxcor: int = 30     #: L-BFGS memory
    #: Gauss-Newton: conjugate-gradient iterations per step at most, and the forcing term (CG stops when
    #: the model gradient has fallen by this factor)
    max_cg: int = 200
    cg_forcing: float = 0.1
    trust_radius: float = 1.0  #: Gauss-Newton: initial trust radius in the preconditioned coordinates
    checkpoint_every: int = 5
    #: iterations after which the preconditioner is rebuilt at the current point (it starts at iteration 0)
    #: (default: [3, 6, 10, 15, 25] for Gauss-Newton, [20, 60, 150] for L-BFGS-B, which restarts there)
    precondition_at: Optional[List[int]] = None
    #: the first iterations fit only the pixels (theta, c^0), with the globals held: far from the optimum
    #: the globals would otherwise absorb what the pixels have not yet explained
    warmup_iter: int = 20
    #: refuse free sets with an exact degeneracy before fitting (:meth:`check_identifiable`); with False the
    #: fit runs and the uncertainty analysis names the undetermined combination
    refuse_degenerate: bool = True

    def __post_init__(self) -> None:
        self.free = list(self.free)
        if self.precondition_at is None:
            self.precondition_at = [3, 6, 10, 15, 25] if self.method == "gauss-newton" else [20, 60, 150]
        self.precondition_at = [int(k) for k in self.precondition_at]
        self.bounds = {k: (float(v[0]), float(v[1])) for k, v in dict(self.bounds).items()}
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.linear_solver not in ("auto", "symmetric", "lu"):
            raise ValueError(f"linear_solver must be 'auto', 'symmetric' or 'lu', got {self.linear_solver!r}")
        if self.theta_mean not in ("zero", "free"):
            raise ValueError(f"theta_mean must be 'zero' or 'free', got {self.theta_mean!r}")
        names = self.initial.names()
        for name in self.free + list(self.bounds):
            if name not in names:
                raise ValueError(f"unknown parameter {name!r}; the model has {names} "
                                 f"(a1.. and b0.. follow the lengths of the initial a and b)")
        if len(set(self.free)) != len(self.free):
            raise ValueError(f"free parameters are listed twice: {self.free}")
        for name, (low, high) in self.bounds.items():
            if not low < high:
                raise ValueError(f"bounds of {name} must have low < high, got ({low}, {high})")
            value = self.initial.values()[name]
            if not low <= value <= high:
                raise ValueError(f"the initial {name} = {value} lies outside its bounds ({low}, {high})")
        for name in self.free:
            value = self.initial.values()[name]
            if name in POSITIVE and not value > 0:
                raise ValueError(f"free parameter {name} is optimised in log space and must start > 0, got {value}")
        if self.max_iter < 0 or self.checkpoint_every < 1:
            raise ValueError("max_iter must be >= 0 and checkpoint_every >= 1")

    # -- TOML ----------------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: "str | os.PathLike") -> "FitConfig":
        """Read ``[model]`` (initial Params), ``[fit]`` and ``[solver]`` tables; unknown keys are errors."""
        return cls.from_dict(read_toml(path), where=os.fspath(path))

    @classmethod
    def from_dict(cls, doc: Mapping, where: str = "config") -> "FitConfig":
        unknown = set(doc) - {"model", "fit", "solver"}
        if unknown:
            raise ValueError(f"{where}: unknown tables {sorted(unknown)}; expected [model], [fit], [solver]")
        default = cls()
        model = dict(doc.get("model", {}))
        param_fields = {f.name for f in dataclasses.fields(Params)}
        bad = set(model) - param_fields
        if bad:
            raise ValueError(f"{where}: [model] has unknown keys {sorted(bad)}; expected {sorted(param_fields)}")
        options = {**dict(doc.get("fit", {})), **dict(doc.get("solver", {}))}
        option_fields = {f.name for f in dataclasses.fields(cls)} - {"initial"}
        bad = set(options) - option_fields
        if bad:
            raise ValueError(f"{where}: [fit]/[solver] have unknown keys {sorted(bad)}; "
                             f"expected {sorted(option_fields)}")
        try:
            initial = dataclasses.replace(default.initial, **model)
            return cls(initial=initial, **options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def to_dict(self) -> Dict:
        model = {f.name: getattr(self.initial, f.name) for f in dataclasses.fields(Params)}
        fit = {k: v for k, v in dataclasses.asdict(self).items() if k != "initial"}
        fit["bounds"] = {k: list(v) for k, v in self.bounds.items()}
        return {"model": model, "fit": fit}

    def problem(self, movies: Sequence[Movie], comm=None, **overrides) -> Problem:
        """The Problem of these movies with this config's numerics (``overrides``: Problem keywords)."""
        options = dict(scheme=self.scheme, n_sub=self.n_sub, sigma=self.sigma, lam_s=self.lam_s, lam_0=self.lam_0,
                       fit_initial=self.fit_initial, newton_budget=self.newton_budget, newton_tol=self.newton_tol,
                       linear_solver=self.linear_solver)
        return Problem(movies, comm=comm, **{**options, **overrides})

    def check_identifiable(self, movies: Sequence[Movie]) -> None:
        """Refuse free sets with an exact degeneracy of the model (MODEL.md section 7)."""
        free = set(self.free)
        rate_driven = any(m.driving == "rate" for m in movies)
        mean_free = self.fit_theta and self.theta_mean == "free" and self.lam_0 == 0.0
        level = [n for n in ("k0", "b0") if n in free] + (["the mean of theta"] if mean_free else [])
        if len(level) > 1:
            raise DegenerateParametersError(
                f"{' and '.join(level)} cannot all be free: the rate constant is k0 exp(b0 + theta_i), so the data "
                "determine only their sum in log space. Keep one of them (default: k0 free, b0 = 0 fixed, "
                "theta_mean = 'zero'), or give theta a size penalty lam_0 > 0.")
        if {"Omega", "a1"} <= free:
            raise DegenerateParametersError(
                "Omega and a1 cannot both be free: Omega (1 - 2c) = -Omega P1(2c - 1), so only a1 - Omega is "
                "determined. Fix one of them.")
        if {"Omega", "B"} <= free and rate_driven:
            raise DegenerateParametersError(
                "Omega and B cannot both be free under rate driving: B (c - cbar) with cbar prescribed adds "
                "B c to mu_h, and the constant is absorbed by V, so only 2 Omega - B is determined. Fix one "
                "of them.")


# -- the map between optimiser coordinates and model parameters ---------------------------------------
def _site_degrees(mask: np.ndarray) -> np.ndarray:
    """Number of 4-neighbour edges of each site, in site order."""
    m = np.pad(mask, 1)
    deg = m[:-2, 1:-1].astype(int) + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:]
    return deg[mask]


class ParameterSpace:
    """Optimiser vector u <-> (Params, theta site vectors, c^0 site vectors).

    u = 0 is the starting point. Globals: z = z_start + step * u (z the log/logit/identity transform).
    Pixels: (theta_i, c^0_i) = start_i + M_i u_i, with M_i = L_i^-T from the Cholesky factor of the 2 x 2
    (or 1 x 1) Gauss-Newton block of pixel i, so that L-BFGS-B sees a Hessian close to the identity in
    every pixel and every global (:meth:`precondition`). M_i is upper triangular, so c^0_i depends on
    its own coordinate alone and stays inside [EPS, 1 - EPS] through a simple bound.
    """

    def __init__(self, config: FitConfig, problem: Problem, n_obs: int):
        self.config = config
        self.problem = problem
        self.names = list(config.initial.names())
        self.free = [n for n in self.names if n in config.free]
        self.sizes = [m.n_sites for m in problem.movies]
        self.n_sites = int(sum(self.sizes))
        self.n_obs = n_obs
        self.dim = int(config.fit_theta) + int(config.fit_initial)  # unknowns per pixel
        values = config.initial.values()
        self.z_start = np.array([self._forward(n, values[n]) for n in self.free])
        self.step = np.ones(len(self.free))
        self.theta_start = np.concatenate(problem.theta_vectors(None))
        self.c0_start = np.concatenate(problem.initial_states())
        self.block = np.tile(np.eye(self.dim), (self.n_sites, 1, 1))

    @property
    def size(self) -> int:
        return len(self.free) + self.dim * self.n_sites

    @staticmethod
    def _forward(name: str, x: float) -> float:
        if name in POSITIVE:
            return float(np.log(x))
        if name in UNIT_INTERVAL:
            return float(np.log(x / (1.0 - x)))
        return float(x)

    @staticmethod
    def _inverse(name: str, z: float) -> Tuple[float, float]:
        """Raw value and d raw / d z."""
        if name in POSITIVE:
            x = float(np.exp(min(z, 700.0)))  # a wild trial step fails in the solver, not in exp
            return x, x
        if name in UNIT_INTERVAL:
            x = float(1.0 / (1.0 + np.exp(-z)))
            return x, x * (1.0 - x)
        return float(z), 1.0

    def bounds(self, fix_globals: bool = False) -> List[Tuple[Optional[float], Optional[float]]]:
        """L-BFGS-B bounds on u: the configured bounds of the globals (or u = 0 when ``fix_globals``) and
        [EPS, 1 - EPS] on c^0."""
        out: List[Tuple[Optional[float], Optional[float]]] = []
        for i, n in enumerate(self.free):
            if fix_globals:
                out.append((0.0, 0.0))
                continue
            low, high = self.config.bounds.get(n, (-np.inf, np.inf))
            zl = -np.inf if (n in POSITIVE and low <= 0) or low == -np.inf else self._forward(n, low)
            zh = np.inf if high == np.inf else self._forward(n, high)
            out.append((None if zl == -np.inf else (zl - self.z_start[i]) / self.step[i],
                        None if zh == np.inf else (zh - self.z_start[i]) / self.step[i]))
        pixels = [[(None, None)] * self.n_sites for _ in range(self.dim)]
        if self.config.fit_initial:
            scale = self.block[:, -1, -1]
            pixels[-1] = list(zip((EPS - self.c0_start) / scale, (1.0 - EPS - self.c0_start) / scale))
        return out + [b for pixel in zip(*pixels) for b in pixel]

    def _pixels(self, u: np.ndarray) -> np.ndarray:
        """(n_sites, dim) pixel unknowns from u: the start plus the preconditioned step."""
        up = u[len(self.free):].reshape(self.n_sites, self.dim)
        return np.einsum("nij,nj->ni", self.block, up)

    def unpack(self, u: np.ndarray):
        """(Params, theta vectors, c0 vectors or None, d raw / d z of the free globals, c0 as one array)."""
        u = np.asarray(u, dtype=float)
        changes, jac = {}, np.empty(len(self.free))
        for i, n in enumerate(self.free):
            changes[n], jac[i] = self._inverse(n, self.z_start[i] + self.step[i] * u[i])
        params = self.config.initial.replace(**changes)
        pixels = self._pixels(u)
        split = np.cumsum(self.sizes)[:-1]
        theta = self.theta_start.copy()  # held at its start unless fitted
        if self.config.fit_theta:
            theta = self.theta_start + pixels[:, 0]
            if self.config.theta_mean == "zero":
                theta -= theta.mean()
        c0 = None
        if self.config.fit_initial:
            c0 = np.clip(self.c0_start + pixels[:, -1], EPS, 1.0 - EPS)
        return params, np.split(theta, split), None if c0 is None else np.split(c0, split), jac, c0

    def _c0_free(self, c0: Optional[np.ndarray]) -> np.ndarray:
        """1 where c^0 lies strictly inside its clip range (the map u -> c^0 has slope there), else 0."""
        if c0 is None:
            return np.ones(self.n_sites)
        return ((c0 > EPS) & (c0 < 1.0 - EPS)).astype(float)

    def chain(self, grad_globals: np.ndarray, grad_theta: Sequence[np.ndarray], grad_c0: Sequence[np.ndarray],
              jac: np.ndarray, c0: Optional[np.ndarray] = None) -> np.ndarray:
        """Gradient in u from a raw gradient (globals in Params.names() order, theta and c^0 per particle);
        ``c0`` (from :meth:`unpack`) zeroes the entries its clip holds."""
        grad = dict(zip(self.names, grad_globals))
        g_globals = np.array([grad[n] * jac[i] * self.step[i] for i, n in enumerate(self.free)])
        cols = []
        if self.config.fit_theta:
            g = np.concatenate(grad_theta)
            cols.append(g - g.mean() if self.config.theta_mean == "zero" else g)
        if self.config.fit_initial:
            cols.append(np.concatenate(grad_c0) * self._c0_free(c0))
        g_pixels = np.einsum("nji,nj->ni", self.block, np.stack(cols, axis=1)) if cols else np.zeros((0, 0))
        return np.concatenate([g_globals, g_pixels.ravel()])

    def push(self, v: np.ndarray, jac: np.ndarray, c0: Optional[np.ndarray] = None):
        """The raw direction of a direction v in u (the transpose of :meth:`chain`): (globals in
        Params.names() order, theta per particle, c^0 per particle)."""
        d_globals = np.zeros(len(self.names))
        for i, n in enumerate(self.free):
            d_globals[self.names.index(n)] = jac[i] * self.step[i] * v[i]
        pixels = np.einsum("nij,nj->ni", self.block, v[len(self.free):].reshape(self.n_sites, self.dim))
        split = np.cumsum(self.sizes)[:-1]
        d_theta = np.zeros(self.n_sites)
        if self.config.fit_theta:
            d_theta = pixels[:, 0] - (pixels[:, 0].mean() if self.config.theta_mean == "zero" else 0.0)
        d_c0 = pixels[:, -1] * self._c0_free(c0) if self.config.fit_initial else np.zeros(self.n_sites)
        return d_globals, np.split(d_theta, split), np.split(d_c0, split)

    # -- preconditioning -------------------------------------------------------------------------------
    def precondition(self, eps: float = 1e-4, seed: int = 0) -> None:
        """Scale every global and every pixel block by its Gauss-Newton curvature at the start.

        Sensitivities of the frames come from finite differences of forward solves: one per free global,
        and two per kind of pixel unknown, each perturbing one checkerboard colour with random balanced
        signs, so that the group mean (held by the drive) barely moves and neighbours do not add up.
        """
        problem, config = self.problem, self.config
        u0 = np.zeros(self.size)
        params, thetas, c0s, _, c0 = self.unpack(u0)
        base = problem.simulate_vectors(params, thetas, c0s)
        first = 0 if config.fit_initial else 1
        weights = [w / (config.sigma ** 2 * self.n_obs) for w in problem.obs_weights]
        for w in weights:
            w[:first] = 0.0

        def curvature(responses):
            return np.concatenate([np.sum(w * r * r, axis=0) for w, r in zip(weights, responses)])

        for i, name in enumerate(self.free):
            z = self.z_start[i] + eps
            changed = problem.simulate_vectors(params.replace(**{name: self._inverse(name, z)[0]}), thetas, c0s)
            h = float(np.sum(curvature([(a - b) / eps for a, b in zip(changed, base)])))
            self.step[i] = 1.0 / np.sqrt(h) if h > 0 else 1.0

        if self.dim == 0:
            return
        rng = np.random.default_rng(seed)
        colours, signs = [], []
        for m in problem.movies:
            rows, cols = np.nonzero(m.mask)
            colour = (rows + cols) % 2
            sign = np.empty(m.n_sites)
            for k in (0, 1):
                idx = np.flatnonzero(colour == k)
                sign[idx] = np.where(np.arange(idx.size) % 2 == 0, 1.0, -1.0)[rng.permutation(idx.size)]
            colours.append(colour)
            signs.append(sign)

        def pixel_response(kind):
            """d c_i(t_f) / d (theta_i or c0_i), per particle (T, n)."""
            out = [np.zeros_like(b) for b in base]
            for k in (0, 1):
                delta = [eps * s * (c == k) for s, c in zip(signs, colours)]
                if kind == "theta":
                    changed = problem.simulate_vectors(params, [t + d for t, d in zip(thetas, delta)], c0s)
                else:
                    # Inward at the bounds: a concentration on one must stay inside (0, 1).
                    inward = [np.where(c + d < 1.0 - EPS / 2, d, -d) for c, d in zip(c0s, delta)]
                    delta = [np.where(c + d > EPS / 2, d, -d) for c, d in zip(c0s, inward)]
                    changed = problem.simulate_vectors(params, thetas, [c + d for c, d in zip(c0s, delta)])
                for o, a, b, d, c in zip(out, changed, base, delta, colours):
                    on = c == k
                    o[:, on] = (a[:, on] - b[:, on]) / d[on]
            return out

        responses = []
        if config.fit_theta:
            responses.append(pixel_response("theta"))
        if config.fit_initial:
            responses.append(pixel_response("c0"))
        H = np.empty((self.n_sites, self.dim, self.dim))
        for a in range(self.dim):
            for b in range(a, self.dim):
                H[:, a, b] = H[:, b, a] = np.concatenate(
                    [np.sum(w * ra * rb, axis=0) for w, ra, rb in zip(weights, responses[a], responses[b])])
        if config.fit_theta:
            degrees = np.concatenate([_site_degrees(m.mask) for m in problem.movies])
            H[:, 0, 0] += (config.lam_s * degrees + config.lam_0) / self.n_obs
        for a in range(self.dim):  # pixels without information keep a finite step
            H[:, a, a] += 1e-3 * np.median(H[:, a, a]) + 1e-12
        L = np.linalg.cholesky(H)
        self.block = np.transpose(np.linalg.inv(L), (0, 2, 1))

    def recentre(self, u: np.ndarray) -> None:
        """Make the point u the new start (u = 0); call :meth:`precondition` next."""
        params, thetas, _, _, c0 = self.unpack(u)
        values = params.values()
        self.z_start = np.array([self._forward(n, values[n]) for n in self.free])
        self.theta_start = np.concatenate(thetas)
        if c0 is not None:
            self.c0_start = c0

    _STATE = ("z_start", "step", "theta_start", "c0_start", "block")

    def state(self) -> Dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in self._STATE}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        for k in self._STATE:
            setattr(self, k, np.asarray(state[k], dtype=float))


# -- results -----------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """The outcome of a fit."""

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

    @property
    def reduced_chi2(self) -> float:
        """2 misfit / (n_obs - n_free): about 1 when the model and the noise level are right."""
        return 2.0 * self.misfit / max(self.n_obs - self.n_free, 1)


def count_observations(movies: Sequence[Movie], include_frame0: bool) -> int:
    first = 0 if include_frame0 else 1
    return int(sum(np.isfinite(m.concentration[first:][:, m.mask]).sum() for m in movies))


class FitObjective:
    """The O(1) objective loss / n_obs, its gradient in the optimiser coordinates u and, from a kept
    linearisation, products with its Gauss-Newton Hessian."""

    def __init__(self, space: ParameterSpace, problem: Problem, n_fev: int = 0, n_hessp: int = 0):
        self.space = space
        self.problem = problem
        self.scale = 1.0 / space.n_obs
        self.n_fev = n_fev       #: loss-and-gradient evaluations, failed ones included
        self.n_hessp = n_hessp   #: Hessian-vector products
        self.n_failed = 0        #: trial points the solver could not integrate
        self.time_fev = 0.0      #: seconds spent in evaluations
        self.time_hessp = 0.0    #: seconds spent in products
        self._last: Optional[Tuple[np.ndarray, float, np.ndarray]] = None
        self._lin = None         #: (linearisation, jac, c0) at self._last's point, when kept

    def __call__(self, u: np.ndarray, keep: bool = False) -> Tuple[float, np.ndarray]:
        """f and its gradient at u; ``keep``: keep the linearisation there for :meth:`hessp`."""
        params, thetas, c0s, jac, c0 = self.space.unpack(u)
        self.n_fev += 1
        t = time.perf_counter()
        try:
            if keep:
                lin = self.problem.linearize(params, thetas, c0s)
                e = lin.evaluation
            else:
                e = self.problem.evaluate(params, thetas, c0s)
        except SolverError:
            if self._last is None:  # the starting point itself must be solvable
                raise
            # A trial so far out that a particle cannot be integrated (within the work limit). A finite,
            # much larger value makes the line search backtrack or the trust region shrink; an infinite
            # one would break the line search's interpolation.
            self.n_failed += 1
            return 10.0 * self._last[1] + 1.0, np.zeros_like(u)
        finally:
            self.time_fev += time.perf_counter() - t
        f, g = e.loss * self.scale, self.space.chain(e.grad_globals, e.grad_theta, e.grad_c0, jac, c0) * self.scale
        self._last = (np.array(u, copy=True), f, g)
        self._lin = (lin, jac, c0) if keep else None
        return f, g

    def at(self, u: np.ndarray) -> Tuple[float, np.ndarray]:
        """The value at u, reusing the last evaluation when it was at u."""
        if self._last is not None and np.array_equal(self._last[0], u):
            return self._last[1], self._last[2]
        return self(u)

    def hessp(self, v: np.ndarray) -> np.ndarray:
        """Gauss-Newton Hessian of f times v, at the last point evaluated with ``keep=True``."""
        if self._lin is None:
            raise RuntimeError("hessp needs a point evaluated with keep=True")
        lin, jac, c0 = self._lin
        t = time.perf_counter()
        product = lin.product(*self.space.push(v, jac, c0))
        self.n_hessp += 1
        self.time_hessp += time.perf_counter() - t
        return self.space.chain(product.globals, product.theta, product.c0, jac, c0) * self.scale


def steihaug_cg(g: np.ndarray, hessp, radius: float, rtol: float, max_iter: int):
    """Approximate minimiser of the model m(p) = g.p + p.Hp/2 within |p| <= radius by conjugate gradients
    (Steihaug-Toint): stops at the boundary, on non-positive curvature, or when the model gradient fell
    to rtol |g|. Returns (p, predicted decrease -m(p), iterations, on_boundary)."""
    p = np.zeros_like(g)
    Hp = np.zeros_like(g)  # H p, kept so that the model value needs no extra product
    r = g.copy()
    d = -r
    rr = float(r @ r)
    target = rtol * np.sqrt(rr)
    n_iter = 0
    on_boundary = False

    def to_boundary(d):
        pd, dd, pp = float(p @ d), float(d @ d), float(p @ p)
        return (-pd + np.sqrt(pd * pd + dd * (radius * radius - pp))) / dd

    for n_iter in range(1, max_iter + 1):  # noqa: B007 (returned)
        Hd = hessp(d)
        curvature = float(d @ Hd)
        a = rr / curvature if curvature > 0.0 else np.inf
        if curvature <= 0.0 or np.linalg.norm(p + a * d) >= radius:
            tau = to_boundary(d)
            p, Hp, on_boundary = p + tau * d, Hp + tau * Hd, True
            break
        p, Hp = p + a * d, Hp + a * Hd
        r = r + a * Hd
        rr_new = float(r @ r)
        if np.sqrt(rr_new) <= target:
            break
        d = -r + (rr_new / rr) * d
        rr = rr_new
    return p, -float(g @ p + 0.5 * p @ Hp), n_iter, on_boundary


class _Checkpoint:
    """The optimiser state saved every few iterations (atomically): the point u, the preconditioner that
    gives u its meaning, the history and the counters."""

    def __init__(self, path: Optional[str], fingerprint: str):
        self.path = None if path is None else os.fspath(path)
        self.fingerprint = fingerprint

    def save(self, u: np.ndarray, space: ParameterSpace, history: Dict[str, list], counters: Dict[str, float]
             ) -> None:
        """``counters``: n_fev, n_hessp, wall_time and the optimiser's own scalars (the trust radius)."""
        if self.path is None:
            return
        with atomic_h5(self.path) as f:
            f.attrs["fingerprint"] = self.fingerprint
            for k, v in counters.items():
                f.attrs[k] = v
            f["u"] = u
            for k, v in space.state().items():
                f[f"space/{k}"] = v
            for k, v in history.items():
                f[f"history/{k}"] = np.asarray(v)

    def load(self):
        """(u, space state, history, counters), or None when there is no checkpoint."""
        if self.path is None or not os.path.exists(self.path):
            return None
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs["fingerprint"] != self.fingerprint:
                    raise ValueError(f"{self.path}: checkpoint belongs to another data set or configuration; "
                                     "delete it or fit without --resume")
                history = {k: list(v[()]) for k, v in f["history"].items()}
                state = {k: v[()] for k, v in f["space"].items()}
                counters = {k: v.item() for k, v in f.attrs.items() if k != "fingerprint"}
                return f["u"][()], state, history, counters
        except (OSError, KeyError) as exc:
            raise ValueError(f"{self.path}: unreadable checkpoint ({exc})") from None


def checkpoint_fingerprint(movies: Sequence[Movie], config: FitConfig) -> str:
    """Identifies data and configuration, so that a checkpoint is never resumed on anything else."""
    fields = config.to_dict()
    fields["fit"].pop("max_iter")  # a resumed fit may be given more iterations
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    for m in movies:
        h.update(m.name.encode())
        h.update(np.ascontiguousarray(np.nan_to_num(m.concentration, nan=-1.0)).tobytes())
        h.update(np.ascontiguousarray(m.time).tobytes())
    return h.hexdigest()


class _Monitor:
    """History, progress bar and checkpoints of one fit: one record per accepted iteration."""

    def __init__(self, config: FitConfig, objective: FitObjective, store: _Checkpoint, history: Dict[str, list],
                 limit: int, t_start: float, progress: bool, comm=None):
        self.config, self.objective, self.store, self.history = config, objective, store, history
        self.comm = comm
        self.limit, self.t_start = limit, t_start
        self.done = int(history["iteration"][-1]) if history["iteration"] else 0
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=limit, initial=min(self.done, limit), desc="fit", unit="it", dynamic_ncols=True)

    def counters(self, **extra) -> Dict[str, float]:
        return dict(n_fev=self.objective.n_fev, n_hessp=self.objective.n_hessp,
                    wall_time=time.perf_counter() - self.t_start, **extra)

    def record(self, u: np.ndarray, f: float, g: np.ndarray, checkpoint: bool = True, **extra) -> None:
        """Append an iteration; save a checkpoint every ``checkpoint_every`` (with ``extra`` counters)
        unless ``checkpoint`` is false (the caller saves once its own step is complete)."""
        self.done += 1
        n_obs = self.objective.space.n_obs
        gnorm = float(np.linalg.norm(g))
        h = self.history
        h["iteration"].append(self.done)
        h["loss"].append(f * n_obs)
        h["grad_norm"].append(gnorm)
        h["n_fev"].append(self.objective.n_fev)
        h["n_hessp"].append(self.objective.n_hessp)
        h["wall_time"].append(time.perf_counter() - self.t_start)
        if self.bar is not None:
            self.bar.update(1)
            postfix = dict(loss=f"{f * n_obs:.6g}", grad=f"{gnorm:.2e}", fev=self.objective.n_fev)
            if self.objective.n_hessp:
                postfix["Hv"] = self.objective.n_hessp
            self.bar.set_postfix(**postfix, refresh=False)
        if checkpoint and self.done % self.config.checkpoint_every == 0:
            self.save(u, **extra)

    def save(self, u: np.ndarray, **extra) -> None:
        counters = self.counters(**extra)
        # Rank 0 writes; a failed write fails every rank (none is left waiting in the next evaluation).
        on_root(self.comm, lambda: self.store.save(u, self.objective.space, self.history, counters))

    def loss_settled(self) -> bool:
        """The loss fell by less than loss_tol over the last loss_window iterations."""
        losses, window = self.history["loss"], self.config.loss_window
        return len(losses) > window and losses[-1 - window] - losses[-1] < self.config.loss_tol

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _minimize_gauss_newton(objective: FitObjective, monitor: _Monitor, u: np.ndarray, radius: float, fresh: bool):
    """Trust-region Newton-CG on the Gauss-Newton Hessian: each iteration solves the quadratic model by
    Steihaug CG with Hessian-vector products from the kept linearisation (two triangular solves per time
    step, no Newton iterations), then solves the model at the trial point. Converged when the model
    predicts a decrease below loss_tol (chi-square / 2 units): nothing the data could tell apart remains.

    The state is (u, radius, fresh), fresh meaning that the preconditioner was built at u; checkpoints
    hold all three and are written only between whole steps, so a resumed fit retraces this one."""
    config, space, n_obs = monitor.config, objective.space, objective.space.n_obs
    f, g = objective(u, keep=True)
    success, message = False, "no iterations left (max_iter reached)"

    def reprecondition():
        nonlocal u, f, g, fresh
        space.recentre(u)
        space.precondition()
        u = np.zeros(space.size)
        f, g = objective(u, keep=True)
        fresh = True
        monitor.save(u, trust_radius=radius, fresh=int(fresh))

    while monitor.done < monitor.limit:
        p, predicted, _, on_boundary = steihaug_cg(g, objective.hessp, radius, config.cg_forcing, config.max_cg)
        if predicted * n_obs < config.loss_tol:
            if fresh:
                success = True
                message = f"converged: the Gauss-Newton model predicts a decrease of the loss below {config.loss_tol}"
                break
            # Stale coordinates can hide a descent direction from a truncated CG: confirm in fresh ones.
            reprecondition()
            continue
        f_new, g_new = objective(u + p, keep=True)
        rho = (f - f_new) / predicted
        if rho < 0.25:
            radius = 0.25 * float(np.linalg.norm(p))
        elif rho > 0.75 and on_boundary:
            radius = 2.0 * radius
        if rho > 1e-4:
            u, f, g = u + p, f_new, g_new
            fresh = False
            # The pixel blocks change as the maps take shape: at the listed iterations the step ends with a
            # re-preconditioning, and its checkpoint comes after it.
            rebuild = monitor.done + 1 in config.precondition_at
            monitor.record(u, f, g, checkpoint=not rebuild, trust_radius=radius, fresh=int(fresh))
            if rebuild:
                reprecondition()
        else:
            objective(u, keep=True)  # the products belong to the point, not the rejected trial
        if radius < 1e-8:
            message = "stopped: the trust region collapsed (the model and the loss disagree at every step)"
            break
    monitor.save(u, trust_radius=radius, fresh=int(fresh))
    return u, success, message


def _minimize_lbfgsb(objective: FitObjective, monitor: _Monitor, u: np.ndarray):
    """SciPy's L-BFGS-B, restarted at each re-preconditioning (its curvature pairs belong to the old
    coordinates); the first warmup_iter iterations hold the globals."""
    config, space = monitor.config, objective.space

    def callback(u):
        f, g = objective.at(u)
        monitor.record(u, f, g)
        if monitor.done > config.warmup_iter + config.loss_window and monitor.loss_settled():
            raise StopIteration  # L-BFGS-B returns the current point

    success, message = False, "no iterations left (max_iter reached)"
    while monitor.done < monitor.limit:
        done_before = monitor.done
        warmup = done_before < config.warmup_iter
        stop = min([k for k in config.precondition_at + [config.warmup_iter] if k > done_before] + [monitor.limit])
        res = optimize.minimize(objective, u, jac=True, method="L-BFGS-B", bounds=space.bounds(warmup),
                                callback=callback,
                                options=dict(maxiter=stop - done_before, maxfun=max(10 * (stop - done_before), 50),
                                             maxcor=config.maxcor, gtol=config.gtol, ftol=config.ftol))
        u, message = res.x, str(res.message)
        if not warmup and monitor.loss_settled():
            success = True
            message = (f"converged: the loss fell by less than {config.loss_tol} over the last "
                       f"{config.loss_window} iterations")
            break
        if monitor.done == done_before:  # no progress in a fresh start: L-BFGS-B's own stop is final
            break
        # The end of a stage, or an early stop of L-BFGS-B (a failed line search): re-precondition here.
        if monitor.done < monitor.limit:
            space.recentre(u)
            space.precondition()
            u = np.zeros(space.size)
            monitor.save(u)
    return u, success, message


def fit(movies: Sequence[Movie], config: Optional[FitConfig] = None, *, checkpoint: Optional[str] = None,
        resume: bool = False, progress: bool = True, max_iter: Optional[int] = None, comm=None) -> FitResult:
    """Fit the model to the movies (``config.method``: Gauss-Newton trust region or L-BFGS-B).

    checkpoint: path of the checkpoint file (written every ``config.checkpoint_every`` iterations and left
    in place; the command line removes it once the results file is written);
    resume: continue from it when it exists; progress: show a tqdm bar with loss and gradient norm;
    max_iter: overrides ``config.max_iter`` (iterations in total, counting those before a resume);
    comm: an MPI communicator (:func:`pixelkinetics.parallel.world`): the particles are shared over its
    ranks, every rank returns the same result as one process would, and only rank 0 shows progress and
    writes the checkpoint (call it on every rank, with the same movies and config).
    """
    config = config or FitConfig()
    movies = list(movies)
    if config.refuse_degenerate:
        config.check_identifiable(movies)
    limit = config.max_iter if max_iter is None else int(max_iter)
    problem = config.problem(movies, comm)
    root = rank_of(comm) == 0
    progress = progress and root
    n_obs = count_observations(movies, config.fit_initial)
    space = ParameterSpace(config, problem, n_obs)
    n_free = len(space.free) + space.dim * space.n_sites
    if config.fit_theta and config.theta_mean == "zero":
        n_free -= 1

    store = _Checkpoint(checkpoint if root else None, checkpoint_fingerprint(movies, config))
    history: Dict[str, list] = {k: [] for k in ("iteration", "loss", "grad_norm", "n_fev", "n_hessp", "wall_time")}
    saved = on_root(comm, store.load) if resume else None  # read by rank 0, sent to all
    t_start = time.perf_counter()
    counters: Dict[str, float] = {}
    if saved is None:
        space.precondition()
        u0 = np.zeros(space.size)
    else:
        u0, state, history, counters = saved
        space.set_state(state)
        t_start -= counters["wall_time"]
    objective = FitObjective(space, problem, n_fev=int(counters.get("n_fev", 0)),
                             n_hessp=int(counters.get("n_hessp", 0)))
    monitor = _Monitor(config, objective, store, history, limit, t_start, progress, comm)
    try:
        if config.method == "gauss-newton":
            u_best, success, message = _minimize_gauss_newton(
                objective, monitor, u0, float(counters.get("trust_radius", config.trust_radius)),
                bool(counters.get("fresh", True)))
        else:
            u_best, success, message = _minimize_lbfgsb(objective, monitor, u0)
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
