"""Figures and a text summary of the spectral step, drawn from the ``/spectra`` group of a movie file
written by ``pixelkinetics spectra`` (:func:`pixelkinetics.spectra.write_spectral_movie`):

- ``spectra.png``: reference spectra and the k-means cluster spectra; PCA singular values with the noise
  edge and the estimated number of components;
- ``clusters.png``: cluster maps of the first, middle and last stacks, with the particle outlines;
- ``composition.png``: composition maps and their propagated sigma for the same stacks;
- ``alignment.png``: the shift of every image against energy, and the I0 spectra;
- ``summary.txt``: shifts, masking counts, component estimate and particles.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import matplotlib
import numpy as np

from ..floor.figures import colormap, figure
from .files import read_spectral


def _stacks_shown(T: int) -> List[int]:
    return sorted({0, T // 2, T - 1})


def write_spectra_report(path: "str | os.PathLike", outdir: "str | os.PathLike", dpi: int = 120) -> List[Path]:
    """Write the figures of the spectral step of movie file ``path`` into ``outdir``; returns the paths."""
    s = read_spectral(path)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("spectra.png", _spectra_figure), ("clusters.png", _clusters_figure),
                       ("composition.png", _composition_figure), ("alignment.png", _alignment_figure)):
        fig = draw(s)
        target = out / name
        fig.savefig(target, dpi=dpi)
        written.append(target)
    summary = out / "summary.txt"
    summary.write_text("\n".join(summary_lines(s)) + "\n")
    written.append(summary)
    return written


def summary_lines(s: dict) -> List[str]:
    T, h, w = s["composition"].shape
    E = s["energy"].size
    sh = s["shifts"].reshape(-1, 2)
    pca = s["pca"]
    n_particles = int(s["labels"].max())
    sizes = np.bincount(s["labels"].ravel(), minlength=n_particles + 1)[1:]
    lines = [f"{T} stacks x {E} energies ({s['energy'][0]:g} to {s['energy'][-1]:g} eV), times {s['time'][0]:g} "
             f"to {s['time'][-1]:g} s",
             f"aligned and cropped to {h}x{w} pixels; shifts (row, column) from ({sh[:, 0].min():+.2f}, "
             f"{sh[:, 1].min():+.2f}) to ({sh[:, 0].max():+.2f}, {sh[:, 1].max():+.2f})",
             "masked values (never altered, left out of the fits):"]
    for reason, counts in s["masked"].items():
        lines.append(f"  {reason}: {int(np.sum(counts))}")
    lines += [f"pixels without a spectral fit: {int(np.sum(s['unfitted']))}",
              f"PCA: {int(pca['n_components'])} components above the noise edge {float(pca['noise_edge']):.4g}; "
              f"singular values {', '.join(f'{v:.4g}' for v in pca['singular_values'][:6])}",
              f"references: {', '.join(s['reference_names'])}; composition = "
              f"{s['reference_names'][int(s['lithiated'])]} / ({s['reference_names'][int(s['lithiated'])]} + "
              f"{s['reference_names'][int(s['delithiated'])]})",
              f"particles: {n_particles} ({', '.join(str(int(n)) for n in sizes)} pixels)"]
    inside = np.broadcast_to(s["labels"] > 0, s["sigma"].shape)
    sg = s["sigma"][inside & np.isfinite(s["sigma"])]
    chi = s["reduced_chi2"][inside & np.isfinite(s["reduced_chi2"])]
    if sg.size:
        lines.append(f"on the particles: median sigma of the composition {np.median(sg):.4f}, median reduced "
                     f"chi-square of the spectral fits {np.median(chi):.3f}")
    return lines


def _spectra_figure(s: dict):
    fig = figure((11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    e = s["energy"]
    for name, ref in zip(s["reference_names"], s["references"]):
        ax1.plot(e, ref / np.abs(ref).max(), lw=2, label=f"reference {name}")
    for k, spec in enumerate(s["cluster_spectra"], start=1):
        ax1.plot(e, spec, ls="--", label=f"cluster {k}")
    ax1.set_xlabel("energy (eV)")
    ax1.set_ylabel("optical density (normalised)")
    ax1.legend(fontsize=8)
    ax1.set_title("reference and cluster spectra")
    pca = s["pca"]
    sv = pca["singular_values"][:20]
    ax2.semilogy(np.arange(1, sv.size + 1), sv, "o-")
    ax2.axhline(float(pca["noise_edge"]), color="k", ls=":", label="noise edge")
    ax2.set_xlabel("component")
    ax2.set_ylabel("singular value (noise-scaled)")
    ax2.set_title(f"PCA: {int(pca['n_components'])} components above the noise")
    ax2.legend()
    return fig


def _outline(ax, labels):
    ax.contour(labels > 0, levels=[0.5], colors="w", linewidths=0.6)


def _clusters_figure(s: dict):
    shown = _stacks_shown(s["clusters"].shape[0])
    fig = figure((3.6 * len(shown), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    k = int(s["cluster_spectra"].shape[0])
    cmap = matplotlib.colormaps["tab10"].resampled(k + 1)
    for ax, t in zip(axes, shown):
        im = ax.imshow(s["clusters"][t], cmap=cmap, vmin=-0.5, vmax=k + 0.5, interpolation="nearest")
        _outline(ax, s["labels"])
        ax.set_title(f"clusters, t = {s['time'][t]:g} s")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, ticks=range(k + 1), label="cluster (0: thin or empty)")
    return fig


def _composition_figure(s: dict):
    shown = _stacks_shown(s["composition"].shape[0])
    fig = figure((3.6 * len(shown), 6.6))
    axes = fig.subplots(2, len(shown), squeeze=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        solid = s["amount"] > 3 * s["amount_sd"]
    c_map, s_map = colormap("viridis"), colormap("magma")
    sg = s["sigma"][solid & np.isfinite(s["sigma"])]
    top = float(np.percentile(sg, 95)) if sg.size else 0.1
    for col, t in enumerate(shown):
        im_c = axes[0, col].imshow(np.where(solid[t], s["composition"][t], np.nan), cmap=c_map, vmin=0, vmax=1,
                                   interpolation="nearest")
        axes[0, col].set_title(f"composition, t = {s['time'][t]:g} s")
        im_s = axes[1, col].imshow(np.where(solid[t], s["sigma"][t], np.nan), cmap=s_map, vmin=0, vmax=top,
                                   interpolation="nearest")
        axes[1, col].set_title("sigma of the composition")
        for ax in axes[:, col]:
            _outline(ax, s["labels"])
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im_c, ax=axes[0].tolist(), label="lithium fraction c")
    fig.colorbar(im_s, ax=axes[1].tolist(), label="sigma (grey: amount < 3 sd)")
    return fig


def _alignment_figure(s: dict):
    fig = figure((11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    e = s["energy"]
    cmap = matplotlib.colormaps["viridis"]
    T = s["shifts"].shape[0]
    for t in range(T):
        colour = cmap(t / max(T - 1, 1))
        ax1.plot(e, s["shifts"][t, :, 0], color=colour, lw=1)
        ax1.plot(e, s["shifts"][t, :, 1], color=colour, lw=1, ls="--")
        ax2.plot(e, s["i0"][t], color=colour, lw=1)
    ax1.set_xlabel("energy (eV)")
    ax1.set_ylabel("shift (pixels): rows solid, columns dashed")
    ax1.set_title("alignment (colour: time)")
    ax2.set_xlabel("energy (eV)")
    ax2.set_ylabel("I0 (counts per pixel)")
    ax2.set_title("incident flux")
    return fig
