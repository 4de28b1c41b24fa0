"""The strain-composition law by linear least squares on elastic basis responses.

Measured strain = sum_j beta_j R_j + offsets + noise, where R_j is the particle's strain response to the
j-th basis eigenstrain (elastic.py) and the offsets are the reference lattice's (one per strain component
per particle) and each rigid piece's rotation. With one noise level the offsets are group means, so they
are removed by centring each group first (Frisch-Waugh-Lovell): the beta come from a least squares with
only 2 x order columns, however many particles are fitted together.

Uncertainty: the strain noise gives the covariance of the linear fit; a composition sigma is propagated
by refitting on compositions redrawn within it (the factorisation serves every draw); a fitted stiffness
adds its own covariance through d beta / d stiffness (stiffness.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .elastic import LFP_AC, ElasticModel, StrainParticle, axis_tensor, relative_to_reference, undo_reference
from .stiffness import fit_stiffness_ratios


def _group_means(values: np.ndarray, ok: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the ``ok`` entries of every group label (NaN for a group without any)."""
    size = int(groups.max()) + 1
    counts = np.bincount(groups[ok], minlength=size)
    sums = np.bincount(groups[ok], weights=values[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class VegardProblem:
    """Particles, their factorised elastic model and their centred measurements: the linear least squares
    of the law for one stiffness, which :mod:`.stiffness` changes between solves."""

    def __init__(self, particles: Sequence[StrainParticle], order: int = 1, stiffness: np.ndarray = LFP_AC,
                 angle: float = 0.0):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.particles = list(particles)
        if not self.particles:
            raise ValueError("no particles to fit")
        names = [p.name for p in self.particles]
        if len(set(names)) != len(names):
            raise ValueError(f"particle names must be unique, got {names}")
        self.order = int(order)
        self.model = ElasticModel(self.particles, stiffness, angle)
        self.compositions = [p.composition[p.mask] for p in self.particles]
        self.raw = [p.measured for p in self.particles]
        self.ok = [np.isfinite(m) for m in self.raw]
        self.groups = self.model.offset_groups()
        self.set_reference([np.zeros(4)] * len(self.raw))

    def set_reference(self, reference: Sequence[np.ndarray]) -> None:
        """Take the measurements as relative to reference lattices strained by ``reference`` (per particle,
        (4,) or per pixel (n, 4)): the fitted data become (I + H_measured)(I + G) - I."""
        self.reference = [np.broadcast_to(g, m.shape).copy() for g, m in zip(reference, self.raw)]
        self.measured = [undo_reference(m, g) for m, g in zip(self.raw, self.reference)]
        self.y = np.concatenate([self._centred(m, k) for k, m in enumerate(self.measured)])

    def fit_reference(self, responses: Sequence[Sequence[np.ndarray]], beta: Optional[np.ndarray] = None,
                      tol: float = 1e-12, rounds: int = 20) -> None:
        """Find the reference lattices as the fixed point of their offsets (with the law fitted too, or
        held at ``beta``): a measurement relative to a strained reference is a product (py4DSTEM divides
        by its median lattice), which an additive offset meets only to first order (about 2% of a 5%
        misfit)."""
        for _ in range(rounds):
            law = self.solve(responses)[0] if beta is None else beta
            remainders = self._remainders(self.law_strains(law, responses))
            change = max(float(np.abs(np.nan_to_num(r)).max()) for r in remainders)
            if change < tol:
                return
            self.set_reference([g - np.nan_to_num(r[groups])
                                for g, r, groups in zip(self.reference, remainders, self.groups)])

    @staticmethod
    def law_strains(beta: np.ndarray, responses) -> List[np.ndarray]:
        """Per particle, the (n_elements, 4) strain of the law ``beta`` from the basis ``responses``."""
        return [sum(b * r for b, r in zip(beta, per_particle)) for per_particle in responses]

    def _remainders(self, law_strains: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Per particle, the mean of data minus law over each offset group (NaN where none is measured)."""
        return [_group_means(self.measured[k] - strain, self.ok[k], self.groups[k])
                for k, strain in enumerate(law_strains)]

    def estimate_sigma(self, residual: np.ndarray, n_params: int) -> float:
        """The strain noise from the centred residual of a fit with ``n_params`` parameters."""
        return float(np.sqrt(residual @ residual / max(self.n_obs - n_params, 1)))

    @property
    def n_beta(self) -> int:
        return 2 * self.order

    @property
    def n_obs(self) -> int:
        return self.y.size

    @property
    def n_offsets(self) -> int:
        """Offsets actually measured (one degree of freedom each)."""
        return sum(np.unique(g[ok]).size for g, ok in zip(self.groups, self.ok))

    def _centred(self, values: np.ndarray, k: int) -> np.ndarray:
        ok, groups = self.ok[k], self.groups[k]
        return values[ok] - _group_means(values, ok, groups)[groups[ok]]

    def design(self, responses: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """(n_obs, n_beta) centred basis responses."""
        return np.concatenate([np.column_stack([self._centred(r, k) for r in per_particle])
                               for k, per_particle in enumerate(responses)])

    def responses(self, compositions: Optional[Sequence[np.ndarray]] = None) -> List[List[np.ndarray]]:
        return self.model.responses(self.compositions if compositions is None else compositions, self.order)

    def solve(self, responses: Sequence[Sequence[np.ndarray]]):
        """(beta (n_beta,), design, centred residual) of the least squares for these responses."""
        A = self.design(responses)
        singular = np.linalg.svd(A, compute_uv=False)
        # responses are strains per unit coefficient: O(spread of composition) per observation
        if not singular[-1] > 1e-6 * max(singular[0], np.sqrt(A.shape[0])):
            names = ", ".join(p.name for p in self.particles)
            raise ValueError(f"the compositions of {names} vary too little to identify a law of order {self.order} "
                             f"(the basis responses are degenerate, singular values {singular.tolist()}): fit "
                             f"particles that are not uniformly lithiated, or a lower order")
        beta, *_ = np.linalg.lstsq(A, self.y, rcond=None)
        return beta, A, self.y - A @ beta

    def residual_fields(self, residual: np.ndarray) -> List[np.ndarray]:
        """The centred residual vector as (n_elements, 4) per particle, 0 where nothing is measured."""
        out, start = [], 0
        for ok in self.ok:
            field_ = np.zeros(ok.shape)
            field_[ok] = residual[start:start + ok.sum()]
            start += ok.sum()
            out.append(field_)
        return out

    def predict(self, beta: np.ndarray, responses: Sequence[Sequence[np.ndarray]]):
        """Per particle, the (n_elements, 4) prediction as measured (against the reference lattice), and
        the offsets (3 strain components, then a rotation per piece): what is added to the law's strain
        to first order, minus the reference lattice's strain once :meth:`fit_reference` has converged."""
        predictions, offsets = [], []
        law_strains = self.law_strains(beta, responses)
        for k, (model_strain, remainder) in enumerate(zip(law_strains, self._remainders(law_strains))):
            shift = np.nan_to_num(remainder[self.groups[k]])
            predictions.append(relative_to_reference(model_strain + shift, self.reference[k]))
            reference = _group_means(self.reference[k], np.ones_like(self.ok[k]), self.groups[k])
            offsets.append(remainder - reference)
        return predictions, offsets


@dataclass
class VegardFit:
    """The fitted law and what it explains.

    beta: (order, 2) coefficients per crystal axis (row k: phi_{k+1}); covariance: of beta.ravel(), the sum
    of the parts in ``covariance_parts`` (noise, and composition and stiffness where propagated); offsets:
    {particle: (3 + pieces,) e_xx, e_yy, e_xy, then rotation per piece}; predicted, residual: {particle:
    (4, H, W) maps}; stiffness: the crystal-axes stiffness used (3 x 3)."""

    beta: np.ndarray
    covariance: np.ndarray
    offsets: Dict[str, np.ndarray]
    predicted: Dict[str, np.ndarray]
    residual: Dict[str, np.ndarray]
    chi2: float
    n_obs: int
    n_params: int
    sigma: float
    stiffness: np.ndarray
    angle: float
    covariance_parts: Dict[str, np.ndarray] = field(default_factory=dict)
    stiffness_fit: Optional[object] = None
    composition_bias: Optional[np.ndarray] = None

    @property
    def order(self) -> int:
        return self.beta.shape[0]

    @property
    def beta_sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance)).reshape(self.beta.shape)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.n_obs - self.n_params, 1)

    def summary(self) -> List[str]:
        lines = [f"Vegard law (order {self.order}), {self.n_obs} strain values, sigma {self.sigma:.3g}, "
                 f"reduced chi2 {self.reduced_chi2:.3f}"]
        for k in range(self.order):
            name = "c" if k == 0 else f"P{k + 1}(2c-1)"
            lines.append(f"  beta_{k + 1} [{name}]: axis 1 {self.beta[k, 0]:+.5f} +- {self.beta_sd[k, 0]:.5f}, "
                         f"axis 2 {self.beta[k, 1]:+.5f} +- {self.beta_sd[k, 1]:.5f}")
        parts = ", ".join(f"{name} {np.sqrt(np.diag(c))[:2].round(6).tolist()}"
                          for name, c in self.covariance_parts.items())
        if len(self.covariance_parts) > 1:
            lines.append(f"  sd of beta_1 by source: {parts}")
        return lines


