"""The fit's coordinates of the global parameters: the package's own coordinate system.

k0, kappa and D are positive and live in log space, alpha lives in (0, 1) and is taken through the logit,
the others are used as they are. The optimiser steps in these coordinates z, the Laplace covariance is
theirs, and bootstrap intervals are taken in them and mapped back, so an interval of k0 is never negative.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .params import Params

#: Parameters optimised in log space.
POSITIVE = ("k0", "kappa", "D")
#: Parameters optimised through the logistic map.
UNIT_INTERVAL = ("alpha",)


def to_z(name: str, x: float) -> float:
    """The fit coordinate of a raw value."""
    if name in POSITIVE:
        return float(np.log(x))
    if name in UNIT_INTERVAL:
        return float(np.log(x / (1.0 - x)))
    return float(x)


def from_z(name: str, z: float) -> Tuple[float, float]:
    """The raw value of a fit coordinate, and d raw / d z."""
    if name in POSITIVE:
        x = float(np.exp(min(z, 700.0)))  # a wild trial step fails in the solver, not in exp
        return x, x
    if name in UNIT_INTERVAL:
        x = float(1.0 / (1.0 + np.exp(-z)))
        return x, x * (1.0 - x)
    return float(z), 1.0


def label(name: str) -> str:
    """The fit coordinate of a global as it is printed: "ln k0", "logit alpha", "Omega"."""
    return f"ln {name}" if name in POSITIVE else f"logit {name}" if name in UNIT_INTERVAL else name


@dataclass(frozen=True)
class FitCoordinates:
    """The map between the raw values of some globals (``names``, in Params.names() order) and their fit
    coordinates z."""

    names: Tuple[str, ...]

    def __init__(self, names: Sequence[str]):
        object.__setattr__(self, "names", tuple(names))

    def z(self, params: Params) -> np.ndarray:
        """The coordinates of a parameter set."""
        return np.array([to_z(n, params.value(n)) for n in self.names])

    def raw(self, z: Sequence[float]) -> np.ndarray:
        """Raw values of coordinates z."""
        return np.array([from_z(n, float(v))[0] for n, v in zip(self.names, z)])

    def jacobian(self, z: Sequence[float]) -> np.ndarray:
        """d raw / d z at z, per global."""
        return np.array([from_z(n, float(v))[1] for n, v in zip(self.names, z)])

    def params(self, base: Params, z: Sequence[float]) -> Params:
        """``base`` with these globals moved to the coordinates z."""
        return base.replace(**dict(zip(self.names, self.raw(z))))
