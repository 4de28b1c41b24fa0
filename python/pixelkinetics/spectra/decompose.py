"""Principal components of OD spectra with a noise-calibrated component count, and k-means clusters.

PCA works on the pixel-by-energy OD matrix scaled so that its counting noise is about 1 everywhere:
with var(OD_pe) ~ r_p s_e (a pixel factor times an energy factor, which keeps the rank of the signal),
Y = OD / sqrt(r_p s_e). Pure noise then gives singular values below about sqrt(max column sum of the
scaled variances) + sqrt(max row sum) (the sqrt(P) + sqrt(E) edge of Marchenko and Pastur for unit
variance); every singular value above that edge carries a spectrum the data resolve. No mean is
subtracted: the mixing model OD = sum_k x_k mu_k has as many components as phases.

Clusters: k-means (scikit-learn) on the pixels' scores on the resolved components, each pixel's score
vector normalised to unit length so that clusters group spectral shapes (compositions), not thicknesses.
Pixels with too little absorption to have a shape are cluster 0 ("thin or empty").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.cluster import KMeans

#: A singular value counts as signal when it exceeds the noise edge by this factor.
EDGE_MARGIN = 1.1
#: Fewest OD signal-to-noise (weighted mean OD over its standard deviation) of a clustered pixel.
MIN_CLUSTER_SNR = 20.0


@dataclass
class Decomposition:
    """singular_values: (r,) of the noise-scaled OD matrix; noise_edge: the largest singular value noise
    alone would give; n_components: how many exceed it (x EDGE_MARGIN); components: (r, E) right singular
    vectors in OD units (unit norm, largest entry positive); energy_scale: (E,) the energy factor s_e."""

    singular_values: np.ndarray
    noise_edge: float
    n_components: int
    components: np.ndarray
    energy_scale: np.ndarray
    n_pixels: int

    def scores(self, od_rows: np.ndarray, n: Optional[int] = None) -> np.ndarray:
        """Least-squares coordinates (P, n) of OD spectra (P, E) on the first ``n`` components."""
        basis = self.components[: n or max(self.n_components, 1)]
        return np.linalg.lstsq(basis.T, od_rows.T, rcond=None)[0].T


def _complete_rows(od_rows: np.ndarray, var_rows: np.ndarray):
    keep = np.all(np.isfinite(od_rows) & np.isfinite(var_rows) & (var_rows > 0), axis=1)
    return od_rows[keep], var_rows[keep]


def pca(od_rows: np.ndarray, var_rows: np.ndarray) -> Decomposition:
    """PCA of OD spectra (P, E) with their variances; rows with a masked energy are left out."""
    X, V = _complete_rows(np.asarray(od_rows, dtype=np.float64), np.asarray(var_rows, dtype=np.float64))
    P, E = X.shape
    if P < E:
        raise ValueError(f"PCA needs at least as many complete pixels as energies ({E}), got {P}")
    r = V.mean(axis=1)
    s = (V / r[:, None]).mean(axis=0)
    scale = np.sqrt(r[:, None] * s[None, :])
    Y = X / scale
    scaled_var = V / scale ** 2
    edge = float(np.sqrt(scaled_var.sum(axis=0).max()) + np.sqrt(scaled_var.sum(axis=1).max()))
    # The E x E Gram matrix: cheaper than an SVD of the tall matrix and exact for E << P.
    eigval, eigvec = np.linalg.eigh(Y.T @ Y)
    order = np.argsort(eigval)[::-1]
    sv = np.sqrt(np.clip(eigval[order], 0, None))
    vectors = eigvec[:, order].T * np.sqrt(s)[None, :]   # back to OD units
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flip = np.sign(vectors[np.arange(E), np.argmax(np.abs(vectors), axis=1)])
    vectors *= flip[:, None]
    n = int(np.sum(sv > EDGE_MARGIN * edge))
    return Decomposition(singular_values=sv, noise_edge=edge, n_components=n, components=vectors,
                         energy_scale=s, n_pixels=P)


def od_snr(od_rows: np.ndarray, var_rows: np.ndarray) -> np.ndarray:
    """Inverse-variance weighted mean OD of each spectrum over its standard deviation."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(np.isfinite(od_rows) & np.isfinite(var_rows) & (var_rows > 0), 1.0 / var_rows, 0.0)
        num = np.nansum(np.where(w > 0, od_rows, 0.0) * w, axis=1)
        return num / np.sqrt(w.sum(axis=1))


@dataclass
class Clusters:
    """A k-means model of spectral shapes: ``predict`` labels spectra 1..k, 0 for thin or incomplete
    pixels; spectra: (k, E) mean OD spectrum of each cluster's pixels, normalised to unit maximum."""

    model: KMeans
    decomposition: Decomposition
    n_components: int
    spectra: np.ndarray
    min_snr: float = MIN_CLUSTER_SNR

    def features(self, od_rows: np.ndarray) -> np.ndarray:
        f = self.decomposition.scores(np.nan_to_num(od_rows), self.n_components)
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-300)

    def eligible(self, od_rows: np.ndarray, var_rows: np.ndarray) -> np.ndarray:
        complete = np.all(np.isfinite(od_rows) & np.isfinite(var_rows), axis=1)
        return complete & (od_snr(od_rows, var_rows) > self.min_snr)

    def predict(self, od_rows: np.ndarray, var_rows: np.ndarray) -> np.ndarray:
        labels = np.zeros(od_rows.shape[0], dtype=np.int16)
        ok = self.eligible(od_rows, var_rows)
        if ok.any():
            # Nearest centre by hand: KMeans.predict changes the process's BLAS thread limits, which is not
            # safe from several threads at once.
            f = self.features(od_rows[ok])
            centres = self.model.cluster_centers_
            d2 = (f * f).sum(axis=1)[:, None] - 2 * f @ centres.T + (centres * centres).sum(axis=1)[None, :]
            labels[ok] = np.argmin(d2, axis=1) + 1
        return labels


def cluster(od_rows: np.ndarray, var_rows: np.ndarray, decomposition: Decomposition, n_clusters: int = 3,
            n_components: Optional[int] = None, min_snr: float = MIN_CLUSTER_SNR, seed: int = 0,
            max_samples: int = 50_000) -> Clusters:
    """Fit k-means with ``n_clusters`` on the shapes of the spectra that absorb clearly (OD SNR above
    ``min_snr``), using a random subset of at most ``max_samples`` of them."""
    n_comp = max(n_components or decomposition.n_components, 2)
    proto = Clusters(model=None, decomposition=decomposition, n_components=n_comp, spectra=np.empty(0),
                     min_snr=min_snr)
    ok = proto.eligible(od_rows, var_rows)
    idx = np.flatnonzero(ok)
    if idx.size < n_clusters:
        raise ValueError(f"only {idx.size} pixels absorb clearly enough (OD SNR > {min_snr}) for "
                         f"{n_clusters} clusters")
    rng = np.random.default_rng(seed)
    if idx.size > max_samples:
        idx = np.sort(rng.choice(idx, max_samples, replace=False))
    model = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(proto.features(od_rows[idx]))
    spectra = np.stack([od_rows[idx][model.labels_ == k].mean(axis=0) for k in range(n_clusters)])
    spectra /= np.maximum(np.abs(spectra).max(axis=1, keepdims=True), 1e-300)
    return Clusters(model=model, decomposition=decomposition, n_components=n_comp, spectra=spectra,
                    min_snr=min_snr)
