"""Synthetic STXM stacks with a known truth: model Fe L3 reference spectra, composition and thickness maps,
sample drift and Poisson counts, all generated in code."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from .stack import Stack

#: Names of the two model references, lithiated first.
REFERENCE_NAMES = ("LiFePO4", "FePO4")


def default_energies(n: int = 50) -> np.ndarray:
    """``n`` energies (eV) over the Fe L2,3 edges, a third of them across the L3 peaks (706 to 712 eV) as a
    beamline scientist would space them."""
    n_fine = n // 3
    n_pre = max(2, (n - n_fine) // 4)
    n_post = n - n_fine - n_pre
    pre = np.linspace(700.0, 706.0, n_pre, endpoint=False)
    fine = np.linspace(706.0, 712.0, n_fine, endpoint=False)
    post = np.linspace(712.0, 730.0, n_post)
    return np.concatenate([pre, fine, post])


def _peak(energy, centre, width, height):
    return height * np.exp(-0.5 * ((energy - centre) / width) ** 2)


def _edge(energy, centre, width, height):
    return height * (0.5 + np.arctan((energy - centre) / width) / np.pi)


def fe_l3_references(energy: np.ndarray) -> np.ndarray:
    """(2, E) model absorption spectra (OD per unit thickness) of LiFePO4 (Fe2+: main L3 peak at 708 eV)
    and FePO4 (Fe3+: main L3 peak at 710 eV), with L3 and L2 edge steps and a sloping pre-edge."""
    e = np.asarray(energy, dtype=np.float64)
    common = 0.08 + 0.002 * (e - 700.0) + _edge(e, 709.0, 0.6, 0.35) + _edge(e, 722.0, 0.6, 0.15)
    lfp = common + _peak(e, 708.0, 0.55, 1.00) + _peak(e, 710.2, 0.7, 0.25) + _peak(e, 721.0, 0.9, 0.30)
    fp = common + _peak(e, 708.1, 0.55, 0.20) + _peak(e, 710.0, 0.6, 0.95) + _peak(e, 722.8, 0.9, 0.35)
    return np.stack([lfp, fp])


def dome(mask: np.ndarray, edge: float = 0.3) -> np.ndarray:
    """A thickness profile on ``mask``: ``edge`` at the rim rising to 1 in the middle (a platelet seen from
    above), 0 outside."""
    depth = ndimage.distance_transform_edt(mask)
    if depth.max() <= 0:
        return depth
    return np.where(mask, edge + (1 - edge) * np.sqrt(depth / depth.max()), 0.0)


def drift_shifts(rng: np.random.Generator, n: int, step: float = 0.15, offset: Sequence[float] = (0.0, 0.0)
                 ) -> np.ndarray:
    """(n, 2) sample drift over a stack: a random walk of ``step`` pixels per energy with zero mean, plus
    ``offset`` (a drift between time points)."""
    walk = np.cumsum(rng.normal(0.0, step, (n, 2)), axis=0)
    return walk - walk.mean(axis=0) + np.asarray(offset, dtype=np.float64)


def _move(image: np.ndarray, d: np.ndarray, pad: int) -> np.ndarray:
    """``image`` with its content moved by ``d`` pixels (band-limited Fourier shift on a zero-padded field)."""
    if not np.any(d):
        return image
    big = np.pad(image, pad)
    moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(big), d)).real
    return moved[pad:-pad, pad:-pad]


def synthetic_stack(composition: np.ndarray, amount: np.ndarray, energy: np.ndarray,
                    references: Optional[np.ndarray] = None, i0_rate: "float | np.ndarray" = 2.0e6,
                    dwell: float = 2e-3, dark_rate: float = 0.0, drift: Optional[np.ndarray] = None,
                    background: float = 0.0, psf: float = 0.0, time: Optional[float] = None,
                    rng: "np.random.Generator | int" = 0) -> Stack:
    """A stack of Poisson counts of a sample with lithium fraction ``composition`` (H, W) and total amount
    ``amount`` (H, W) of the two phases (OD units of the references): OD(E) = amount (c mu_Li(E) +
    (1 - c) mu_FP(E)) + background, blurred by a Gaussian probe of ``psf`` pixels (standard deviation),
    each energy's image moved by ``drift`` (E, 2) pixels, counted with I0 = ``i0_rate`` x ``dwell``
    photons per pixel plus dark counts."""
    rng = np.random.default_rng(rng)
    energy = np.asarray(energy, dtype=np.float64)
    refs = fe_l3_references(energy) if references is None else np.asarray(references, dtype=np.float64)
    c = np.nan_to_num(np.asarray(composition, dtype=np.float64))
    t = np.asarray(amount, dtype=np.float64)
    a, b = t * c, t * (1 - c)
    if psf > 0:
        a, b = ndimage.gaussian_filter(a, psf), ndimage.gaussian_filter(b, psf)
    drift = np.zeros((energy.size, 2)) if drift is None else np.asarray(drift, dtype=np.float64)
    pad = int(np.ceil(np.abs(drift).max())) + 8
    i0 = np.broadcast_to(np.asarray(i0_rate, dtype=np.float64), energy.shape) * dwell
    counts = np.empty((energy.size,) + t.shape)
    for e in range(energy.size):
        od = _move(refs[0, e] * a + refs[1, e] * b, drift[e], pad) + background
        counts[e] = rng.poisson(i0[e] * np.exp(-od)) + rng.poisson(dark_rate * dwell, t.shape)
    return Stack(counts, energy, dwell=np.full(energy.size, dwell), time=time, dark=dark_rate,
                 source="synthetic stack")


def particle_scene(shape: Tuple[int, int], masks: Sequence[np.ndarray], rng: "np.random.Generator | int" = 0,
                   margin: int = 4) -> Tuple[np.ndarray, list]:
    """Place particle ``masks`` without overlap in a field of view of ``shape``: (label image, list of
    (row, col) corners); label k + 1 marks particle k."""
    rng = np.random.default_rng(rng)
    labels = np.zeros(shape, dtype=np.int32)
    corners = []
    for k, m in enumerate(masks):
        h, w = m.shape
        for _ in range(2000):
            r = int(rng.integers(margin, shape[0] - h - margin + 1))
            q = int(rng.integers(margin, shape[1] - w - margin + 1))
            window = labels[r - margin:r + h + margin, q - margin:q + w + margin]
            if not window.any():
                labels[r:r + h, q:q + w][m] = k + 1
                corners.append((r, q))
                break
        else:
            raise ValueError(f"particle {k} ({h}x{w}) does not fit into the {shape} field of view")
    return labels, corners


def movie_stacks(masks: Sequence[np.ndarray], concentration: Sequence[np.ndarray], time: np.ndarray,
                 shape: Optional[Tuple[int, int]] = None, n_energies: int = 50, i0_rate: float = 2.0e6,
                 dwell: float = 2e-3, drift_step: float = 0.1, time_drift: float = 3.0, psf: float = 0.5,
                 rng: "np.random.Generator | int" = 0):
    """One stack per frame of particle movies: the particles (``masks`` with their (T, h, w)
    ``concentration`` movies) are placed in one field of view with dome-shaped thickness, each stack drifts
    by a random walk of ``drift_step`` pixels per energy and by up to ``time_drift`` pixels between frames.

    Returns (stacks, label image of the placed particles (label k + 1 = particle k), their corners,
    the (T, H, W) composition truth, the amount map).
    """
    rng = np.random.default_rng(rng)
    if shape is None:
        side = int(np.ceil(np.sqrt(sum(m.size for m in masks) * 3.0))) + 16
        shape = (side, side)
    labels, corners = particle_scene(shape, masks, rng)
    amount = np.zeros(shape)
    T = len(time)
    composition = np.full((T,) + tuple(shape), 0.5)
    for m, c, (r, q) in zip(masks, concentration, corners):
        h, w = m.shape
        amount[r:r + h, q:q + w] += dome(m, 0.4)
        for f in range(T):
            composition[f, r:r + h, q:q + w][m] = c[f][m]
    energy = default_energies(n_energies)
    stacks = []
    for f in range(T):
        offset = (0.0, 0.0) if f == 0 else rng.uniform(-time_drift, time_drift, 2)
        drift = drift_shifts(rng, energy.size, drift_step, offset)
        stack = synthetic_stack(composition[f], amount, energy, i0_rate=i0_rate, dwell=dwell, drift=drift, psf=psf,
                                time=float(time[f]), rng=rng)
        stack.source = f"synthetic stack {f}"
        stacks.append(stack)
    return stacks, labels, corners, composition, amount
