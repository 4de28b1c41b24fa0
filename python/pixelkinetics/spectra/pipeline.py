"""From a movie of STXM stacks to composition movies: the whole spectral step.

:func:`reduce_stacks` takes one stack per time point through

1. log intensities of the transmitted counts (dark counts removed, unusable counts masked and counted);
2. alignment: each stack's energies to the stack's mean image (two passes of sub-pixel phase correlation),
   refined against the mixing model of the reference spectra; each stack's composition-blind amount image
   to the first stack's; every image is resampled once with its total shift and all are cropped to the
   region every image covers;
3. optical density with I0 from a region, an automatic bright-region estimate or a spectrum;
4. PCA with a component-count estimate and k-means clusters of spectral shapes (the model is fitted on a
   few pilot stacks spread over the movie so that cluster labels mean the same at every time);
5. non-negative reference fits per pixel with background, residuals and propagated standard deviations,
   and the lithium fraction c = a / (a + b) with its sigma.

:func:`segment` finds the particles in the time-averaged thickness, :func:`particle_movies` cuts them into
:class:`pixelkinetics.Movie` objects with ``sigma``, and :func:`.files.write_spectral_movie` writes a movie file
(MODEL.md section 9) that ``pixelkinetics fit`` reads, with the spectral diagnostics under ``/spectra``.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

from ..floor.progress import progress as progress_bar
from ..kinetics.movie import Movie
from .align import common_region, estimate_shifts, refine_shifts, shift_images
from .decompose import Clusters, Decomposition, cluster, pca
from .optical_density import OD_REASONS, RAW_REASONS, log_intensity, optical_density
from .stack import Stack, finite_mean
from .unmix import fraction, thickness, unmix

#: Energies of two stacks may differ by this much (eV) and still count as the same grid.
ENERGY_TOLERANCE = 0.05
#: Spectra per pilot stack kept for the PCA and the k-means model.
PILOT_ROWS = 20_000

Region = Tuple[int, int, int, int]


@dataclass
class SpectraOptions:
    """How :func:`reduce_stacks` works.

    i0: "auto", a region (row0, row1, col0, col1) of bare support in the aligned frame before the crop
    (ends exclusive), or an I0 rate spectrum (counts per second at the stacks' energies); align:
    "subpixel", "integer" or "none"; align_time: register the stacks to the first one; background: fit a
    constant OD offset per pixel; saturation: counts at or above it are masked; n_clusters: k-means
    clusters; pilot: stacks the PCA and cluster model are fitted on; workers: threads (0: all cores).
    """

    i0: Union[str, Region, np.ndarray] = "auto"
    align: str = "subpixel"
    align_time: bool = True
    background: bool = True
    saturation: Optional[float] = None
    n_clusters: int = 3
    pilot: int = 3
    workers: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.i0, list):
            self.i0 = tuple(self.i0) if len(self.i0) == 4 and all(isinstance(v, int) for v in self.i0) \
                else np.asarray(self.i0, dtype=np.float64)
        if self.align not in ("subpixel", "integer", "none"):
            raise ValueError(f"align must be 'subpixel', 'integer' or 'none', got {self.align!r}")
        if self.n_clusters < 1 or self.pilot < 1:
            raise ValueError("n_clusters and pilot must be at least 1")
        if isinstance(self.i0, str) and self.i0 != "auto":
            raise ValueError(f"i0 must be 'auto', a region or a spectrum, got {self.i0!r}")


@dataclass
class SpectralMovie:
    """What :func:`reduce_stacks` found. Maps are (T, h, w) on the aligned, cropped field of view."""

    time: np.ndarray
    energy: np.ndarray
    references: np.ndarray
    names: List[str]
    lithiated: int
    delithiated: int
    shifts: np.ndarray                 #: (T, E, 2) total shift of every image
    crop: Region                       #: the common region in the aligned frame
    composition: np.ndarray
    sigma: np.ndarray
    amount: np.ndarray                 #: a + b, the amount of the two phases (reference units)
    amount_sd: np.ndarray
    background: Optional[np.ndarray]
    reduced_chi2: np.ndarray
    clusters: np.ndarray               #: (T, h, w) int16: 1..k, 0 thin or incomplete
    cluster_spectra: np.ndarray        #: (k, E)
    decomposition: Decomposition       #: of the pilot stacks' spectra
    n_components: np.ndarray           #: (T,) the component count of each stack alone
    i0: np.ndarray                     #: (T, E) counts per pixel
    i0_pixels: np.ndarray              #: (T,) pixels of the I0 region (0 for an I0 spectrum)
    masked: Dict[str, np.ndarray]      #: reason -> (T,): raw counts unusable (whole images); values of the
                                       #: crop without an OD after alignment
    unfitted: np.ndarray               #: (T,) pixels without a fit (too few energies with an OD)
    pixel_size_nm: Optional[float] = None
    sources: List[str] = field(default_factory=list)
    recorded_pixels: int = 0           #: H x W of the stacks before the crop

    @property
    def shape(self):
        return self.composition.shape

    def summary(self) -> List[str]:
        T, h, w = self.shape
        E = self.energy.size
        s = self.shifts.reshape(-1, 2)
        lines = [f"{T} stacks of {E} energies ({self.energy[0]:g} to {self.energy[-1]:g} eV), aligned and "
                 f"cropped to {h}x{w} pixels (rows {self.crop[0]}:{self.crop[1]}, columns {self.crop[2]}:"
                 f"{self.crop[3]})",
                 f"shifts from ({s[:, 0].min():+.2f}, {s[:, 1].min():+.2f}) to ({s[:, 0].max():+.2f}, "
                 f"{s[:, 1].max():+.2f}) pixels (row, column)"]
        raw = ", ".join(f"{k} {int(self.masked[k].sum())}" for k in RAW_REASONS if self.masked[k].sum())
        recorded = T * E * self.recorded_pixels
        lines.append(f"unusable raw counts: {raw or 'none'} (of {recorded} recorded); values in the {h}x{w} crop "
                     f"without an OD: {int(self.masked[OD_REASONS[0]].sum())} (of {T * E * h * w}); pixels "
                     f"without a fit: {int(self.unfitted.sum())}")
        d = self.decomposition
        lines.append(f"PCA of {d.n_pixels} pilot spectra: {d.n_components} components above the noise edge "
                     f"{d.noise_edge:.4g} (singular values {', '.join(f'{v:.4g}' for v in d.singular_values[:5])}"
                     f"); per stack {int(self.n_components.min())} to {int(self.n_components.max())}")
        c = self.composition[np.isfinite(self.composition)]
        with np.errstate(invalid="ignore", divide="ignore"):
            solid = self.amount > 10 * self.amount_sd
        sg = self.sigma[solid & np.isfinite(self.sigma)]
        chi = self.reduced_chi2[np.isfinite(self.reduced_chi2)]
        if c.size:
            median_sigma = np.median(sg) if sg.size else np.nan
            lines.append(f"composition {c.min():.3f} to {c.max():.3f}; median sigma {median_sigma:.4f} "
                         f"where the amount exceeds 10 sd; "
                         f"median reduced chi-square of the spectral fits {np.median(chi):.3f}")
        return lines


def _check_grid(stacks: Sequence[Stack]) -> np.ndarray:
    energy = stacks[0].energy
    shape = stacks[0].shape
    for s in stacks[1:]:
        if s.shape != shape:
            raise ValueError(f"{s.source}: stack is {s.shape} (energies, rows, columns), {stacks[0].source} "
                             f"is {shape}; a movie needs one grid")
        if np.max(np.abs(s.energy - energy)) > ENERGY_TOLERANCE:
            raise ValueError(f"{s.source}: energies differ from those of {stacks[0].source} by up to "
                             f"{np.max(np.abs(s.energy - energy)):.3g} eV")
    return energy


def _times(stacks: Sequence[Stack], times: Optional[Sequence[float]]) -> np.ndarray:
    if times is not None:
        t = np.asarray(times, dtype=np.float64)
        if t.shape != (len(stacks),):
            raise ValueError(f"{len(stacks)} stacks but {t.size} times")
    else:
        missing = [s.source for s in stacks if s.time is None]
        if missing:
            raise ValueError(f"{missing[0]}: no time stamp; give the time of every stack")
        t = np.array([s.time for s in stacks])
    if not np.all(np.isfinite(t)):
        raise ValueError("stack times must be finite")
    return t - t.min()


def thickness_weights(references: np.ndarray, lithiated: int, delithiated: int) -> np.ndarray:
    """Energy weights w (E,) with sum_e w_e mu_Li(e) = sum_e w_e mu_FP(e): the weighted sum of OD images is
    the amount a + b alone, blind to composition; the stacks of a movie are registered on it."""
    diff = references[lithiated] - references[delithiated]
    w = np.ones(references.shape[1])
    w -= (w @ diff) / (diff @ diff) * diff
    return w / np.abs(w @ references[lithiated])


def _energy_shifts(log_i: np.ndarray, references: np.ndarray, weights: np.ndarray, mode: str, workers: int = 1
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """(E, 2) shifts registering a stack's log-intensity images (zero mean) and the stack's aligned,
    composition-blind amount image (:func:`thickness_weights`) for the registration between stacks.

    Pass 1 registers every energy to the stack's mean image by phase correlation, pass 2 to the sharper
    mean of the roughly aligned images; then :func:`refine_shifts` removes the pull of contrast that changes
    with energy, which a mean image cannot avoid (up to 0.15 pixel on strongly patterned particles).
    """
    E = log_i.shape[0]
    if mode == "none":
        return np.zeros((E, 2)), -np.tensordot(weights, log_i, axes=1)
    shifts = estimate_shifts(log_i, finite_mean(log_i, axis=0), workers=workers)
    rough = shift_images(log_i, shifts, workers=workers)[0]
    shifts = estimate_shifts(log_i, finite_mean(rough, axis=0), workers=workers)
    shifts = refine_shifts(-log_i, shifts - shifts.mean(axis=0), references, workers=workers)
    if mode == "integer":
        shifts = np.round(shifts)
    aligned = shift_images(log_i, shifts, integer=mode == "integer", workers=workers)[0]
    return shifts, -np.tensordot(weights, aligned, axes=1)


class _Reducer:
    """The per-stack steps after the shifts are known."""

    def __init__(self, stacks, references, options, shifts, crop, lithiated, delithiated):
        self.stacks, self.references, self.options = stacks, references, options
        self.shifts, self.crop = shifts, crop
        self.lithiated, self.delithiated = lithiated, delithiated
        r0, r1, c0, c1 = crop
        i0 = options.i0
        if isinstance(i0, tuple):
            region = np.zeros((r1 - r0, c1 - c0), dtype=bool)
            a0, a1, b0, b1 = i0
            region[max(a0 - r0, 0):max(a1 - r0, 0), max(b0 - c0, 0):max(b1 - c0, 0)] = True
            if not region.any():
                raise ValueError(f"the I0 region rows {a0}:{a1}, columns {b0}:{b1} lies outside the aligned "
                                 f"crop (rows {r0}:{r1}, columns {c0}:{c1})")
            self.i0 = region
        else:
            self.i0 = i0

    def optical_density(self, t: int):
        s = self.stacks[t]
        dwell = s.dwell_or_ones()
        log_i, var, raw = log_intensity(s.counts, dwell, s.dark, self.options.saturation)
        if self.options.align != "none":
            log_i, var = shift_images(log_i, self.shifts[t], var, integer=self.options.align == "integer",
                                      workers=1)
        r0, r1, c0, c1 = self.crop
        log_i, var = log_i[:, r0:r1, c0:c1], var[:, r0:r1, c0:c1]
        try:
            od = optical_density(log_i, var, dwell, self.i0)
        except ValueError as exc:
            raise ValueError(f"{s.source}: {exc}") from None
        return od, raw

    def reduce(self, t: int, clusters: Clusters):
        od, raw = self.optical_density(t)
        E, h, w = od.od.shape
        u = unmix(od.od, od.variance, self.references, background=self.options.background)
        c, sigma = fraction(u, self.lithiated, self.delithiated)
        amount, amount_sd = thickness(u, self.lithiated, self.delithiated)
        rows, var_rows = od.od.reshape(E, -1).T, od.variance.reshape(E, -1).T
        labels = clusters.predict(rows, var_rows).reshape(h, w)
        try:
            n_comp = pca(rows, var_rows).n_components
        except ValueError:
            n_comp = 0
        masked = dict(raw, **od.masked)
        return dict(composition=c, sigma=sigma, amount=amount, amount_sd=amount_sd, background=u.background,
                    reduced_chi2=u.reduced_chi2, clusters=labels, n_components=n_comp, i0=od.i0,
                    i0_pixels=0 if od.i0_region is None else int(od.i0_region.sum()), masked=masked,
                    unfitted=int((~u.fitted).sum()))


def reduce_stacks(stacks: Sequence[Stack], references: np.ndarray, names: Optional[Sequence[str]] = None,
                  lithiated: Union[int, str] = 0, delithiated: Union[int, str] = 1,
                  options: Optional[SpectraOptions] = None, times: Optional[Sequence[float]] = None,
                  progress: bool = False) -> SpectralMovie:
    """Composition maps with propagated sigma from one stack per time point (see the module docstring).

    references: (K, E) OD per unit amount at the stacks' energies; ``lithiated`` and ``delithiated`` pick
    the two phases of c = a / (a + b) by index or name. Stacks are put in time order; ``times`` (seconds)
    override the files' time stamps.
    """
    options = options or SpectraOptions()
    if not stacks:
        raise ValueError("no stacks to reduce")
    energy = _check_grid(stacks)
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if references.shape[1] != energy.size:
        raise ValueError(f"reference spectra have {references.shape[1]} energies, the stacks {energy.size}")
    names = list(names) if names is not None else [f"reference{k}" for k in range(references.shape[0])]
    li, de = (_index(names, x) for x in (lithiated, delithiated))
    if li == de:
        raise ValueError("the lithiated and delithiated references must differ")
    t = _times(stacks, times)
    order = np.argsort(t, kind="stable")
    stacks, t = [stacks[i] for i in order], t[order]
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"two stacks share the time {t[np.argmax(np.diff(t) <= 0)]:g} s")
    if isinstance(options.i0, np.ndarray):
        if options.i0.shape != energy.shape:
            raise ValueError(f"the I0 spectrum has {options.i0.size} values, the stacks {energy.size} energies")
        no_dwell = [s.source for s in stacks if s.dwell is None]
        if no_dwell:
            raise ValueError(f"{no_dwell[0]}: no dwell time, so an I0 spectrum in counts per second cannot be "
                             "scaled to its counts; use an I0 region instead")
    workers = options.workers or os.cpu_count() or 1
    T, E = len(stacks), energy.size
    H, W = stacks[0].shape[1:]

    weights = thickness_weights(references, li, de)

    def shifts_of(k):
        s = stacks[k]
        log_i, _, _ = log_intensity(s.counts, s.dwell_or_ones(), s.dark, options.saturation)
        try:
            return _energy_shifts(log_i, references, weights, options.align)  # one FFT thread per stack
        except ValueError as exc:
            raise ValueError(f"{s.source}: alignment failed ({exc})") from None

    bar = progress_bar(2 * T + min(options.pilot, T), "spectra", "stack", show=progress, leave=False)
    # Stacks run in parallel threads, each with one BLAS and one FFT thread (set here, once, for the pool:
    # threadpoolctl's limits are process-wide and not safe to change from the workers).
    limits = threadpool_limits(1, user_api="blas") if workers > 1 else contextlib.nullcontext()
    with limits, ThreadPoolExecutor(max_workers=workers) as pool:
        shifts, means = [], []
        for sh, mean in pool.map(shifts_of, range(T)):
            shifts.append(sh)
            means.append(mean)
            bar.update()
        shifts = np.stack(shifts)
        if options.align_time and options.align != "none" and T > 1:
            drift = estimate_shifts(np.stack(means), means[0])
            drift -= drift[0]
            if options.align == "integer":
                drift = np.round(drift)
            shifts = shifts + drift[:, None, :]
        crop = common_region(shifts.reshape(-1, 2), (H, W), integer=options.align == "integer") \
            if options.align != "none" else (0, H, 0, W)
        reducer = _Reducer(stacks, references, options, shifts, crop, li, de)

        pilots = np.unique(np.linspace(0, T - 1, min(options.pilot, T)).round().astype(int))
        rng = np.random.default_rng(0)
        rows, var_rows = [], []
        for od, _ in pool.map(reducer.optical_density, pilots):
            r, v = od.od.reshape(E, -1).T, od.variance.reshape(E, -1).T
            keep = np.sort(rng.choice(r.shape[0], min(PILOT_ROWS, r.shape[0]), replace=False))
            rows.append(r[keep])
            var_rows.append(v[keep])
            bar.update()
        rows, var_rows = np.concatenate(rows), np.concatenate(var_rows)
        decomposition = pca(rows, var_rows)
        clusters = cluster(rows, var_rows, decomposition, n_clusters=options.n_clusters)

        results = []
        for r in pool.map(lambda k: reducer.reduce(k, clusters), range(T)):
            results.append(r)
            bar.update()
    bar.close()

    def stack_of(key, dtype=np.float64):
        return np.stack([r[key] for r in results]).astype(dtype)

    reasons = RAW_REASONS + OD_REASONS
    return SpectralMovie(
        time=t, energy=energy, references=references, names=names, lithiated=li, delithiated=de,
        shifts=shifts, crop=crop, composition=stack_of("composition"), sigma=stack_of("sigma"),
        amount=stack_of("amount"), amount_sd=stack_of("amount_sd"),
        background=stack_of("background") if options.background else None,
        reduced_chi2=stack_of("reduced_chi2"), clusters=stack_of("clusters", np.int16),
        cluster_spectra=clusters.spectra, decomposition=decomposition,
        n_components=stack_of("n_components", np.int64), i0=stack_of("i0"),
        i0_pixels=stack_of("i0_pixels", np.int64),
        masked={k: np.array([r["masked"][k] for r in results]) for k in reasons},
        unfitted=stack_of("unfitted", np.int64), pixel_size_nm=stacks[0].pixel_size_nm,
        sources=[s.source for s in stacks], recorded_pixels=H * W)


def _index(names: Sequence[str], which: Union[int, str]) -> int:
    if isinstance(which, str):
        if which not in names:
            raise ValueError(f"no reference spectrum named {which!r} (have {list(names)})")
        return list(names).index(which)
    if not 0 <= which < len(names):
        raise ValueError(f"reference index {which} out of range for {len(names)} references")
    return int(which)


# -- particles ------------------------------------------------------------------------------------
def segment(spectral: SpectralMovie, min_snr: float = 10.0, min_pixels: int = 20,
            min_fraction: float = 0.25) -> np.ndarray:
    """Label image (h, w) of the particles: 4-connected pixels whose time-averaged amount a + b exceeds
    ``min_snr`` times its standard deviation and ``min_fraction`` of the median amount of their piece (the
    probe's blur spreads a faint halo around each particle that is not particle), in pieces of at least
    ``min_pixels``; labels 1..n in row-major order of their first pixel, 0 elsewhere."""
    amount = finite_mean(spectral.amount, axis=0)
    n = np.sum(np.isfinite(spectral.amount_sd), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.nansum(spectral.amount_sd ** 2, axis=0)) / np.maximum(n, 1)
        solid = np.nan_to_num(amount / sd) > min_snr
    labels, count = ndimage.label(solid)
    if count:
        medians = np.asarray(ndimage.median(amount, labels, range(1, count + 1)))
        floor = np.concatenate([[np.inf], min_fraction * medians])
        solid &= amount >= floor[labels]
        labels, count = ndimage.label(solid)
    sizes = ndimage.sum(solid, labels, range(1, count + 1))
    keep = np.flatnonzero(sizes >= min_pixels) + 1
    out = np.zeros_like(labels)
    for new, old in enumerate(keep, start=1):
        out[labels == old] = new
    return out


def particle_movies(spectral: SpectralMovie, labels: np.ndarray, prefix: str = "particle") -> List[Movie]:
    """One rate-driven :class:`Movie` with ``sigma`` per labelled particle, cut to its bounding box plus a
    one-pixel border; pixels without a composition are missing (NaN)."""
    movies = []
    T, h, w = spectral.shape
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        rows = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, h))
        cols = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, w))
        mask = labels[rows, cols] == k
        c = np.where(mask, spectral.composition[:, rows, cols], np.nan)
        sigma = np.where(mask, spectral.sigma[:, rows, cols], np.nan)
        c[~np.isfinite(sigma) | ~(sigma > 0)] = np.nan
        name = f"{prefix}_{k - 1:03d}"
        try:
            movies.append(Movie(name, mask, c, spectral.time, sigma=sigma, pixel_size_nm=spectral.pixel_size_nm))
        except ValueError as exc:
            raise ValueError(f"particle {name} (rows {rows.start}:{rows.stop}, columns {cols.start}:"
                             f"{cols.stop} of the crop): {str(exc).removeprefix(f'movie {name!r}: ')}") from None
    if not movies:
        raise ValueError("no particle found (lower the thickness SNR threshold or the minimum size)")
    return movies
