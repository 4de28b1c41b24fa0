"""One particle's movie (MODEL.md section 9) and its validation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Observed concentrations may stray this far outside [0, 1] through noise before a movie is refused: six
#: standard deviations of a noisy (sigma = 0.05) measurement; a unit error (percent) lies far beyond.
CONCENTRATION_TOLERANCE = 0.3


@dataclass
class Movie:
    """An X-ray movie of one particle (or a population of edge-less sites).

    concentration: (T, H, W) lithium fraction, NaN where not measured; mask: (H, W) particle pixels;
    time: (T,) seconds, strictly increasing. Optional: sigma (T, H, W) per-pixel standard deviation,
    voltage (T,) dimensionless potential for potentiostatic driving, carbon_thickness (H, W), and
    site_weight (H, W) weights of the group mean (particle volumes of a population).
    ``connect=False`` makes the masked pixels independent sites without edges (a population).
    ``matching="quantile"`` marks unlinked observations (snapshots of a population: the columns of a frame
    are not the same particles from frame to frame): the loss then compares each frame's distribution,
    the k-th smallest model value with the observed quantile at level (k + 1/2) / N (a 1-D Wasserstein
    distance), re-matched at every evaluation. ``mean_path`` (T,) sets the group mean that rate driving
    follows at the frame times (a snapshot population follows its applied current, not the means of its
    changing samples); by default the observed (weighted) means.
    """

    name: str
    mask: np.ndarray
    concentration: np.ndarray
    time: np.ndarray
    sigma: Optional[np.ndarray] = None
    voltage: Optional[np.ndarray] = None
    driving: str = "rate"
    carbon_thickness: Optional[np.ndarray] = None
    pixel_size_nm: Optional[float] = None
    site_weight: Optional[np.ndarray] = None
    connect: bool = True
    matching: str = "tracked"
    mean_path: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        where = f"movie {self.name!r}"
        self.mask = np.asarray(self.mask).astype(bool)
        self.concentration = np.asarray(self.concentration, dtype=np.float64)
        self.time = np.asarray(self.time, dtype=np.float64)
        if self.mask.ndim != 2:
            raise ValueError(f"{where}: mask must be 2-D (H, W), got shape {self.mask.shape}")
        if self.concentration.ndim != 3 or self.concentration.shape[1:] != self.mask.shape:
            raise ValueError(
                f"{where}: concentration must be (T, H, W) with (H, W) = mask shape {self.mask.shape}, "
                f"got {self.concentration.shape}")
        T = self.concentration.shape[0]
        if self.time.shape != (T,):
            raise ValueError(f"{where}: time must have shape ({T},) to match concentration, got {self.time.shape}")
        if T < 2:
            raise ValueError(f"{where}: concentration needs at least 2 frames, got {T}")
        if not np.all(np.isfinite(self.time)):
            raise ValueError(f"{where}: time contains non-finite values")
        bad = np.flatnonzero(np.diff(self.time) <= 0)
        if bad.size:
            f = int(bad[0]) + 1
            raise ValueError(f"{where}: time must increase strictly, but time[{f}] = {self.time[f]} "
                             f"<= time[{f - 1}] = {self.time[f - 1]}")
        if not self.mask.any():
            raise ValueError(f"{where}: mask is empty (no particle pixels)")
        if self.matching not in ("tracked", "quantile"):
            raise ValueError(f"{where}: matching must be 'tracked' or 'quantile', got {self.matching!r}")
        if self.matching == "quantile" and self.sigma is not None:
            raise ValueError(f"{where}: a per-pixel sigma has no meaning for unlinked (quantile-matched) "
                             "observations; give the fit's sigma")
        if self.driving not in ("rate", "potential"):
            raise ValueError(f"{where}: driving must be 'rate' or 'potential', got {self.driving!r}")
        values = self.concentration[:, self.mask]
        observed = values[np.isfinite(values)]
        tol = CONCENTRATION_TOLERANCE
        if observed.size and (observed.min() < -tol or observed.max() > 1.0 + tol):
            raise ValueError(f"{where}: concentration must lie in [0, 1] (noise up to {tol} allowed), got values in "
                             f"[{observed.min():.4g}, {observed.max():.4g}]")
        for f in range(T):
            if not np.isfinite(values[f]).any():
                raise ValueError(f"{where}: concentration frame {f} has no observed pixel inside the mask")
        if self.driving == "potential":
            if self.voltage is None:
                raise ValueError(f"{where}: voltage (T,) is required for potential driving")
            self.voltage = np.asarray(self.voltage, dtype=np.float64)
            if self.voltage.shape != (T,) or not np.all(np.isfinite(self.voltage)):
                raise ValueError(f"{where}: voltage must be {T} finite values, got shape {self.voltage.shape}")
        if self.mean_path is not None:
            self.mean_path = np.asarray(self.mean_path, dtype=np.float64)
            if self.mean_path.shape != (T,) or not np.all((self.mean_path > 0) & (self.mean_path < 1)):
                raise ValueError(f"{where}: mean_path must be {T} values in (0, 1), got shape "
                                 f"{self.mean_path.shape} and range [{np.nanmin(self.mean_path):.4g}, "
                                 f"{np.nanmax(self.mean_path):.4g}]")
        if self.sigma is not None:
            self.sigma = np.asarray(self.sigma, dtype=np.float64)
            if self.sigma.shape != self.concentration.shape:
                raise ValueError(f"{where}: sigma must have the shape of concentration "
                                 f"{self.concentration.shape}, got {self.sigma.shape}")
            s = self.sigma[:, self.mask][np.isfinite(values)]
            if not np.all(s > 0):
                raise ValueError(f"{where}: sigma must be positive wherever concentration is observed")
        if self.site_weight is not None:
            self.site_weight = np.asarray(self.site_weight, dtype=np.float64)
            if self.site_weight.shape != self.mask.shape or not np.all(self.site_weight[self.mask] > 0):
                raise ValueError(f"{where}: site_weight must be a positive (H, W) map on the mask")

    @property
    def shape(self):
        """(T, H, W)"""
        return self.concentration.shape

    @property
    def n_sites(self) -> int:
        return int(self.mask.sum())
