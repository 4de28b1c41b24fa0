"""The fitted estimate: one point of the model (globals, theta maps, initial states) with the configuration
it was fitted with and the fingerprint of the data it was fitted to.

:func:`pixelkinetics.fit` returns it (``FitResult.estimate``), a results file holds it
(``Results.estimate``), and ``uq``, ``bootstrap`` and ``simulate`` take it (``report`` takes the
:class:`~pixelkinetics.kinetics.results.Results` of a fit, in memory or read from its file), so that no
workflow writes a result and reads it back to go on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from ..floor.checkpoint import digest
from .config import FitConfig
from .movie import Movie
from .params import Params


def data_fingerprint(movies: Sequence[Movie]) -> str:
    """Identifies the data a fit sees: names, kinds, masks, observations, times, noise maps and drives."""
    parts = []
    for m in movies:
        parts += [[m.name, m.kind, m.driving], m.mask, np.nan_to_num(m.concentration, nan=-1.0), m.time]
        parts += [np.asarray(v) for v in (m.sigma, m.voltage, m.current, m.site_weight) if v is not None]
    return digest(*parts)


@dataclass
class Estimate:
    """A point of the model: ``params``, ``theta`` ({name: (H, W) map, NaN off the mask}) and ``c0`` (the
    initial states as maps; None: each movie's default), fitted with ``config`` to the data whose
    :func:`data_fingerprint` is ``fingerprint`` (None: not known)."""

    config: FitConfig
    params: Params
    theta: Dict[str, np.ndarray]
    c0: Optional[Dict[str, np.ndarray]] = None
    fingerprint: Optional[str] = None

    def covers(self, movies: Sequence[Movie], where: str = "the estimate") -> None:
        """Refuse movies of particles this estimate has no fit for."""
        missing = [m.name for m in movies if m.name not in self.theta]
        if missing:
            raise ValueError(f"{where}: no fit for the particles {missing}")

    def check(self, movies: Sequence[Movie], where: str = "the estimate") -> None:
        """Refuse movies this estimate does not belong to: a particle it has no fit for, or data other than
        those it was fitted to (when its fingerprint is known): its error bars are those of these data."""
        self.covers(movies, where)
        if self.fingerprint is not None and self.fingerprint != data_fingerprint(movies):
            raise ValueError(f"{where}: fitted to other data than these (the data's fingerprint differs); "
                             "give the data file that was fitted")

    def with_free(self, free: Sequence[str]) -> "Estimate":
        """The same point with another free set (what if these were free: an identifiability study)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, free=list(free)))