def _maps(particle: StrainParticle, values: np.ndarray) -> np.ndarray:
    full = np.full((4,) + particle.mask.shape, np.nan)
    full[:, particle.mask] = values.T
    return full


@dataclass
class CompositionNoise:
    """What composition sigma does to the law, from refits on compositions redrawn within it (SIMEX: the
    noise added once more biases each refit as the measured noise biased the fit, towards a weaker
    law). bias: mean refit minus fit, which the fit corrects by subtracting; covariance: of the refits."""

    bias: np.ndarray
    covariance: np.ndarray
    draws: int


def composition_noise(problem: VegardProblem, beta: np.ndarray, draws: int,
                      seed: int = 0) -> Optional[CompositionNoise]:
    """Refit ``draws`` times on compositions redrawn within their sigma (None when no particle has one).
    All draws go through each particle's factorisation in one batch."""
    sigmas = [p.composition_sigma[p.mask] if p.composition_sigma is not None else None for p in problem.particles]
    if draws < 2 or all(s is None or not s.any() for s in sigmas):
        return None
    rng = np.random.default_rng(seed)
    eigenstrains = []
    for c, s in zip(problem.compositions, sigmas):
        redrawn = [c + (0.0 if s is None else s * rng.standard_normal(c.shape)) for _ in range(draws)]
        eigenstrains.append([e for r in redrawn for e in problem.model.eigenstrains([r], problem.order)[0]])
    strains = problem.model.batch.strains(eigenstrains)
    n = problem.n_beta
    betas = np.array([problem.solve([per[d * n:(d + 1) * n] for per in strains])[0] for d in range(draws)])
    # the covariance of the refits, and the Monte Carlo error of their mean (the correction)
    return CompositionNoise(betas.mean(axis=0) - beta, (1 + 1 / draws) * np.cov(betas, rowvar=False).reshape(n, n),
                            draws)


