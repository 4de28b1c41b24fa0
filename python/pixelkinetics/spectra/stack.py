"""One image stack: detector counts of one field of view at many X-ray energies, at one time point."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Stack:
    """Transmission images of one field of view at ``E`` photon energies.

    counts: (E, H, W) detected photons per pixel (Poisson: their variance is the count itself);
    energy: (E,) eV, strictly increasing; dwell: (E,) seconds per pixel (None: the same at every energy);
    time: seconds, the time point of the movie this stack belongs to (None when the file has none);
    dark: dark-count rate of the detector in counts per second per pixel, subtracted before the optical
    density; pixel_size_nm: from the scan axes when the file has them; source: the file (and entry) read,
    named in every error about this stack.
    """

    counts: np.ndarray
    energy: np.ndarray
    dwell: Optional[np.ndarray] = None
    time: Optional[float] = None
    dark: float = 0.0
    pixel_size_nm: Optional[float] = None
    source: str = "stack"

    def __post_init__(self) -> None:
        where = self.source
        self.counts = np.asarray(self.counts, dtype=np.float64)
        self.energy = np.asarray(self.energy, dtype=np.float64).reshape(-1)
        if self.counts.ndim != 3:
            raise ValueError(f"{where}: counts must be (energies, rows, columns), got shape {self.counts.shape}")
        E = self.counts.shape[0]
        if self.energy.shape != (E,):
            raise ValueError(f"{where}: {E} images but {self.energy.size} energies")
        if E < 2:
            raise ValueError(f"{where}: a stack needs at least 2 energies, got {E}")
        if not np.all(np.isfinite(self.energy)) or np.any(np.diff(self.energy) <= 0):
            raise ValueError(f"{where}: energies must be finite and strictly increasing, got {self.energy}")
        if self.dwell is not None:
            dwell = np.broadcast_to(np.asarray(self.dwell, dtype=np.float64), (E,)).copy()
            if not np.all(np.isfinite(dwell) & (dwell > 0)):
                raise ValueError(f"{where}: dwell times must be positive, got {dwell}")
            self.dwell = dwell
        if not np.isfinite(self.dark) or self.dark < 0:
            raise ValueError(f"{where}: the dark-count rate must be >= 0, got {self.dark}")
        if self.time is not None:
            self.time = float(self.time)
            if not np.isfinite(self.time):
                raise ValueError(f"{where}: time is not finite")

    @property
    def shape(self):
        """(E, H, W)"""
        return self.counts.shape

    def dwell_or_ones(self) -> np.ndarray:
        """Dwell per energy in seconds; ones (counts taken as counts per unit dwell) when not known."""
        return self.dwell if self.dwell is not None else np.ones(self.counts.shape[0])


def finite_mean(values: np.ndarray, axis) -> np.ndarray:
    """Mean over the finite entries along ``axis``, NaN where there is none: numpy's nanmean without its
    warning, which would become an error in workers that run under warnings-as-errors."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
