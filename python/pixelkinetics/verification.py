"""Verification helpers that users run on their own problems as well as the test suite."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def taylor_test(func: Callable[[np.ndarray], float], x0: np.ndarray, gradient: np.ndarray,
                direction: np.ndarray, eps0: float = 1e-2, n_halvings: int = 4) -> np.ndarray:
    """Convergence rates of the first-order Taylor remainder of ``func`` at ``x0``.

    r(eps) = |func(x0 + eps d) - func(x0) - eps gradient . d| falls as eps^2 when ``gradient`` is the
    exact gradient, so each returned rate log2(r(eps) / r(eps / 2)) is close to 2 (and close to 1
    when the gradient is wrong). Returns ``n_halvings`` rates.
    """
    x0 = np.asarray(x0, dtype=float)
    direction = np.asarray(direction, dtype=float)
    f0 = func(x0)
    slope = float(np.dot(gradient, direction))
    eps = eps0 * 0.5 ** np.arange(n_halvings + 1)
    remainders = np.array([abs(func(x0 + e * direction) - f0 - e * slope) for e in eps])
    return np.log2(remainders[:-1] / remainders[1:])


def convergence_orders(step_sizes: Sequence[float], errors: Sequence[float]) -> np.ndarray:
    """Observed orders log(e_k / e_{k+1}) / log(h_k / h_{k+1}) between successive refinements."""
    h = np.asarray(step_sizes, dtype=float)
    e = np.asarray(errors, dtype=float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])