def fit_vegard(particles: Sequence[StrainParticle], order: int = 1, stiffness: np.ndarray = LFP_AC,
               angle: float = 0.0, sigma: Optional[float] = None, fit_stiffness: bool = False,
               composition_draws: int = 16, seed: int = 0, progress: bool = False) -> VegardFit:
    """The eigenstrain law of ``particles`` (fitted jointly) with its covariance.

    sigma: the strain noise; None estimates it from the residuals. fit_stiffness: also fit the stiffness
    ratios (``stiffness`` is the start; its Q11 sets the scale, which strains cannot tell) by L-BFGS with
    adjoint gradients, and add their uncertainty to beta's. composition_draws: redraws for propagating
    composition sigma (where particles have one): they correct beta for the bias that noisy compositions
    cause and add their spread to its covariance. With sigma estimated, the residuals hold the strain
    that composition noise causes too, so the composition part then counts it twice (conservative).

    Strains are taken as measured against a reference lattice per particle (fitted: the offsets) and
    every rigid piece's own rotation; the reference enters as a product, as in py4DSTEM."""
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma (the strain noise) must be positive, got {sigma}")
    problem = VegardProblem(particles, order, stiffness, angle)
    responses = problem.responses()
    problem.fit_reference(responses)
    stiffness_fit = None
    if fit_stiffness:
        stiffness_fit = fit_stiffness_ratios(problem, sigma=sigma, progress=progress)
        responses = problem.responses()
        problem.fit_reference(responses)
    beta, A, residual = problem.solve(responses)
    n_params = problem.n_beta + problem.n_offsets + (3 if fit_stiffness else 0)
    s = float(sigma) if sigma is not None else problem.estimate_sigma(residual, n_params)
    parts = {"noise": s ** 2 * np.linalg.inv(A.T @ A)}
    composition = composition_noise(problem, beta, composition_draws, seed)
    if composition is not None:
        beta = beta - composition.bias
        residual = problem.y - A @ beta
        parts["composition"] = composition.covariance
    if stiffness_fit is not None:
        stiffness_fit.rescale(s)  # its covariance assumed the noise estimated at the start
        parts["stiffness"] = stiffness_fit.beta_jacobian @ stiffness_fit.covariance @ stiffness_fit.beta_jacobian.T
    predictions, offsets = problem.predict(beta, responses)
    predicted = {p.name: _maps(p, pred) for p, pred in zip(problem.particles, predictions)}
    return VegardFit(
        beta=beta.reshape(order, 2), covariance=sum(parts.values()),
        offsets={p.name: o for p, o in zip(problem.particles, offsets)}, predicted=predicted,
        residual={p.name: p.strain - predicted[p.name] for p in problem.particles},
        chi2=float(residual @ residual) / s ** 2, n_obs=problem.n_obs, n_params=n_params, sigma=s,
        stiffness=problem.model.stiffness.copy(), angle=float(angle), covariance_parts=parts,
        stiffness_fit=stiffness_fit,
        composition_bias=None if composition is None else composition.bias.reshape(order, 2))


