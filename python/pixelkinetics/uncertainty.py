"""How sure are we: the Laplace approximation at a fitted optimum, identifiability and model evidence.

The posterior of the free globals z (in the fit's coordinates: ln k0, ln kappa, ln D, logit alpha, the
others as they are), the theta maps and the initial states c^0 is approximated by the Gaussian whose
precision is the Gauss-Newton Hessian H of the loss at the optimum (misfit plus the theta penalty,
which acts as the prior of theta). H is never formed whole. Particles couple only through the globals,
so H is a block arrow:

    H = [[H_gg, H_gp],
         [H_pg, blockdiag(H_k)]]       H_k: the (theta, c^0) block of particle k

and one Hessian-vector product of the core acts on every particle at once. Probing the unit vectors of
the pixel unknowns of all particles together therefore assembles every H_k exactly with as many
products as the largest particle has unknowns; the globals cost one product each. The number of
products is independent of the number of particles, and so of the total number of pixels.

Why not a low-rank eigendecomposition of the prior-preconditioned Hessian: with the data of this
problem (every pixel observed in every frame at sigma ~ 0.02) most modes of a particle are decided by
the data, not by the smoothness prior -- for three particles 611 of 937 eigenvalues of the
prior-preconditioned Hessian exceed 1 -- so the rank that a given accuracy needs is the particle's
whole block, and assembling it exactly by probing costs the same products with no truncation error.

Everything else is dense linear algebra per particle: the Schur complement of the globals (theta and
c^0 marginalised) gives their posterior covariance and, through its near-null eigenvectors, the
parameter combinations the data do not determine; the pixel variances follow from the block inverse.
With ``theta_mean = "zero"`` the constraint mean(theta) = 0 enters as a Lagrange multiplier, one more
row of the arrow.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import linalg, stats

from .fit import POSITIVE, UNIT_INTERVAL, FitConfig, ParameterSpace, count_observations
from .movie import Movie
from .parallel import rank_of
from .params import Params
from .problem import EPS, Problem

#: Width of the uniform prior of each free global in the fit's coordinates, for the model evidence
#: (it cancels between models with the same free set and charges each extra coefficient its Occam factor).
PRIOR_WIDTH = 10.0
#: A combination of globals counts as undetermined when its curvature, relative to that of its
#: members alone, is below this.
NULL_TOL = 1e-6


def _coordinate(name: str) -> str:
    """The fit coordinate of a global, as it is printed."""
    return f"ln {name}" if name in POSITIVE else f"logit {name}" if name in UNIT_INTERVAL else name


@dataclass
class Combination:
    """A direction of the globals that the data leave undetermined (in the fit's coordinates)."""

    coefficients: Dict[str, float]   #: the direction, largest entry 1
    eigenvalue: float                #: its relative curvature (0: exactly undetermined)

    def __str__(self) -> str:
        terms = []
        for name, c in self.coefficients.items():
            if abs(c) < 1e-3:
                continue
            mag = "" if np.isclose(abs(c), 1.0) else f"{abs(c):.3g} "
            terms.append(("- " if c < 0 else "+ ") + mag + _coordinate(name))
        text = " ".join(terms)
        return text[2:] if text.startswith("+ ") else "-" + text[1:]

    def describe(self) -> str:
        return (f"{self} is not determined by these data (a change of the globals along these coefficients "
                f"leaves the fit unchanged; relative curvature {self.eigenvalue:.1e})")


@dataclass
class Posterior:
    """The Laplace approximation at one point: posterior spread of every free quantity."""

    params: Params                      #: the point (the fitted optimum)
    free: List[str]                     #: free globals, in Params.names() order
    values: np.ndarray                  #: their raw values
    sd: np.ndarray                      #: raw standard deviations (delta method; inf: undetermined)
    lower: np.ndarray                   #: raw interval at ``level``, mapped from the fit coordinates
    upper: np.ndarray
    level: float
    covariance: np.ndarray              #: of the fit coordinates z of the free globals (undetermined
                                        #: combinations held at their fitted values)
    determined: np.ndarray              #: per free global: False when it takes part in an undetermined combination
    precision: np.ndarray               #: of z with theta and c^0 marginalised (the Schur complement)
    theta_sd: Dict[str, np.ndarray]     #: (H, W) maps, NaN off the mask
    c0_sd: Dict[str, np.ndarray]        #: (H, W) maps of the initial states' sd (NaN when not fitted)
    undetermined: List[Combination]
    eigenvalues: np.ndarray             #: of the correlation-scaled global precision, ascending
    loss: float
    misfit: float
    #: Laplace estimate of ln p(data | model) of the globals with the pixel fields profiled out, up to a
    #: model-independent constant (``extra["log_evidence_full"]`` integrates the pixel fields too)
    log_evidence: float
    bic: float                          #: chi-square + (free globals) ln(n_obs)
    n_obs: int
    n_hessp: int                        #: Hessian-vector products used
    wall_time: float
    time_hessp: float
    extra: Dict[str, float] = field(default_factory=dict)

    def interval(self, name: str):
        i = self.free.index(name)
        return float(self.lower[i]), float(self.upper[i])

    def _gradient(self, c: np.ndarray, curve: str) -> np.ndarray:
        """d curve(c) / d z for the free globals: (len(c), n_free); ln(k0 j0) or mu_h. Central differences
        in z, so that every global of the curve counts (the logistic j0_s and j0_c as well as k0 and the
        Legendre coefficients, in which the curves are linear)."""
        c = np.asarray(c, float)

        def value(params: Params) -> np.ndarray:
            return np.log(params.k0 * params.j0(c)) if curve == "ln_j0" else params.mu_h(c)

        out = np.zeros((c.size, len(self.free)))
        for i, name in enumerate(self.free):
            z = ParameterSpace._forward(name, float(self.values[i]))
            h = 1e-6 * max(1.0, abs(z))
            moved = [self.params.replace(**{name: ParameterSpace._inverse(name, z + s)[0]}) for s in (h, -h)]
            out[:, i] = (value(moved[0]) - value(moved[1])) / (2 * h)
        return out

    def curves(self, c: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
        """j0(c) (with k0: the rate scale of an average pixel) and mu_h(c) with their bands at ``level``."""
        c = np.linspace(0.02, 0.98, 97) if c is None else np.asarray(c, float)
        q = stats.norm.ppf(0.5 + self.level / 2)
        out = {"c": c}
        for curve in ("ln_j0", "mu_h"):
            g = self._gradient(c, curve)
            sd = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", g, self.covariance, g), 0.0))
            if np.any(~self.determined & np.any(g != 0, axis=0)):
                sd = np.full_like(sd, np.inf)
            if curve == "ln_j0":
                mid = np.log(self.params.k0 * self.params.j0(c))
                out.update(j0=np.exp(mid), j0_lower=np.exp(mid - q * sd), j0_upper=np.exp(mid + q * sd))
            else:
                mid = self.params.mu_h(c)
                out.update(mu_h=mid, mu_h_lower=mid - q * sd, mu_h_upper=mid + q * sd)
        return out

    def summary(self) -> List[str]:
        lines = [f"Laplace approximation: {self.n_hessp} Hessian-vector products ({self.time_hessp:.1f} s), "
                 f"{self.wall_time:.1f} s in all; {100 * self.level:.0f}% intervals"]
        for i, name in enumerate(self.free):
            if np.isfinite(self.sd[i]):
                lines.append(f"  {name:6s} {self.values[i]:10.5g} +- {self.sd[i]:.3g}   "
                             f"[{self.lower[i]:.5g}, {self.upper[i]:.5g}]")
            else:
                lines.append(f"  {name:6s} {self.values[i]:10.5g}   not determined")
        for comb in self.undetermined:
            lines.append("  " + comb.describe())
        sds = np.concatenate([m[np.isfinite(m)] for m in self.theta_sd.values()])
        if sds.size:
            lines.append(f"  theta sd: median {np.median(sds):.3g}, 5-95% {np.percentile(sds, 5):.3g}"
                         f"-{np.percentile(sds, 95):.3g}")
        lines.append(f"  log evidence {self.log_evidence:.2f}, BIC {self.bic:.2f}")
        return lines


class _Blocks:
    """The block-arrow Gauss-Newton Hessian in the fit coordinates, assembled by probing."""

    def __init__(self, problem: Problem, config: FitConfig, params: Params, thetas, c0s, progress: bool):
        self.problem, self.config = problem, config
        names = params.names()
        self.names = names
        self.free = [n for n in names if n in config.free]
        values = params.values()
        self.jac = np.array([ParameterSpace._inverse(n, ParameterSpace._forward(n, values[n]))[1]
                             for n in self.free])
        self.sizes = [m.n_sites for m in problem.movies]
        self.kinds = (["theta"] if config.fit_theta else []) + (["c0"] if config.fit_initial else [])
        self.dims = [len(self.kinds) * n for n in self.sizes]
        t = time.perf_counter()
        self.lin = problem.linearize(params, thetas, c0s, with_gradient=False)
        self.time_linearize = time.perf_counter() - t
        self.loss, self.misfit = self.lin.evaluation.loss, self.lin.evaluation.misfit
        self.n_hessp, self.time_hessp = 0, 0.0
        self._assemble(progress)

    def _product(self, d_globals: np.ndarray, pixels: List[np.ndarray]):
        """H times a direction given in fit coordinates: (globals part, per-particle pixel parts)."""
        raw = np.zeros(len(self.names))
        for i, n in enumerate(self.free):
            raw[self.names.index(n)] = d_globals[i] * self.jac[i]
        zeros = [np.zeros(n) for n in self.sizes]
        split = {k: [p[j * n:(j + 1) * n] for p, n in zip(pixels, self.sizes)] for j, k in enumerate(self.kinds)}
        t = time.perf_counter()
        r = self.lin.product(raw, split.get("theta", zeros), split.get("c0", zeros))
        self.time_hessp += time.perf_counter() - t
        self.n_hessp += 1
        g = np.array([r.globals[self.names.index(n)] * self.jac[i] for i, n in enumerate(self.free)])
        parts = {"theta": r.theta, "c0": r.c0}
        return g, [np.concatenate([np.asarray(parts[k][p]) for k in self.kinds] or [np.zeros(0)])
                   for p in range(len(self.sizes))]

    def _assemble(self, progress: bool) -> None:
        nf, dims = len(self.free), self.dims
        total = nf + max(dims, default=0)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, desc="uncertainty", unit="Hv", dynamic_ncols=True)
        self.H_gg = np.zeros((nf, nf))
        self.H_pg = [np.zeros((d, nf)) for d in dims]
        self.H_pp = [np.zeros((d, d)) for d in dims]
        for i in range(nf):
            g, pix = self._product(np.eye(nf)[i], [np.zeros(d) for d in dims])
            self.H_gg[:, i] = g
            for k, p in enumerate(pix):
                self.H_pg[k][:, i] = p
            if bar is not None:
                bar.update(1)
        # Unit vectors of every particle's pixel unknowns at once: particles share no pixel, so one product
        # gives one column of every particle block (its globals part sums over particles and is not used).
        for j in range(max(dims, default=0)):
            probe = [np.eye(1, d, j).ravel() if j < d else np.zeros(d) for d in dims]
            _, pix = self._product(np.zeros(nf), probe)
            for k, p in enumerate(pix):
                if j < dims[k]:
                    self.H_pp[k][:, j] = p
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        self.H_gg = 0.5 * (self.H_gg + self.H_gg.T)
        self.asymmetry = max([0.0] + [float(np.abs(h - h.T).max() / max(np.abs(h).max(), 1e-300))
                                      for h in self.H_pp if h.size])
        self.H_pp = [0.5 * (h + h.T) for h in self.H_pp]


def laplace(movies: Sequence[Movie], config: FitConfig, params: Params, theta: Dict[str, np.ndarray],
            c0: Optional[Dict[str, np.ndarray]] = None, *, level: float = 0.95, progress: bool = False,
            null_tol: float = NULL_TOL, comm=None) -> Posterior:
    """The Laplace approximation of the posterior at (params, theta maps, c^0 maps), normally a fitted
    optimum (:func:`from_fit`), with the free set and numerics of ``config``; ``comm`` shares the particles
    over MPI ranks as in :func:`pixelkinetics.fit.fit`."""
    t_start = time.perf_counter()
    movies = list(movies)
    problem = config.problem(movies, comm)
    progress = progress and rank_of(comm) == 0
    thetas = problem.theta_vectors(theta if config.fit_theta else None)
    c0s = None
    if config.fit_initial:
        c0s = problem.initial_states() if c0 is None else problem.c0_vectors(c0)
    blocks = _Blocks(problem, config, params, thetas, c0s, progress)
    nf, K = len(blocks.free), len(movies)

    # Unknowns held by a bound (c^0 at its clip) are fixed; the rest of each block is solved densely.
    active = []
    for k in range(K):
        keep = np.ones(blocks.dims[k], bool)
        if config.fit_initial:
            c = c0s[k]
            keep[-blocks.sizes[k]:] = (c > EPS) & (c < 1.0 - EPS)
        active.append(keep)
    constraint = config.fit_theta and config.theta_mean == "zero"
    G = nf + int(constraint)

    # Schur complement of the arrow: S = A - sum_k B_k^T H_k^-1 B_k, B_k = [H_pg, a_k].
    S = np.zeros((G, G))
    S[:nf, :nf] = blocks.H_gg
    factors, X = [], []
    logdet = 0.0
    for k in range(K):
        keep = active[k]
        Hk = blocks.H_pp[k][np.ix_(keep, keep)]
        Bk = np.zeros((int(keep.sum()), G))
        Bk[:, :nf] = blocks.H_pg[k][keep]
        if constraint:
            Bk[:, nf] = np.concatenate([np.ones(blocks.sizes[k]), np.zeros(blocks.dims[k] - blocks.sizes[k])])[keep]
        try:
            f = linalg.cho_factor(Hk, lower=True)
        except linalg.LinAlgError:
            raise ValueError(f"the Gauss-Newton block of particle {movies[k].name!r} is not positive definite: "
                               "its pixels are not determined by the data and the theta penalty "
                               "(give lam_s or lam_0 > 0, or check the fit converged)") from None
        logdet += 2.0 * float(np.sum(np.log(np.diag(f[0]))))
        Xk = linalg.cho_solve(f, Bk)
        S -= Bk.T @ Xk
        factors.append(f)
        X.append(Xk)

    # The globals' own precision (pixels and the multiplier eliminated) and its near-null directions.
    P = S[:nf, :nf].copy()
    if constraint:
        if S[nf, nf] == 0.0:
            raise ValueError("the theta constraint is empty")
        P -= np.outer(S[:nf, nf], S[nf, :nf]) / S[nf, nf]
        logdet += float(np.log(abs(S[nf, nf])))
    P = 0.5 * (P + P.T)
    scale = np.sqrt(np.maximum(np.diag(P), 1e-300))
    R = P / np.outer(scale, scale)
    eigenvalues, vectors = np.linalg.eigh(R) if nf else (np.zeros(0), np.zeros((0, 0)))
    null = eigenvalues < null_tol * max(1.0, float(eigenvalues.max(initial=1.0)))
    precision = P.copy()
    undetermined = []
    pin = np.zeros((nf, nf))
    loose = np.zeros(nf, bool)   # the globals that take part in an undetermined combination
    for lam, v in zip(eigenvalues[null], vectors[:, null].T):
        loose |= np.abs(v) > 1e-3
        w = v / scale   # back to z: the direction that leaves the fit unchanged
        w = w / w[np.argmax(np.abs(w))]
        undetermined.append(Combination({n: float(c) for n, c in zip(blocks.free, w)}, float(max(lam, 0.0))))
        # Hold the combination where the fit left it, so that the other spreads stay finite (conditional on it).
        pin += np.outer(v * scale, v * scale)
    if undetermined:
        S[:nf, :nf] += pin
        P += pin
    logdet_globals = float(np.linalg.slogdet(P)[1]) if nf else 0.0
    logdet += logdet_globals

    Sinv = np.linalg.inv(S) if G else np.zeros((0, 0))
    cov = Sinv[:nf, :nf]
    cov = 0.5 * (cov + cov.T)

    # Pixel variances: diag(H_k^-1) + diag(X_k S^-1 X_k^T) (the block inverse of the arrow).
    theta_sd, c0_sd = {}, {}
    for k, m in enumerate(movies):
        keep = active[k]
        inv_diag = np.sum(linalg.solve_triangular(factors[k][0], np.eye(int(keep.sum())), lower=True) ** 2, axis=0)
        var_active = inv_diag + np.einsum("ij,jk,ik->i", X[k], Sinv, X[k])
        var = np.zeros(blocks.dims[k])
        var[keep] = var_active
        sd = np.sqrt(np.maximum(var, 0.0))
        n = blocks.sizes[k]
        theta_sd[m.name] = problem.to_map(m, sd[:n]) if config.fit_theta else problem.to_map(m, np.full(n, np.nan))
        c0_sd[m.name] = problem.to_map(m, sd[-n:]) if config.fit_initial else problem.to_map(m, np.full(n, np.nan))

    values = params.values()
    raw = np.array([values[n] for n in blocks.free])
    z = np.array([ParameterSpace._forward(n, values[n]) for n in blocks.free])
    sd_z = np.sqrt(np.maximum(np.diag(cov), 0.0))
    sd_raw = np.where(loose, np.inf, sd_z * blocks.jac)
    q = stats.norm.ppf(0.5 + level / 2)
    lower = np.array([ParameterSpace._inverse(n, z[i] - q * sd_z[i])[0] for i, n in enumerate(blocks.free)])
    upper = np.array([ParameterSpace._inverse(n, z[i] + q * sd_z[i])[0] for i, n in enumerate(blocks.free)])
    lower[loose], upper[loose] = -np.inf, np.inf

    n_obs = count_observations(movies, config.fit_initial)
    n_free_pixels = sum(int(a.sum()) for a in active) - int(constraint)
    # ln Z = -loss + (d/2) ln 2 pi - 1/2 ln det H - nf ln W over the d unknowns (the misfit's and the
    # improper theta and c^0 priors' normalisations are the same for every model of the same data). The
    # pixel part of ln det H rewards a model in which theta is loosely determined, and with hundreds of
    # pixels per particle it outweighs the misfit: on data made with the sqrt base it preferred base "one"
    # although chi-square was 33 lower for sqrt. So models are ranked by the evidence of the globals with
    # the pixel fields profiled out (their own Occam factors alone); the full value is kept for reference.
    d = nf + n_free_pixels
    log_evidence_full = -blocks.loss + 0.5 * d * np.log(2 * np.pi) - 0.5 * logdet - nf * np.log(PRIOR_WIDTH)
    log_evidence = -blocks.loss + 0.5 * nf * np.log(2 * np.pi) - 0.5 * logdet_globals - nf * np.log(PRIOR_WIDTH)
    return Posterior(
        params=params, free=blocks.free, values=raw, sd=sd_raw, lower=lower, upper=upper, level=level,
        covariance=cov, determined=~loose, precision=precision, theta_sd=theta_sd, c0_sd=c0_sd,
        undetermined=undetermined,
        eigenvalues=eigenvalues, loss=blocks.loss, misfit=blocks.misfit, log_evidence=float(log_evidence),
        bic=float(2.0 * blocks.misfit + nf * np.log(n_obs)), n_obs=n_obs, n_hessp=blocks.n_hessp,
        wall_time=time.perf_counter() - t_start, time_hessp=blocks.time_hessp,
        extra=dict(asymmetry=blocks.asymmetry, time_linearize=blocks.time_linearize,
                   log_evidence_full=float(log_evidence_full)),
    )


def from_fit(movies: Sequence[Movie], result, **kwargs) -> Posterior:
    """The Laplace approximation at a :class:`pixelkinetics.fit.FitResult`."""
    return laplace(movies, result.config, result.params, result.theta, result.c0, **kwargs)


# -- model comparison ------------------------------------------------------------------------------------
@dataclass
class ModelScore:
    """One candidate model of :func:`compare_models`, fitted and scored."""

    j0_base: str
    order: int                 #: Legendre order Mb of the ln j0 correction (b1..b_Mb free; b0 stays 0)
    posterior: Posterior
    reduced_chi2: float
    converged: bool

    @property
    def label(self) -> str:
        return f"{self.j0_base}, Mb = {self.order}"


@dataclass
class Comparison:
    """Candidates ranked by their Laplace evidence (the first is preferred)."""

    scores: List[ModelScore]

    @property
    def preferred(self) -> ModelScore:
        return self.scores[0]

    def table(self) -> List[str]:
        best = self.scores[0].posterior.log_evidence
        lines = [f"{'model':18s} {'ln evidence':>12s} {'delta':>8s} {'BIC':>10s} {'chi2/dof':>9s}  converged"]
        for s in self.scores:
            p = s.posterior
            lines.append(f"{s.label:18s} {p.log_evidence:12.2f} {p.log_evidence - best:8.2f} {p.bic:10.2f} "
                         f"{s.reduced_chi2:9.4f}  {'yes' if s.converged else 'no'}")
        lines.append(f"preferred: {self.preferred.label} (largest Laplace evidence)")
        return lines


def model_config(config: FitConfig, j0_base: str, order: int) -> FitConfig:
    """``config`` with the j0 base and the ln j0 Legendre order changed: b1..b_order free, b0 held at 0
    (k0 carries the scale), the other free globals as they were."""
    import dataclasses

    b = [config.initial.b[m] if m < len(config.initial.b) else 0.0 for m in range(order + 1)]
    initial = config.initial.replace(j0_base=j0_base, b=b)
    free = [n for n in config.free if not (n[0] == "b" and n[1:].isdigit())] + [f"b{m}" for m in range(1, order + 1)]
    bounds = {k: v for k, v in config.bounds.items() if k in initial.names()}
    return dataclasses.replace(config, initial=initial, free=free, bounds=bounds)


def compare_models(movies: Sequence[Movie], config: FitConfig, bases: Sequence[str] = ("one", "sqrt", "asym"),
                   orders: Sequence[int] = (2,), progress: bool = False, level: float = 0.95) -> Comparison:
    """Fit every (j0 base, Legendre order) model with the settings of ``config`` and rank them by their
    Laplace evidence (uniform priors of width PRIOR_WIDTH on the free globals in the fit coordinates)."""
    from .fit import fit

    scores = []
    for base in bases:
        for order in orders:
            cfg = model_config(config, base, int(order))
            result = fit(movies, cfg, progress=progress)
            post = from_fit(movies, result, level=level, progress=progress)
            scores.append(ModelScore(base, int(order), post, result.reduced_chi2, result.success))
    scores.sort(key=lambda s: -s.posterior.log_evidence)
    return Comparison(scores)
