"""A movie: the observed composition of one constraint group (MODEL.md sections 1 and 9), validated.

A movie is of one of three kinds:

- ``"particle"``: an image movie of one particle, (T, H, W) on its mask, pixels joined to their
  4-neighbours;
- ``"tracked"``: a population of N particles in one electrode, each one homogeneous site, column n the
  same particle in every frame; stored (T, 1, N) with an all-true (1, N) mask and no edges, its sites
  weighted by particle volume;
- ``"snapshot"``: a population whose particles cannot be followed from frame to frame (quenched
  electrodes): only the distribution of each frame is compared (MODEL.md section 7).

:meth:`Movie.population` builds the population kinds from per-particle fractions (T, N).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Observed concentrations may stray this far outside [0, 1] through noise before a movie is refused: six
#: standard deviations of a noisy (sigma = 0.05) measurement; a unit error (percent) lies far beyond.
CONCENTRATION_TOLERANCE = 0.3
KINDS = ("particle", "tracked", "snapshot")
POPULATION_KINDS = ("tracked", "snapshot")


@dataclass
class Movie:
    """An X-ray movie of one particle, or the fractions of a population of particles (module docstring).

    concentration: (T, H, W) lithium fraction, NaN where not measured; mask: (H, W) particle pixels;
    time: (T,) seconds, strictly increasing. Optional: sigma (T, H, W) per-pixel standard deviation,
    voltage (T,) dimensionless potential for potentiostatic driving, carbon_thickness (H, W), site_weight
    (H, W) weights of the group mean (particle volumes of a population), current (T,) the applied dc/dt
    [1/s] of a population.
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
    kind: str = "particle"
    current: Optional[np.ndarray] = None

    @classmethod
    def population(cls, name: str, fraction, time, size=None, current=None, voltage=None,
                   kind: str = "tracked") -> "Movie":
        """A population movie from its fractions (T, N), NaN where a particle is not measured; size (N,):
        particle volumes (weights of the electrode mean; default equal); current (T,): the imposed dc/dt in
        1/s, or voltage (T,): the dimensionless electrode potential (potentiostatic driving)."""
        where = f"population {name!r}"
        fraction = np.asarray(fraction, dtype=np.float64)
        time = np.asarray(time, dtype=np.float64)
        if fraction.ndim != 2:
            raise ValueError(f"{where}: fraction must be 2-D (T, N), got shape {fraction.shape}")
        T, N = fraction.shape
        if T < 2 or N < 1:
            raise ValueError(f"{where}: fraction needs at least 2 frames and 1 particle, got shape {(T, N)}")
        if time.shape != (T,):
            raise ValueError(f"{where}: time must have shape ({T},) to match fraction, got {time.shape}")
        if not np.all(np.isfinite(time)) or np.any(np.diff(time) <= 0):
            raise ValueError(f"{where}: time must be finite and strictly increasing")
        if kind not in POPULATION_KINDS:
            raise ValueError(f"{where}: kind must be one of {POPULATION_KINDS}, got {kind!r}")
        _check_range(fraction, f"{where}: fraction")
        empty = np.flatnonzero(~np.isfinite(fraction).any(axis=1))
        if empty.size:
            raise ValueError(f"{where}: fraction frame {int(empty[0])} has no measured particle")
        if size is not None:
            size = np.asarray(size, dtype=np.float64)
            if size.shape != (N,) or not np.all(np.isfinite(size) & (size > 0)):
                raise ValueError(f"{where}: size must hold {N} positive particle volumes, got shape {size.shape}")
        if current is not None and voltage is not None:
            raise ValueError(f"{where}: give the current or the voltage, not both")
        current = _series(current, T, f"{where}: current")
        voltage = _series(voltage, T, f"{where}: voltage")
        return cls(name, np.ones((1, N), dtype=bool), fraction[:, None, :], time, voltage=voltage,
                   driving="potential" if voltage is not None else "rate",
                   site_weight=None if size is None else size[None, :], kind=kind, current=current)

    def __post_init__(self) -> None:
        where = f"movie {self.name!r}"
        self.mask = np.asarray(self.mask).astype(bool)
        self.concentration = np.asarray(self.concentration, dtype=np.float64)
        self.time = np.asarray(self.time, dtype=np.float64)
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
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
        if self.is_population and not (self.mask.shape[0] == 1 and self.mask.all()):
            raise ValueError(f"{where}: a population is one row of particles, an all-true (1, N) mask, got "
                             f"{self.mask.shape}")
        if self.kind == "snapshot" and self.sigma is not None:
            raise ValueError(f"{where}: a per-pixel sigma has no meaning for unlinked (snapshot) observations; "
                             "give the fit's sigma")
        if self.driving not in ("rate", "potential"):
            raise ValueError(f"{where}: driving must be 'rate' or 'potential', got {self.driving!r}")
        values = self.concentration[:, self.mask]
        _check_range(values, f"{where}: concentration")
        for f in range(T):
            if not np.isfinite(values[f]).any():
                raise ValueError(f"{where}: concentration frame {f} has no observed pixel inside the mask")
        if self.driving == "potential":
            if self.voltage is None:
                raise ValueError(f"{where}: voltage (T,) is required for potential driving")
            self.voltage = _series(self.voltage, T, f"{where}: voltage")
        if self.current is not None:
            if not self.is_population:
                raise ValueError(f"{where}: only a population has an applied current")
            self.current = _series(self.current, T, f"{where}: current")
            path = self.mean_path
            if path is not None and not np.all((path > 0) & (path < 1)):
                raise ValueError(f"{where}: the current drives the mean out of (0, 1): from "
                                 f"{path[0]:.4g} to [{path.min():.4g}, {path.max():.4g}]")
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

    @property
    def is_population(self) -> bool:
        return self.kind in POPULATION_KINDS

    @property
    def connect(self) -> bool:
        """Whether neighbouring pixels are joined by edges (a particle) or independent sites (a population)."""
        return self.kind == "particle"

    @property
    def fraction(self) -> np.ndarray:
        """A population's fractions (T, N)."""
        return self.concentration[:, 0, :]

    @property
    def size(self) -> Optional[np.ndarray]:
        """A population's particle volumes (N,), or None when they are equal."""
        return None if self.site_weight is None else self.site_weight[0]

    @property
    def mean_path(self) -> Optional[np.ndarray]:
        """(T,) the group mean that rate driving follows at the frame times, where it is not the observed
        means: a snapshot population's samples change from frame to frame, so with a current it follows
        the current from the mean of its frame 0. None: the observed (weighted) means."""
        if self.kind != "snapshot" or self.current is None:
            return None
        first = self.concentration[0][self.mask]
        charge = np.diff(self.time) * (self.current[1:] + self.current[:-1]) / 2.0  # trapezoid rule per interval
        return np.mean(first[np.isfinite(first)]) + np.concatenate([[0.0], np.cumsum(charge)])


def _check_range(values: np.ndarray, what: str) -> None:
    observed = values[np.isfinite(values)]
    tol = CONCENTRATION_TOLERANCE
    if observed.size and (observed.min() < -tol or observed.max() > 1.0 + tol):
        raise ValueError(f"{what} must lie in [0, 1] (noise up to {tol} allowed), got values in "
                         f"[{observed.min():.4g}, {observed.max():.4g}]")


def _series(values, T: int, what: str) -> Optional[np.ndarray]:
    """A finite (T,) series, or None."""
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (T,) or not np.all(np.isfinite(values)):
        raise ValueError(f"{what} must be {T} finite values, got shape {values.shape}")
    return values
