"""Image registration by sub-pixel phase correlation, resampling with exact variance, and the common crop.

Shifts follow scikit-image's convention: ``shift`` is the (row, column) displacement that registers an
image with the reference, so ``shift_images(image, shift)`` lies on top of the reference.

:func:`estimate_shifts` is the cross-correlation peak search of Guizar-Sicairos, Thurman and Fienup
(Opt. Lett. 33, 156, 2008), vectorised over many images: one batched FFT for the integer peak, then two
matrix-multiply DFTs of the cross-power spectrum on fine grids around it (to 0.1 and then 0.01 pixel).
It agrees with :func:`skimage.registration.phase_cross_correlation` and is many times faster on thousands
of images, which a movie of stacks has.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.signal.windows import tukey

#: Fine grids of the peak refinement: (spacing, half-width) in pixels of each stage.
REFINE_STAGES = ((0.1, 1.0), (0.01, 0.1))


def _prepare(images: np.ndarray, window: bool) -> np.ndarray:
    """Mean-free images with unmeasured pixels at the median, the level of the bare background that fills
    most fields of view (the mean would draw a step along a strip of missing border that moves from image
    to image), optionally tapered at the borders so that the periodic FFT sees no edge jump."""
    images = np.array(images, dtype=np.float64, ndmin=3)
    finite = np.isfinite(images)
    if not finite.all():
        fill = np.array([[[np.median(im[ok]) if ok.any() else 0.0]] for im, ok in zip(images, finite)])
        images = np.where(finite, images, fill)
    images -= images.mean(axis=(1, 2), keepdims=True)
    if window:
        H, W = images.shape[1:]
        images *= np.outer(tukey(H, 0.3), tukey(W, 0.3))
    return images


def _dft_peak(product: np.ndarray, width: int, centre: np.ndarray, spacing: float, half_width: float) -> np.ndarray:
    """Location of the maximum of the cross-correlation whose half spectrum (real FFT along the last axis,
    of an image ``width`` wide) is ``product`` (N, H, W//2 + 1), sampled on a grid of ``spacing`` around
    ``centre`` (N, 2): the correlation evaluated off the integer lattice by a matrix-multiply DFT."""
    N, H, _ = product.shape
    offsets = np.arange(-half_width, half_width + 0.5 * spacing, spacing)
    ky = scipy.fft.fftfreq(H)  # cycles per pixel
    kx = scipy.fft.rfftfreq(width)
    # The correlation is real: each column of the half spectrum but the first (and the Nyquist one of an
    # even width) stands for itself and its conjugate.
    weight = np.full(kx.size, 2.0)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    ys = centre[:, 0:1] + offsets  # (N, m)
    xs = centre[:, 1:2] + offsets
    Ky = np.exp(2j * np.pi * ys[:, :, None] * ky[None, None, :])                 # (N, m, H)
    Kx = weight * np.exp(2j * np.pi * xs[:, :, None] * kx[None, None, :])        # (N, m, W//2 + 1)
    cc = (Ky @ product @ Kx.transpose(0, 2, 1)).real                             # (N, m, m)
    best = cc.reshape(N, -1).argmax(axis=1)
    iy, ix = np.unravel_index(best, cc.shape[1:])
    return np.stack([ys[np.arange(N), iy], xs[np.arange(N), ix]], axis=1)


def estimate_shifts(images: np.ndarray, reference: np.ndarray, normalization: Optional[str] = None,
                    window: bool = False, workers: int = -1, chunk: int = 64) -> np.ndarray:
    """(N, 2) sub-pixel shifts (to 0.01 pixel) that register each of ``images`` (N, H, W) with ``reference``
    ((H, W), or (N, H, W): one reference per image).

    normalization: None correlates the images themselves (robust to counting noise: every frequency is
    weighted by its power); "phase" whitens the cross-power spectrum (sharper peak, but it amplifies
    noise). NaN pixels are filled with the image mean. ``window`` tapers the borders (for scenes whose
    content crosses the image edges; it costs accuracy when the content moves under the taper).
    """
    images = np.asarray(images)
    reference = np.asarray(reference)
    if images.ndim != 3 or reference.shape[-2:] != images.shape[1:] or (
            reference.ndim == 3 and reference.shape[0] != images.shape[0]):
        raise ValueError(f"images are {images.shape}, the reference {reference.shape}")
    if normalization not in (None, "phase"):
        raise ValueError(f"normalization must be None or 'phase', got {normalization!r}")
    N, H, W = images.shape
    one_ref = reference.ndim == 2
    if one_ref:
        ref_f = scipy.fft.rfft2(_prepare(reference, window), workers=workers)
    shifts = np.empty((N, 2))
    for start in range(0, N, chunk):
        f = scipy.fft.rfft2(_prepare(images[start:start + chunk], window), workers=workers)
        if not one_ref:
            ref_f = scipy.fft.rfft2(_prepare(reference[start:start + chunk], window), workers=workers)
        product = ref_f * f.conj()
        if normalization == "phase":
            product /= np.maximum(np.abs(product), 1e-300)
        cc = scipy.fft.irfft2(product, s=(H, W), workers=workers)
        peak = np.array(np.unravel_index(cc.reshape(len(f), -1).argmax(axis=1), (H, W)), dtype=np.float64).T
        peak[:, 0] = np.where(peak[:, 0] > H // 2, peak[:, 0] - H, peak[:, 0])
        peak[:, 1] = np.where(peak[:, 1] > W // 2, peak[:, 1] - W, peak[:, 1])
        for spacing, half_width in REFINE_STAGES:
            peak = _dft_peak(product, W, peak, spacing, half_width)
        shifts[start:start + chunk] = peak
    return shifts


#: Border padding of the Fourier resampling, against wrap-around.
PAD = 16


#: An output pixel that owes this much of its value (sum of |kernel| weights) to unusable inputs is lost.
BAD_WEIGHT = 0.1


def _kernels(n: int, shifts: np.ndarray) -> np.ndarray:
    """Real periodic band-limited interpolation kernels (m, n) that move content by ``shifts`` (m,) pixels
    along an axis of length ``n``. The Nyquist bin of an even length gets the real part of its phase so that
    the kernel is real: then the 2-D kernel is exactly the product of the two axes' kernels."""
    f = scipy.fft.fftfreq(n)
    ramp = np.exp(-2j * np.pi * f[None, :] * shifts[:, None])
    if n % 2 == 0:
        ramp[:, n // 2] = np.cos(np.pi * shifts)
    return scipy.fft.ifft(ramp, axis=1).real


def _convolve(images: np.ndarray, ky: np.ndarray, kx: np.ndarray, workers: int) -> np.ndarray:
    """Circular convolution of each padded image (m, Hp, Wp) with the separable kernel ky (x) kx."""
    spectrum = scipy.fft.rfft2(images, workers=workers)
    spectrum *= scipy.fft.fft(ky, axis=1)[:, :, None] * scipy.fft.rfft(kx, axis=1)[:, None, :]
    return scipy.fft.irfft2(spectrum, s=images.shape[1:], workers=workers)


def _padded(images: np.ndarray) -> np.ndarray:
    """Images (m, H, W) inside PAD pixels that fall linearly from a smoothed copy of the border to the image
    mean: continuous for the FFT, and all but free of the border's noise (the variance treats the padding
    as noise-free)."""
    fill = images.mean(axis=(1, 2))[:, None, None]
    edge = np.pad(ndimage.gaussian_filter(images, (0, 4, 4), mode="nearest"), ((0, 0), (PAD, PAD), (PAD, PAD)),
                  mode="edge")
    Hp, Wp = edge.shape[1:]
    ry = np.minimum(1.0, np.minimum(np.arange(1, Hp + 1), np.arange(Hp, 0, -1)) / (PAD + 1))
    rx = np.minimum(1.0, np.minimum(np.arange(1, Wp + 1), np.arange(Wp, 0, -1)) / (PAD + 1))
    out = fill + (edge - fill) * np.outer(ry, rx)
    out[:, PAD:-PAD, PAD:-PAD] = images
    return out


def _fill_nearest(images: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Unusable pixels take the value of the nearest usable one (their outputs are dropped anyway; a
    near value keeps the interpolation's slow tails from carrying a wrong one far)."""
    out = images.copy()
    for n in np.flatnonzero(bad.any(axis=(1, 2))):
        if bad[n].all():
            out[n] = 0.0
            continue
        idx = ndimage.distance_transform_edt(bad[n], return_distances=False, return_indices=True)
        out[n] = images[n][tuple(idx)]
    return out


def shift_images(values: np.ndarray, shifts: np.ndarray, variance: Optional[np.ndarray] = None,
                 integer: bool = False, workers: int = -1) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Move each image (N, H, W) by its shift (N, 2): out(y, x) = in(y - sy, x - sx).

    Sub-pixel moves are band-limited (Fourier) interpolation on a padded field: unlike bilinear weights it
    does not blur, so images moved by different fractions stay comparable (a blur that changes from energy
    to energy looks like spectral structure). The variance is convolved with the squared interpolation
    kernel, as independent counting noise requires. With ``integer`` the rounded shift moves values
    untouched. Output pixels whose source lies outside the image, or that owe more than BAD_WEIGHT of
    their value to unusable (NaN) inputs, are NaN."""
    values = np.asarray(values, dtype=np.float64)
    shifts = np.round(shifts) if integer else np.asarray(shifts, dtype=np.float64)
    N, H, W = values.shape
    whole = np.round(shifts).astype(int)
    bad = ~np.isfinite(values)
    if variance is not None:
        bad |= ~np.isfinite(variance)

    def translated(arrays, which):
        return np.stack([_translate(_translate(a, iy, 0), ix, 1) for a, (iy, ix) in zip(arrays, whole[which])])

    fractional = np.any(np.abs(shifts - whole) > 1e-9, axis=1)
    out = np.empty_like(values)
    out_var = None if variance is None else np.empty_like(values)
    plain = np.flatnonzero(~fractional)
    if plain.size:
        out[plain] = translated(values[plain], plain)
        if out_var is not None:
            out_var[plain] = translated(variance[plain], plain)
    idx = np.flatnonzero(fractional)
    if not idx.size:
        return out, out_var
    sub_bad = bad[idx]
    Hp, Wp = H + 2 * PAD, W + 2 * PAD
    ky, kx = _kernels(Hp, shifts[idx, 0]), _kernels(Wp, shifts[idx, 1])
    moved = _convolve(_padded(_fill_nearest(values[idx], sub_bad)), ky, kx, workers)[:, PAD:-PAD, PAD:-PAD]
    pad = ((0, 0), (PAD, PAD), (PAD, PAD))
    lost = _convolve(np.pad(sub_bad.astype(np.float64), pad), np.abs(ky), np.abs(kx), workers)
    lost = lost[:, PAD:-PAD, PAD:-PAD] > BAD_WEIGHT
    # Sources outside the image: out(y) needs in(y - s) with 0 <= y - s <= H - 1.
    ys, xs = np.arange(H), np.arange(W)
    sy, sx = shifts[idx, 0:1], shifts[idx, 1:2]
    lost |= ((ys < sy - 1e-9) | (ys > H - 1 + sy + 1e-9))[:, :, None]
    lost |= ((xs < sx - 1e-9) | (xs > W - 1 + sx + 1e-9))[:, None, :]
    moved[lost] = np.nan
    out[idx] = moved
    if out_var is not None:
        v = np.pad(np.where(sub_bad, 0.0, variance[idx]), pad)
        mv = _convolve(v, ky ** 2, kx ** 2, workers)[:, PAD:-PAD, PAD:-PAD]
        mv[lost] = np.nan
        out_var[idx] = mv
    return out, out_var


def _translate(img: np.ndarray, k: int, axis: int) -> np.ndarray:
    """out[y] = img[y - k] along ``axis``, NaN where y - k falls outside."""
    out = np.full_like(img, np.nan)
    n = img.shape[axis]
    if abs(k) >= n:
        return out
    src = [slice(None)] * 2
    dst = [slice(None)] * 2
    src[axis] = slice(max(0, -k), n - max(0, k))
    dst[axis] = slice(max(0, k), n - max(0, -k))
    out[tuple(dst)] = img[tuple(src)]
    return out


def refine_shifts(od: np.ndarray, shifts: np.ndarray, references: np.ndarray, iterations: int = 2,
                  background: bool = True, prior_sd: float = 0.05, workers: int = -1) -> np.ndarray:
    """Shifts (E, 2) that make the images ``od`` (E, H, W) (optical densities, or minus log intensities)
    consistent with the mixing model OD_e(x) = sum_k mu_k(E_e) x_k(x) + beta(x) + const_e, starting from
    ``shifts`` (within a fraction of a pixel), with zero mean.

    Registration against one mean image is pulled by contrast that changes with energy (a lithium-rich
    region is dark at one peak, light at the other). Here each image is compared with what the others
    predict for its energy: Gauss-Newton on sum_x |P (J(x) - G(x) d)|^2, the images J moved by the current
    shifts, G their spatial gradients, P the projector off the reference spectra (which eliminates the
    amounts x_k(x) exactly) - a Lucas-Kanade step of the spectral model, one (2E x 2E) solve per iteration.

    Some images say little about their own position in this model: below the edge both references are
    flat, and the per-pixel background explains such an image as well. Each shift therefore keeps a
    Gaussian prior of ``prior_sd`` pixels around its starting value (the phase correlation); the misfit is
    weighted by the noise variance estimated from the projected residuals (a maximum a posteriori step).
    """
    E = od.shape[0]
    A = np.asarray(references, dtype=np.float64).T
    if background:
        A = np.hstack([A, np.ones((E, 1))])
    project = np.eye(E) - A @ np.linalg.pinv(A)
    pair = np.block([[project, project], [project, project]])
    s = np.array(shifts, dtype=np.float64)
    s -= s.mean(axis=0)
    start = s.copy()
    for _ in range(iterations):
        J, _ = shift_images(od, s, workers=workers)
        inside = np.all(np.isfinite(J), axis=0)
        inside = ndimage.binary_erosion(inside, iterations=1)
        if inside.sum() < 4 * E:
            break
        J = np.where(np.isfinite(J), J, 0.0)
        J -= J[:, inside].mean(axis=1)[:, None, None]   # a constant per image (ln I0) is no spectral structure
        # Gradients of the model's images (the data projected on the reference spectra pixel by pixel):
        # gradients of the noisy images would shrink every step by the noise power they add to G G^T.
        H, W = J.shape[1:]
        fitted = (J.reshape(E, -1) - project @ J.reshape(E, -1)).reshape(E, H, W)
        gy, gx = np.gradient(fitted, axis=(1, 2))
        G = np.concatenate([gy[:, inside], gx[:, inside]])          # (2E, P)
        R = project @ J[:, inside]
        noise = np.sum(R * R) / max(R.size - A.shape[1] * R.shape[1], 1)
        rhs = np.concatenate([(G[:E] * R).sum(axis=1), (G[E:] * R).sum(axis=1)]) / noise
        rhs += (start - s).T.reshape(-1) / prior_sd ** 2
        curvature = (G @ G.T) * pair / noise + np.eye(2 * E) / prior_sd ** 2
        step = np.linalg.solve(curvature, rhs)
        s += np.stack([step[:E], step[E:]], axis=1)
        # A common shift of all images moves the amounts with them: only relative shifts are determined.
        s -= s.mean(axis=0)
    return s


def common_region(shifts: np.ndarray, shape: Tuple[int, int], integer: bool = False) -> Tuple[int, int, int, int]:
    """(row0, row1, col0, col1), ends exclusive: the pixels that every image shifted by ``shifts`` (N, 2)
    covers. Outside it some energy is missing, and the resampled edges would dominate a PCA."""
    s = np.round(shifts) if integer else np.asarray(shifts, dtype=np.float64)
    # A sub-pixel move loses one more pixel at each border (see shift_images).
    margin = 0 if integer or np.allclose(s, np.round(s)) else 1
    lo = np.maximum(np.ceil(s - 1e-12).max(axis=0) + margin, 0).astype(int)
    hi = np.minimum(np.floor(s + 1e-12).min(axis=0) - margin + np.array(shape), np.array(shape)).astype(int)
    if np.any(hi - lo < 2):
        raise ValueError(f"the images do not overlap after alignment (shifts from {s.min(axis=0)} to "
                         f"{s.max(axis=0)} pixels on {shape[0]}x{shape[1]} images)")
    return int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])
