"""Global model parameters (MODEL.md sections 2-3) as a small dataclass."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
from numpy.polynomial import legendre

from . import _core

J0_BASES = ("one", "sqrt", "asym", "logistic")
#: Globals of the logistic j0 base, 1 / (1 + exp(j0_s (c - j0_c))); they close the gradient when used.
BASE_NAMES = ("j0_s", "j0_c")

#: Scalar globals in gradient order; the Legendre coefficients a1.., b0.. follow.
SCALAR_NAMES = ("k0", "alpha", "Omega", "kappa", "B", "D")


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

    def names(self) -> List[str]:
        """Names of the raw parameters in gradient order: k0, alpha, Omega, kappa, B, D, a1.., b0.."""
        base = list(BASE_NAMES) if self.j0_base == "logistic" else []
        return (list(SCALAR_NAMES) + [f"a{m + 1}" for m in range(len(self.a))]
                + [f"b{m}" for m in range(len(self.b))] + base)

    def values(self) -> Dict[str, float]:
        """Raw values keyed like :meth:`names`."""
        vals = [getattr(self, n) for n in SCALAR_NAMES] + list(self.a) + list(self.b)
        if self.j0_base == "logistic":
            vals += [self.j0_s, self.j0_c]
        return dict(zip(self.names(), (float(v) for v in vals)))

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

    def mu_h(self, c) -> np.ndarray:
        """Homogeneous chemical potential [kT]: ln(c/(1-c)) + Omega (1 - 2c) + sum_m a_m P_m(2c - 1)."""
        c = np.asarray(c, dtype=float)
        x = 2.0 * c - 1.0
        return np.log(c / (1.0 - c)) - self.Omega * x + legendre.legval(x, [0.0] + list(self.a))

    def j0(self, c) -> np.ndarray:
        """Exchange-current shape j0(c) = j0_base(c) exp(sum_m b_m P_m(2c - 1)) (k0 and theta excluded)."""
        c = np.asarray(c, dtype=float)
        if self.j0_base == "logistic":
            base = np.exp(-np.logaddexp(0.0, self.j0_s * (c - self.j0_c)))
        else:
            base = {"one": np.ones_like(c), "sqrt": np.sqrt(c * (1.0 - c)),
                    "asym": (1.0 - c) * np.sqrt(c * (1.0 - c))}[self.j0_base]
        return base * np.exp(legendre.legval(2.0 * c - 1.0, list(self.b) or [0.0]))

    def to_core(self) -> "_core.GlobalParams":
        g = _core.GlobalParams()
        for name in SCALAR_NAMES:
            setattr(g, name, float(getattr(self, name)))
        g.a = list(self.a)
        g.b = list(self.b)
        g.j0_base = self.j0_base
        g.j0_s = float(self.j0_s)
        g.j0_c = float(self.j0_c)
        g.validate()
        return g
