"""Units: what the files and the solver store (MODEL.md section 8), and how times are shown to people.

Stored: time in seconds, rates (k0, k0 j0, a population's current dc/dt) in 1/s, energies (mu_h, Omega,
kappa, B) in kT, lengths in pixels (``pixel_size_nm`` gives the physical size), strains dimensionless,
X-ray energies in eV. Shown: a time axis in the unit that keeps its numbers readable.
"""
from __future__ import annotations

from typing import Sequence, Tuple

#: (seconds per unit, unit), smallest first
_TIME_UNITS = ((1.0, "s"), (60.0, "min"), (3600.0, "h"), (86400.0, "d"))


def time_unit(times: Sequence[float]) -> Tuple[float, str]:
    """(seconds per unit, unit) in which a time axis spanning ``times`` reads best: the largest unit of
    which the span holds at least two."""
    span = float(max(times) - min(times)) if len(times) else 0.0
    scale, unit = _TIME_UNITS[0]
    for seconds, name in _TIME_UNITS[1:]:
        if span >= 2 * seconds:
            scale, unit = seconds, name
    return scale, unit


def duration(seconds: float) -> str:
    """A duration in the unit :func:`time_unit` picks for it, e.g. '70 s', '12.5 min', '28 h'."""
    scale, unit = time_unit([0.0, seconds])
    return f"{seconds / scale:.3g} {unit}"
