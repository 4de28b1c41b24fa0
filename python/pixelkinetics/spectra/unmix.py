"""Reference-spectrum fits per pixel: non-negative weighted least squares with propagated uncertainties.

Each pixel's optical density over the energies is modelled as

    OD(E) = sum_k x_k mu_k(E) + beta          (x_k >= 0: amounts of the reference phases; beta: background)

and fitted by weighted least squares with the counting-noise weights 1 / var(OD). The bound x >= 0 is
enforced exactly: the solution of a convex problem with bounds is the unconstrained solution on its
support, so every support (subset of the bounded amounts left free) is solved in closed form for all
pixels at once and the feasible one of least chi-square is kept (2^K small solves per pixel, K the number
of references; vectorised over pixels, this is much faster than a per-pixel NNLS loop).

Uncertainties: the covariance of (x, beta) is the inverse of the weighted normal matrix A^T W A (the
Fisher information, evaluated with the unconstrained model so that a pixel on a bound keeps the spread
its data allow). For two phases the lithium fraction c = a / (a + b) (a: lithiated, b: delithiated) does
not depend on the thickness; its variance is g^T Cov g with g = (b, -a) / (a + b)^2.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Optional, Tuple

import numpy as np


@dataclass
class Unmixing:
    """Per-pixel fit of reference spectra to an OD stack (E, H, W).

    amounts: (K, H, W) x_k (NaN where the pixel could not be fitted); background: (H, W) beta or None;
    covariance: (M, M, H, W) of (x_1..x_K, beta), M = K (+1 with background); chi2: (H, W) weighted residual
    sum of squares; n_valid: (H, W) energies with a defined OD; n_free: (H, W) parameters off their bound;
    residual: (E, H, W) OD minus model (NaN where the OD is masked).
    """

    amounts: np.ndarray
    background: Optional[np.ndarray]
    covariance: np.ndarray
    chi2: np.ndarray
    n_valid: np.ndarray
    n_free: np.ndarray
    residual: np.ndarray

    @property
    def fitted(self) -> np.ndarray:
        return np.all(np.isfinite(self.amounts), axis=0)

    @property
    def reduced_chi2(self) -> np.ndarray:
        """chi-square per degree of freedom (NaN without any)."""
        dof = self.n_valid - self.n_free
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(dof > 0, self.chi2 / dof, np.nan)


def _design(references: np.ndarray, background: bool) -> np.ndarray:
    A = np.asarray(references, dtype=np.float64).T  # (E, K)
    return np.hstack([A, np.ones((A.shape[0], 1))]) if background else A


def unmix(od: np.ndarray, variance: np.ndarray, references: np.ndarray, background: bool = True,
          nonnegative: bool = True, chunk: int = 1 << 16) -> Unmixing:
    """Fit ``references`` (K, E) to every pixel of ``od`` (E, H, W) weighted by 1 / ``variance``.

    Values with a non-finite OD or variance are left out. A pixel whose remaining energies cannot
    determine the M parameters is not fitted (NaN amounts). ``nonnegative=False`` gives the
    unconstrained weighted least squares.
    """
    od = np.asarray(od, dtype=np.float64)
    E, H, W = od.shape
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    K = references.shape[0]
    if references.shape[1] != E:
        raise ValueError(f"{K} reference spectra of {references.shape[1]} energies for a stack of {E} energies")
    A = _design(references, background)
    M = A.shape[1]
    P = H * W
    y_all = od.reshape(E, P).T
    v_all = np.asarray(variance, dtype=np.float64).reshape(E, P).T
    x = np.full((P, M), np.nan)
    cov = np.full((P, M, M), np.nan)
    chi2 = np.full(P, np.nan)
    n_free = np.zeros(P, dtype=np.int64)
    good = np.isfinite(y_all) & np.isfinite(v_all) & (v_all > 0)
    n_valid = good.sum(axis=1)
    for start in range(0, P, chunk):
        sl = slice(start, start + chunk)
        w = np.where(good[sl], 1.0 / np.where(good[sl], v_all[sl], 1.0), 0.0)
        y = np.where(good[sl], y_all[sl], 0.0)
        x[sl], cov[sl], chi2[sl], n_free[sl] = _solve_chunk(y, w, A, K, nonnegative)
    residual = (y_all - x @ A.T).T.reshape(E, H, W)
    amounts = x[:, :K].T.reshape(K, H, W)
    return Unmixing(amounts=amounts, background=x[:, K].reshape(H, W) if background else None,
                    covariance=cov.transpose(1, 2, 0).reshape(M, M, H, W), chi2=chi2.reshape(H, W),
                    n_valid=n_valid.reshape(H, W), n_free=n_free.reshape(H, W), residual=residual)


def _solve_chunk(y: np.ndarray, w: np.ndarray, A: np.ndarray, K: int, nonnegative: bool):
    P, M = y.shape[0], A.shape[1]
    normal = np.einsum("pe,em,en->pmn", w, A, A, optimize=True)   # A^T W A per pixel
    rhs = (w * y) @ A                                              # A^T W y
    yWy = np.einsum("pe,pe->p", w, y * y)
    # A pixel is fitted when its normal matrix is well conditioned (enough energies measured).
    eig = np.linalg.eigvalsh(normal)
    ok = eig[:, 0] > 1e-12 * np.maximum(eig[:, -1], 1e-300)
    normal[~ok] = np.eye(M)
    cov = np.linalg.inv(normal)
    x = np.einsum("pmn,pn->pm", cov, rhs)
    n_free = np.full(P, M)
    chi2 = yWy - np.einsum("pm,pm->p", x, rhs)
    if nonnegative:
        bounded = list(range(K))
        always = list(range(K, M))  # the background is free in sign
        best = np.where(np.all(x[:, :K] >= 0, axis=1), chi2, np.inf)
        for size in range(K - 1, -1, -1):
            for support in combinations(bounded, size):
                free = list(support) + always
                xs = np.zeros((P, M))
                if free:
                    sub = normal[:, free][:, :, free]
                    xs[:, free] = np.linalg.solve(sub, rhs[:, free][:, :, None])[:, :, 0]
                c2 = yWy - np.einsum("pm,pm->p", xs, rhs)
                better = np.all(xs[:, :K] >= 0, axis=1) & (c2 < best)
                x[better], best[better], n_free[better] = xs[better], c2[better], len(free)
        chi2 = best
    x[~ok] = np.nan
    cov[~ok] = np.nan
    chi2[~ok] = np.nan
    return x, cov, chi2, n_free


def fraction(unmixing: Unmixing, lithiated: int = 0, delithiated: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """(c, sigma_c) maps: the lithium fraction c = a / (a + b) of the amounts of the ``lithiated`` and
    ``delithiated`` references, and its first-order propagated standard deviation. NaN where the pixel
    was not fitted or holds neither phase (a + b = 0)."""
    a = unmixing.amounts[lithiated]
    b = unmixing.amounts[delithiated]
    total = a + b
    cov = unmixing.covariance
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(total > 0, a / total, np.nan)
        ga, gb = b / total ** 2, -a / total ** 2
        var = (ga * ga * cov[lithiated, lithiated] + 2 * ga * gb * cov[lithiated, delithiated]
               + gb * gb * cov[delithiated, delithiated])
        sigma = np.where(total > 0, np.sqrt(var), np.nan)
    return c, sigma


def thickness(unmixing: Unmixing, lithiated: int = 0, delithiated: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """(a + b, its standard deviation): the amount of the two phases together, in units of the references."""
    cov = unmixing.covariance
    var = (cov[lithiated, lithiated] + 2 * cov[lithiated, delithiated] + cov[delithiated, delithiated])
    return unmixing.amounts[lithiated] + unmixing.amounts[delithiated], np.sqrt(var)


def pseudo_inverse(od: np.ndarray, references: np.ndarray) -> np.ndarray:
    """The unconstrained, unweighted fit the standard tools do: amounts (K, H, W) = pinv(A) OD, with NaN
    where any energy is masked. Kept as the baseline that gives negative amounts on thin pixels."""
    od = np.asarray(od, dtype=np.float64)
    E, H, W = od.shape
    x = np.linalg.pinv(np.asarray(references, dtype=np.float64).T) @ od.reshape(E, -1)
    return x.reshape(-1, H, W)


def two_energy_fraction(od: np.ndarray, energy: np.ndarray, references: np.ndarray, e1: float, e2: float,
                        lithiated: int = 0, delithiated: int = 1) -> np.ndarray:
    """The classic two-energy map: solve the 2x2 system of the two references at the energies nearest
    ``e1`` and ``e2`` (e.g. the LiFePO4 and FePO4 peaks of the Fe L3 edge) and return a / (a + b)."""
    i, j = int(np.argmin(np.abs(energy - e1))), int(np.argmin(np.abs(energy - e2)))
    if i == j:
        raise ValueError(f"{e1} and {e2} eV fall on the same energy of the stack")
    refs = np.asarray(references, dtype=np.float64)[[lithiated, delithiated]]
    matrix = refs[:, [i, j]].T  # rows: energies, columns: phases
    ab = np.linalg.solve(matrix, od[[i, j]].reshape(2, -1)).reshape((2,) + od.shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return ab[0] / (ab[0] + ab[1])
