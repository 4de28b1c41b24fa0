"""Optical density OD = ln(I0 / I) from detector counts, with its counting-noise variance.

No value is ever altered: a count that does not allow an optical density (non-finite or negative,
saturated, or no signal above the dark counts) is masked (NaN, infinite variance) and counted by reason.

The images are carried as log intensities L = ln(I), I = n - d (counts n, dark counts d = dark rate x
dwell), with var(L) = n / I^2 (Poisson). Alignment resamples L, not I: OD = ln I0 - L is linear in the
amounts of the phases, so interpolated pixels stay inside the mixing model (interpolating intensities
would mix exponentials and add spurious spectral components). Then

    var(OD) = var(L) + var(I0) / I0^2

where var(I0) is that of the mean over the I0 region (or zero for an I0 spectrum from a file).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from .stack import finite_mean

#: Fewest pixels an I0 region may have: fewer make I0 itself noisy.
MIN_I0_PIXELS = 16

#: Reasons a raw count is unusable (:func:`log_intensity`); "unusable after alignment" counts the values
#: that depend on an unusable count once alignment resampled the images.
RAW_REASONS = ("not finite", "negative counts", "saturated", "no signal above dark")
OD_REASONS = ("unusable after alignment",)


@dataclass
class OpticalDensity:
    """od, variance: (E, H, W), NaN / inf where masked; i0: (E,) counts per pixel at each energy's dwell;
    i0_variance: (E,); i0_region: (H, W) the pixels I0 came from (None for an I0 file);
    masked: {reason: number of (energy, pixel) values}."""

    od: np.ndarray
    variance: np.ndarray
    i0: np.ndarray
    i0_variance: np.ndarray
    i0_region: Optional[np.ndarray]
    masked: Dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.od)


def log_intensity(counts: np.ndarray, dwell: np.ndarray, dark_rate: float, saturation: Optional[float] = None
                  ) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
    """(L = ln(counts - dark_rate x dwell), var(L), {reason: number of unusable counts}) of raw counts
    (E, H, W); L is NaN where the counts do not allow a logarithm."""
    counts = np.asarray(counts, dtype=np.float64)
    finite = np.isfinite(counts)
    negative = finite & (counts < 0)
    saturated = (finite & (counts >= saturation)) if saturation is not None else np.zeros_like(finite)
    signal = counts - dark_rate * dwell[:, None, None]
    no_signal = finite & ~negative & ~saturated & ~(signal > 0)
    good = finite & ~negative & ~saturated & ~no_signal
    with np.errstate(divide="ignore", invalid="ignore"):
        log_i = np.where(good, np.log(np.where(good, signal, 1.0)), np.nan)
        var = np.where(good, counts / np.where(good, signal, 1.0) ** 2, np.nan)
    reasons = {"not finite": int((~finite).sum()), "negative counts": int(negative.sum()),
               "saturated": int(saturated.sum()), "no signal above dark": int(no_signal.sum())}
    return log_i, var, reasons


def auto_i0_region(rate: np.ndarray, margin: int = 1) -> np.ndarray:
    """The bright, sample-free pixels of a mean transmitted-rate image (H, W): above the Otsu threshold of
    the log rate, within 3 robust standard deviations of their median (faint absorbers at particle edges
    fall out), eroded by ``margin`` pixels."""
    finite = np.isfinite(rate) & (rate > 0)
    if finite.sum() < MIN_I0_PIXELS:
        raise ValueError("too few pixels with signal to estimate I0 automatically")
    log_rate = np.log(np.where(finite, rate, np.nan))
    values = log_rate[finite]
    bright = finite.copy()
    if values.max() > values.min():
        bright &= np.nan_to_num(log_rate, nan=-np.inf) > threshold_otsu(values)
    med = np.median(rate[bright])
    spread = 1.4826 * np.median(np.abs(rate[bright] - med)) + 1e-12 * med
    region = bright & (np.abs(np.nan_to_num(rate, nan=np.inf) - med) < 3 * spread)
    if margin > 0:
        eroded = ndimage.binary_erosion(region, iterations=margin)
        region = eroded if eroded.sum() >= MIN_I0_PIXELS else region
    if region.sum() < MIN_I0_PIXELS:
        raise ValueError(f"no sample-free bright region of at least {MIN_I0_PIXELS} pixels found for I0; "
                         "give the I0 region or an I0 file")
    return region


I0Source = Union[str, np.ndarray]


def optical_density(log_i: np.ndarray, variance: np.ndarray, dwell: np.ndarray, i0: I0Source = "auto"
                    ) -> OpticalDensity:
    """OD and its variance from log intensities ``log_i`` (E, H, W) and their variance (:func:`log_intensity`,
    possibly aligned).

    ``i0``: "auto" (:func:`auto_i0_region`), a boolean (H, W) region of bare support, or an I0 rate spectrum
    (counts per second, (E,) at the stack's energies) as measured without the sample.
    """
    E = log_i.shape[0]
    region = None
    intensity = np.exp(log_i)
    if isinstance(i0, str):
        if i0 != "auto":
            raise ValueError(f"i0 must be 'auto', a region mask or an I0 spectrum, got {i0!r}")
        with np.errstate(invalid="ignore"):
            rate = finite_mean(intensity / dwell[:, None, None], axis=0)
        region = auto_i0_region(rate)
    else:
        i0 = np.asarray(i0)
        if i0.dtype == bool:
            if i0.shape != log_i.shape[1:]:
                raise ValueError(f"the I0 region has shape {i0.shape}, the images {log_i.shape[1:]}")
            region = i0
            if not region.any():
                raise ValueError("the I0 region is empty")
        elif i0.shape != (E,):
            raise ValueError(f"an I0 spectrum needs {E} values (one per energy), got shape {i0.shape}")
    if region is not None:
        inside = intensity[:, region]
        n = np.isfinite(inside).sum(axis=1)
        if np.any(n == 0):
            raise ValueError(f"the I0 region has no usable pixel at energy index {int(np.argmin(n))}")
        i0_counts = finite_mean(inside, axis=1)
        # var(I) = I^2 var(L) for each pixel of the mean
        i0_var = np.nansum(inside ** 2 * variance[:, region], axis=1) / n ** 2
    else:
        i0_counts = i0.astype(np.float64) * dwell
        i0_var = np.zeros(E)
    if np.any(~(i0_counts > 0)):
        e = int(np.argmax(~(i0_counts > 0)))
        raise ValueError(f"I0 is not positive at energy index {e} ({i0_counts[e]:.4g} counts)")
    good = np.isfinite(log_i) & np.isfinite(variance)
    with np.errstate(invalid="ignore"):
        od = np.where(good, np.log(i0_counts)[:, None, None] - log_i, np.nan)
        var = np.where(good, variance + (i0_var / i0_counts ** 2)[:, None, None], np.inf)
    return OpticalDensity(od=od, variance=var, i0=i0_counts, i0_variance=i0_var, i0_region=region,
                          masked={"unusable after alignment": int((~good).sum())})