@dataclass
class Prediction:
    """A law applied to particles it was not fitted to: only their offsets are fitted."""

    predicted: Dict[str, np.ndarray]
    residual: Dict[str, np.ndarray]
    rms: Dict[str, float]


def predict_strain(fit: VegardFit, particles: Sequence[StrainParticle]) -> Prediction:
    """Strain maps of ``particles`` under the fitted law (stiffness and angle of the fit)."""
    problem = VegardProblem(particles, fit.order, fit.stiffness, fit.angle)
    responses = problem.responses()
    problem.fit_reference(responses, beta=fit.beta.ravel())
    predictions, _ = problem.predict(fit.beta.ravel(), responses)
    predicted = {p.name: _maps(p, pred) for p, pred in zip(problem.particles, predictions)}
    residual = {p.name: p.strain - predicted[p.name] for p in problem.particles}
    rms = {name: float(np.sqrt(np.nanmean(r ** 2))) for name, r in residual.items()}
    return Prediction(predicted, residual, rms)


def along_axes(strain: np.ndarray, angle: float) -> np.ndarray:
    """(n, 2) normal strain along crystal axes 1 and 2 of (n, 4) strain; a component that does not enter
    (its weight is 0 at this angle) may be missing (NaN)."""
    weights = np.array([axis_tensor(axis, angle) for axis in (0, 1)]) * [1.0, 1.0, 2.0]  # e_xy counts twice
    out = np.zeros((strain.shape[0], 2))
    for axis in range(2):
        for j in range(3):
            if abs(weights[axis, j]) > 1e-12:
                out[:, axis] += weights[axis, j] * strain[:, j]
    return out


def naive_regression(particle: StrainParticle, angle: float = 0.0, rounds: int = 20) -> np.ndarray:
    """(slope along crystal axis 1, slope along axis 2) of strain regressed on composition pixel by pixel:
    the misfit the data would suggest without elasticity. The reference lattice is divided out as in the
    elastic fit (a fixed point of the intercepts), so the two differ by elasticity alone."""
    c = particle.composition[particle.mask]
    raw = particle.measured
    reference = np.zeros(4)
    for _ in range(rounds):
        data = undo_reference(raw, reference)
        intercepts = np.zeros(4)
        for j in range(4):
            ok = np.isfinite(data[:, j])
            if ok.sum() >= 2:
                intercepts[j] = np.polyfit(c[ok], data[ok, j], 1)[1]
        if np.abs(intercepts).max() < 1e-12:
            break
        reference = reference - intercepts
    along = along_axes(data, angle)
    out = []
    for axis in range(2):
        ok = np.isfinite(along[:, axis])
        if ok.sum() < 2:
            raise ValueError(f"particle {particle.name!r}: no pixel measures the strain along crystal axis "
                             f"{axis + 1} (e_xx, e_yy, e_xy are missing)")
        out.append(np.polyfit(c[ok], along[ok, axis], 1)[0])
    return np.array(out)
