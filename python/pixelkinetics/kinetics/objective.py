"""The fit's objective: loss / n_obs and its gradient in the optimiser's coordinates u, and products with its
Gauss-Newton Hessian from a kept linearisation."""
from __future__ import annotations

import time
from typing import Optional, Tuple

import numpy as np

from .._core import SolverError
from .problem import Problem
from .space import ParameterSpace


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
