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

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import linalg, stats

from ..floor.parallel import on_root, rank_of
from ..floor.progress import progress as progress_bar
from .config import FitConfig
from .coordinates import FitCoordinates, label
from .files import read_data
from .movie import Movie
from .observations import EPS, count_observations
from .params import CURVE_GRID, CURVES, Params
from .problem import Problem
from .results import INTERVAL_KINDS, Uncertainty, add_intervals, as_estimate, curve_table, estimate_of

logger = logging.getLogger(__name__)

#: Width of the uniform prior of each free global in the fit's coordinates, for the model evidence
#: (it cancels between models with the same free set and charges each extra coefficient its Occam factor).
PRIOR_WIDTH = 10.0
#: A combination of globals counts as undetermined when its curvature, relative to that of its
#: members alone, is below this.
NULL_TOL = 1e-6


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
            terms.append(("- " if c < 0 else "+ ") + mag + label(name))
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
        coordinates = FitCoordinates(self.free)
        z = coordinates.z(self.params)
        out = np.zeros((c.size, len(self.free)))
        for i in range(len(self.free)):
            h = np.zeros_like(z)
            h[i] = 1e-6 * max(1.0, abs(z[i]))
            ends = [coordinates.params(self.params, z + s).curve(curve, c) for s in (h, -h)]
            out[:, i] = (ends[0] - ends[1]) / (2 * h[i])
        return out

    def curves(self, c: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
        """j0(c) (with k0: the rate scale of an average pixel) and mu_h(c) with their bands at ``level``."""
        c = CURVE_GRID if c is None else np.asarray(c, float)
        q = stats.norm.ppf(0.5 + self.level / 2)
        mid = np.array([self.params.curve(curve, c) for curve in CURVES])
        sd = np.empty_like(mid)
        for k, curve in enumerate(CURVES):
            g = self._gradient(c, curve)
            sd[k] = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", g, self.covariance, g), 0.0))
            if np.any(~self.determined & np.any(g != 0, axis=0)):
                sd[k] = np.inf
        return curve_table(c, mid, mid - q * sd, mid + q * sd)

    def to_uncertainty(self) -> Uncertainty:
        """What the results file keeps of it (``/uncertainty`` and the sd maps)."""
        return Uncertainty(
            "uncertainty", list(self.free), self.values, self.sd, self.lower, self.upper, self.covariance,
            self.curves(), attrs={k: getattr(self, k) for k in INTERVAL_KINDS["uncertainty"]["attrs"]},
            extra=dict(precision=self.precision, eigenvalues=self.eigenvalues, determined=self.determined,
                       undetermined=[c.describe() for c in self.undetermined]),
            theta_sd=self.theta_sd, c0_sd=self.c0_sd)

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
        coordinates = FitCoordinates(self.free)
        self.jac = coordinates.jacobian(coordinates.z(params))
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
        bar = progress_bar(nf + max(dims, default=0), "uncertainty", "Hv", show=progress)
        self.H_gg = np.zeros((nf, nf))
        self.H_pg = [np.zeros((d, nf)) for d in dims]
        self.H_pp = [np.zeros((d, d)) for d in dims]
        for i in range(nf):
            g, pix = self._product(np.eye(nf)[i], [np.zeros(d) for d in dims])
            self.H_gg[:, i] = g
            for k, p in enumerate(pix):
                self.H_pg[k][:, i] = p
            bar.update(1)
        # Unit vectors of every particle's pixel unknowns at once: particles share no pixel, so one product
        # gives one column of every particle block (its globals part sums over particles and is not used).
        for j in range(max(dims, default=0)):
            probe = [np.eye(1, d, j).ravel() if j < d else np.zeros(d) for d in dims]
            _, pix = self._product(np.zeros(nf), probe)
            for k, p in enumerate(pix):
                if j < dims[k]:
                    self.H_pp[k][:, j] = p
            bar.update(1)
        bar.close()
        self.H_gg = 0.5 * (self.H_gg + self.H_gg.T)
        self.asymmetry = max([0.0] + [float(np.abs(h - h.T).max() / max(np.abs(h).max(), 1e-300))
                                      for h in self.H_pp if h.size])
        self.H_pp = [0.5 * (h + h.T) for h in self.H_pp]


def laplace(movies: Sequence[Movie], estimate, *, level: float = 0.95, progress: bool = False,
            null_tol: float = NULL_TOL, comm=None) -> Posterior:
    """The Laplace approximation of the posterior at an estimate (an :class:`Estimate` or anything
    :func:`~pixelkinetics.kinetics.results.as_estimate` takes: normally a fitted optimum, but any point
    will do), with its free set and numerics; ``comm`` shares the particles over MPI ranks as in
    :func:`pixelkinetics.fit`."""
    t_start = time.perf_counter()
    estimate = as_estimate(estimate)
    config, params, theta, c0 = estimate.config, estimate.params, estimate.theta, estimate.c0
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

    coordinates = FitCoordinates(blocks.free)
    z = coordinates.z(params)
    raw = coordinates.raw(z)
    sd_z = np.sqrt(np.maximum(np.diag(cov), 0.0))
    sd_raw = np.where(loose, np.inf, sd_z * blocks.jac)
    q = stats.norm.ppf(0.5 + level / 2)
    lower, upper = coordinates.raw(z - q * sd_z), coordinates.raw(z + q * sd_z)
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




def uq(data, estimate, *, level: float = 0.95, free: Optional[Sequence[str]] = None,
       output: "Optional[str | os.PathLike]" = None, progress: bool = True, comm=None) -> Posterior:
    """Error bars of a fit (``pixelkinetics uq``): the Laplace approximation at the estimate.

    data: the movies that were fitted (a list or the path of a movie file); estimate: the fit (a FitResult,
    Results, an Estimate or the path of its results file); free: other free globals to assess at the fitted
    point (an identifiability study; default: the fit's own); output: a results file to which
    ``/uncertainty`` and the theta_sd and c0_sd maps are added (rank 0 writes); comm: as for
    :func:`pixelkinetics.fit`.
    """
    movies, _ = read_data(data, comm)
    estimate = estimate_of(estimate, movies, comm)
    if free is not None:
        estimate = estimate.with_free(free)
    posterior = laplace(movies, estimate, level=level, progress=progress, comm=comm)
    if output is not None:
        on_root(comm, lambda: add_intervals(output, posterior.to_uncertainty()))
    return posterior
