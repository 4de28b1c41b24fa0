"""Global model parameters (MODEL.md sections 2-3) and their curves.

The core is the single source of both: the order of the parameters (the order of the gradient) is
``GlobalParams::names()``, and mu_h(c), j0(c) and the reaction rate are evaluated by the same C++
functions the solver calls at every site (``curves.hpp``), never written again in Python.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from .. import _core

J0_BASES = ("one", "sqrt", "asym", "logistic")
#: The curves of a parameter set that reports and uncertainty bands draw: ln(k0 j0(c)) and mu_h(c).
CURVES = ("ln_j0", "mu_h")
#: Concentrations at which curves and their bands are tabulated.
CURVE_GRID = np.linspace(0.02, 0.98, 97)


@dataclass
class Params:
    """Parameters shared by all particles. Energies in kT, k0 in 1/s, lengths in pixels.

    ``a`` holds the Legendre corrections a_1..a_Ma of mu_h, ``b`` the coefficients b_0..b_Mb of ln j0.
    With ``j0_base="logistic"``, j0_base(c) = 1 / (1 + exp(j0_s (c - j0_c))) (an exchange current that
    switches off across c* = j0_c, as used for layered oxides); j0_s and j0_c are then globals too.
    """

    k0: float = 1e-2
    alpha: float = 0.5
    Omega: float = 4.5
    kappa: float = 2.0
    B: float = 1.0
    D: float = 0.0
    a: Sequence[float] = field(default_factory=list)
    b: Sequence[float] = field(default_factory=lambda: [0.0])
    j0_base: str = "sqrt"
    j0_s: float = 10.0
    j0_c: float = 0.5

    def __post_init__(self) -> None:
        self.a = [float(v) for v in np.atleast_1d(np.asarray(self.a, dtype=float))]
        self.b = [float(v) for v in np.atleast_1d(np.asarray(self.b, dtype=float))]
        if self.j0_base not in J0_BASES:
            raise ValueError(f"j0_base must be one of {J0_BASES}, got {self.j0_base!r}")

    # -- names and values, in the core's order -----------------------------------------------------
    def names(self) -> List[str]:
        """Names of the raw parameters in gradient order: k0, alpha, Omega, kappa, B, D, a1.., b0.., then
        j0_s, j0_c with the logistic base."""
        return list(self._core_params().names())

    def value(self, name: str) -> float:
        """One raw value by its name in :meth:`names`."""
        if name[0] in "ab" and name[1:].isdigit():
            coefficients, index = (self.a, int(name[1:]) - 1) if name[0] == "a" else (self.b, int(name[1:]))
            if 0 <= index < len(coefficients):
                return float(coefficients[index])
        elif name in _scalar_names():
            return float(getattr(self, name))
        raise KeyError(f"{name} is not a parameter of this set {self.names()}")

    def values(self) -> Dict[str, float]:
        """Raw values keyed like :meth:`names`."""
        return {name: self.value(name) for name in self.names()}

    @classmethod
    def from_values(cls, values: Mapping[str, float], j0_base: str = "sqrt", where: str = "parameters") -> "Params":
        """The parameter set whose :meth:`values` are ``values`` (a1.., b0.. as many as given; j0_s, j0_c
        when present); missing scalars are a ValueError naming ``where``."""
        required = cls(a=[], b=[], j0_base="one").names()
        missing = [n for n in required if n not in values]
        if missing:
            raise ValueError(f"{where}: parameter attributes {missing} are missing")

        def series(prefix: str, first: int) -> List[float]:
            return [float(values[f"{prefix}{m}"]) for m in itertools.takewhile(
                lambda m: f"{prefix}{m}" in values, itertools.count(first))]

        scalars = {n: float(values[n]) for n in _scalar_names() if n in values}
        return cls(**scalars, a=series("a", 1), b=series("b", 0), j0_base=j0_base)

    def replace(self, **changes) -> "Params":
        """A copy with some named values changed; accepts a1.., b0.. as well as the field names."""
        a, b = list(self.a), list(self.b)
        fields = {}
        for name, value in changes.items():
            if name == "a":
                a = list(value)
            elif name == "b":
                b = list(value)
            elif name[0] in "ab" and name[1:].isdigit():
                target, index = (a, int(name[1:]) - 1) if name[0] == "a" else (b, int(name[1:]))
                if not 0 <= index < len(target):
                    raise KeyError(f"{name} is not a parameter of this set {self.names()}")
                target[index] = float(value)
            else:
                fields[name] = value
        return dataclasses.replace(self, a=a, b=b, **fields)

    # -- curves, from the core ---------------------------------------------------------------------
    def mu_h(self, c) -> np.ndarray:
        """Homogeneous chemical potential [kT]: ln(c/(1-c)) + Omega (1 - 2c) + sum_m a_m P_m(2c - 1)."""
        return self._curve(_core.homogeneous_potential, c)

    def j0(self, c) -> np.ndarray:
        """Exchange-current shape j0(c) = j0_base(c) exp(sum_m b_m P_m(2c - 1)) (k0 and theta excluded)."""
        return self._curve(_core.exchange_current, c)

    def rate(self, c, eta) -> np.ndarray:
        """Reaction rate [1/s] of a site with theta = 0: k0 j0(c) (exp(-alpha eta) - exp((1 - alpha) eta))."""
        c, eta = np.broadcast_arrays(np.asarray(c, float), np.asarray(eta, float))
        return _core.reaction_rate(self.to_core(), c.ravel(), eta.ravel())[0].reshape(c.shape)

    def slopes(self, c: float, eta: float) -> Tuple[float, float, float]:
        """(d mu_h / dc, d ln j0 / dc, d rate / d eta) at one state (c, eta), from the core."""
        g, at = self.to_core(), np.array([float(c)])
        return (float(_core.homogeneous_potential(g, at)[1][0]), float(_core.exchange_current(g, at)[1][0]),
                float(_core.reaction_rate(g, at, np.array([float(eta)]))[1][0]))

    def curve(self, which: str, c) -> np.ndarray:
        """One of :data:`CURVES`: "ln_j0", ln(k0 j0(c)) (the rate scale of an average pixel), or "mu_h"."""
        if which == "ln_j0":
            return np.log(self.k0 * self.j0(c))
        if which == "mu_h":
            return self.mu_h(c)
        raise ValueError(f"curve must be one of {CURVES}, got {which!r}")

    def _curve(self, function, c) -> np.ndarray:
        c = np.asarray(c, dtype=float)
        return function(self.to_core(), c.ravel())[0].reshape(c.shape)

    # -- the core's form ---------------------------------------------------------------------------
    def _core_params(self) -> "_core.GlobalParams":
        g = _core.GlobalParams()
        for name in _scalar_names():
            setattr(g, name, float(getattr(self, name)))
        g.a = list(self.a)
        g.b = list(self.b)
        g.j0_base = self.j0_base
        return g

    def to_core(self) -> "_core.GlobalParams":
        """The core's GlobalParams, validated (a ValueError names a parameter out of its range)."""
        g = self._core_params()
        g.validate()
        return g


@functools.lru_cache(maxsize=None)
def _scalar_names() -> Tuple[str, ...]:
    """The scalar fields of Params, as the core names them (k0 .. D, j0_s, j0_c)."""
    g = _core.GlobalParams()
    g.j0_base = "logistic"
    return tuple(g.names())
