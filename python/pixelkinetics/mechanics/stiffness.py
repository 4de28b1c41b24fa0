"""Stiffness ratios learned from strain maps, by L-BFGS on the variable-projection loss.

With traction-free edges the strain does not change when the stiffness is scaled, so only ratios can be
learned. The crystal-axes stiffness is orthotropic, [[Q11, Q12, 0], [Q12, Q22, 0], [0, 0, Q66]], with Q11
held at its start and three free parameters that keep it positive definite:

    p = (ln Q22/Q11, atanh(Q12 / sqrt(Q11 Q22)), ln Q66/Q11).

The loss is L(p) = chi2 / 2 with the law and offsets at their least-squares best for that stiffness
(variable projection). At that best their own derivatives vanish, so dL/dp needs only the derivative of
the strain at fixed law: one adjoint solve per particle with the factorisation just made
(ElasticBatch.stiffness_gradient), chained through the crystal rotation and the parametrisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from scipy.optimize import minimize

from ..floor.progress import progress as progress_bar
from .elastic import voigt_rotation

PARAMETER_NAMES = ("ln(Q22/Q11)", "atanh(Q12/sqrt(Q11 Q22))", "ln(Q66/Q11)")
#: Ratios outside these bounds are not a crystal's; they keep L-BFGS out of ill-conditioned stiffness.
BOUNDS = ((np.log(0.05), np.log(20.0)), (-3.0, 3.0), (np.log(0.01), np.log(10.0)))


def stiffness_parameters(Q: np.ndarray) -> np.ndarray:
    """p of an orthotropic crystal-axes stiffness ``Q``."""
    Q = np.asarray(Q, dtype=np.float64)
    if Q.shape != (3, 3) or not np.allclose(Q, Q.T) or abs(Q[0, 2]) + abs(Q[1, 2]) > 1e-12 * abs(Q).max():
        raise ValueError(f"a fitted stiffness must be symmetric and orthotropic in the crystal axes "
                         f"(Q13 = Q23 = 0), got {Q.tolist()}")
    if np.any(np.linalg.eigvalsh(Q) <= 0):
        raise ValueError(f"stiffness must be positive definite, got {Q.tolist()}")
    return np.array([np.log(Q[1, 1] / Q[0, 0]), np.arctanh(Q[0, 1] / np.sqrt(Q[0, 0] * Q[1, 1])),
                     np.log(Q[2, 2] / Q[0, 0])])


def stiffness_from_parameters(p: np.ndarray, q11: float) -> Tuple[np.ndarray, np.ndarray]:
    """The stiffness of ``p`` with Q11 = ``q11``, and dQ/dp (3, 3, 3)."""
    q22, t, q66 = q11 * np.exp(p[0]), np.tanh(p[1]), q11 * np.exp(p[2])
    q12 = t * np.sqrt(q11 * q22)
    Q = np.array([[q11, q12, 0.0], [q12, q22, 0.0], [0.0, 0.0, q66]])
    dQ = np.zeros((3, 3, 3))
    dQ[0, 1, 1] = q22
    dQ[0, 0, 1] = dQ[0, 1, 0] = q12 / 2
    dQ[1, 0, 1] = dQ[1, 1, 0] = (1 - t * t) * np.sqrt(q11 * q22)
    dQ[2, 2, 2] = q66
    return Q, dQ


class ReducedLoss:
    """L(p) and dL/dp of a VegardProblem (vegard.py) whose stiffness it sets; ``sigma`` scales chi2."""

    def __init__(self, problem, sigma: float, q11: float):
        self.problem, self.sigma, self.q11 = problem, float(sigma), float(q11)
        self.evaluations = 0
        self.beta = np.full(problem.n_beta, np.nan)  # the law at the last evaluation

    def __call__(self, p: np.ndarray) -> Tuple[float, np.ndarray]:
        problem, model = self.problem, self.problem.model
        Q, dQ = stiffness_from_parameters(np.asarray(p, dtype=np.float64), self.q11)
        model.set_stiffness(Q)
        beta, _, residual = problem.solve(problem.responses())
        self.evaluations += 1
        self.beta = beta
        weights = [r / self.sigma ** 2 for r in problem.residual_fields(residual)]
        eigenstrains = [model.eigenstrain(c, beta.reshape(problem.order, 2)) for c in problem.compositions]
        # r = measured - strain(D) - offsets, so dL/dD = -d(sum w . strain)/dD
        dL_dD = -np.asarray(model.batch.stiffness_gradient(eigenstrains, weights))
        T = voigt_rotation(model.angle)
        dL_dQ = T.T @ dL_dD @ T
        grad = np.einsum("ij,kij->k", dL_dQ, dQ)
        return 0.5 * float(residual @ residual) / self.sigma ** 2, grad


@dataclass
class StiffnessFit:
    """Fitted ratios. parameters: p (see module); covariance: of p (inverse Hessian of chi2 / 2, by central
    differences of the adjoint gradient); beta_jacobian: d beta / d p at the fit; history: loss per
    iteration."""

    stiffness: np.ndarray
    start: np.ndarray
    parameters: np.ndarray
    covariance: np.ndarray
    beta_jacobian: np.ndarray
    loss: float
    iterations: int
    evaluations: int
    converged: bool
    message: str
    sigma: float
    history: List[float] = field(default_factory=list)
    parameter_names: Tuple[str, ...] = PARAMETER_NAMES  #: what the entries of ``parameters`` are

    def rescale(self, sigma: float) -> None:
        """Take ``sigma`` as the strain noise instead of the one the loss was scaled with."""
        self.covariance = self.covariance * (sigma / self.sigma) ** 2
        self.sigma = float(sigma)

    def ratios(self) -> dict:
        """Q22/Q11, Q12/Q11, Q66/Q11 with their sd (delta method)."""
        Q, dQ = stiffness_from_parameters(self.parameters, self.stiffness[0, 0])
        out = {}
        for name, (i, j) in (("Q22/Q11", (1, 1)), ("Q12/Q11", (0, 1)), ("Q66/Q11", (2, 2))):
            g = dQ[:, i, j] / Q[0, 0]
            out[name] = (Q[i, j] / Q[0, 0], float(np.sqrt(max(g @ self.covariance @ g, 0.0))))
        return out

    def summary(self) -> List[str]:
        state = "converged" if self.converged else f"NOT converged ({self.message})"
        lines = [f"stiffness ratios ({state}, {self.iterations} iterations, {self.evaluations} factorisations):"]
        start = self.start / self.start[0, 0]
        for (name, (value, sd)), s in zip(self.ratios().items(), (start[1, 1], start[0, 1], start[2, 2])):
            lines.append(f"  {name} = {value:.4f} +- {sd:.4f}  (start {s:.4f})")
        return lines


def fit_stiffness_ratios(problem, sigma: Optional[float] = None, max_iter: int = 60,
                         progress: bool = False) -> StiffnessFit:
    """Fits the stiffness ratios of ``problem`` (a VegardProblem, left factorised at the fit) from its
    current stiffness. sigma: the strain noise; None takes it from the fit at the start."""
    start = problem.model.stiffness.copy()
    p0 = stiffness_parameters(start)
    if sigma is None:
        _, _, residual = problem.solve(problem.responses())
        sigma = problem.estimate_sigma(residual, problem.n_beta + problem.n_offsets)
    loss = ReducedLoss(problem, sigma, start[0, 0])
    history: List[float] = []
    bar = progress_bar(max_iter, "stiffness ratios", "it", show=progress, leave=False)

    def fun(p):
        value, grad = loss(p)
        fun.last = value
        return value, grad

    def callback(p):
        history.append(fun.last)
        bar.update(1)
        bar.set_postfix(loss=f"{fun.last:.6g}")

    result = minimize(fun, np.clip(p0, *np.array(BOUNDS).T), jac=True, method="L-BFGS-B", bounds=BOUNDS,
                      callback=callback, options=dict(maxiter=max_iter))
    bar.close()
    p = result.x
    lower, upper = np.array(BOUNDS).T
    at_bound = [PARAMETER_NAMES[i] for i in np.flatnonzero((p - lower < 1e-6) | (upper - p < 1e-6))]
    converged, message = bool(result.success), str(result.message)
    if at_bound:  # the curvature there does not describe the uncertainty
        converged, message = False, f"stopped at the bound of {', '.join(at_bound)}: the data do not hold the ratios"
    hessian, jacobian = _curvature(loss, p)
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        covariance = np.full((3, 3), np.inf)
    Q = stiffness_from_parameters(p, start[0, 0])[0]
    problem.model.set_stiffness(Q)
    return StiffnessFit(Q, start, p, covariance, jacobian, float(result.fun), int(result.nit), loss.evaluations,
                        converged, message, float(sigma), history)


def _curvature(loss: ReducedLoss, p: np.ndarray, step: float = 1e-3) -> Tuple[np.ndarray, np.ndarray]:
    """Hessian of L and d beta / d p at ``p``, by central differences of the adjoint gradient and of the
    least-squares law."""
    n = p.size
    H = np.zeros((n, n))
    J = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        g_plus, b_plus = loss(p + e)[1], loss.beta
        g_minus, b_minus = loss(p - e)[1], loss.beta
        H[:, i] = (g_plus - g_minus) / (2 * step)
        J.append((b_plus - b_minus) / (2 * step))
    return 0.5 * (H + H.T), np.array(J).T
