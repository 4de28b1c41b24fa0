"""What to fit and how: :class:`FitConfig` (MODEL.md section 7), read from the ``[model]``, ``[fit]`` and
``[solver]`` tables of a TOML file, and the free sets no data can determine."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..floor.parallel import agree
from ..floor.toml import read_toml
from .coordinates import POSITIVE
from .movie import Movie
from .params import Params
from .problem import Problem

#: Optimisers of :func:`pixelkinetics.kinetics.fit.fit`.
METHODS = ("gauss-newton", "l-bfgs-b")


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
    checkpoint_every: int = 5  #: Gauss-Newton iterations between checkpoints (L-BFGS-B: at its restarts)
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

    def identity(self) -> Dict:
        """What fixes the outcome of a fit with this configuration: :meth:`to_dict` without max_iter (a
        resumed fit may be given more iterations). Checkpoints are keyed by it."""
        fields = self.to_dict()
        fields["fit"].pop("max_iter")
        return fields

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


def as_config(source: "FitConfig | str | os.PathLike | None", comm=None) -> FitConfig:
    """A FitConfig from itself, the path of its TOML file (read on every rank, which fail together), or
    None (the defaults)."""
    if isinstance(source, FitConfig):
        return source
    if source is None:
        return FitConfig()
    return agree(comm, lambda: FitConfig.from_toml(source))
