"""Figures and a summary of a strain fit, drawn from a results file of ``pixelkinetics strain``:

- ``vegard.png``: measured strain along each crystal axis against composition for every pixel (reference
  lattice divided out), with the eigenstrain law of the elastic fit (the stress-free strain; the
  measured cloud is the elastic response to it), the naive pixel regression and the truth where known;
- ``strain_<particle>.png``: measured, predicted and residual maps of every strain component, and the
  composition, for each particle (held-out particles too);
- ``stiffness.png``: the loss of the stiffness-ratio fit per L-BFGS iteration (when fitted);
- ``summary.txt``: the law with its uncertainty by source, stiffness ratios and residuals.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List

import numpy as np

from ..floor.figures import figure, safe_name, show_map
from .elastic import COMPONENTS, basis, undo_reference
from .files import read_strain_results
from .vegard import along_axes


def write_strain_report(path: "str | os.PathLike", outdir: "str | os.PathLike", dpi: int = 110,
                        max_particles: int = 8) -> List[Path]:
    """Write the figures of strain results file ``path`` into ``outdir``; returns the paths written."""
    r = read_strain_results(path)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        target = out / name
        fig.savefig(target, dpi=dpi)
        written.append(target)

    save(_vegard_figure(r), "vegard.png")
    shown = [(group, name) for group in ("particles", "held_out") for name in r.get(group, {}) if name != "attrs"]
    for group, name in shown[:max_particles]:
        save(_maps_figure(name, r[group][name], r["vegard"]["attrs"]["sigma"], group == "held_out"),
             f"strain_{safe_name(name)}.png")
    if r["stiffness"]["attrs"].get("fitted"):
        save(_stiffness_figure(r["stiffness"]), "stiffness.png")
    summary = out / "summary.txt"
    summary.write_text("\n".join(summary_lines(r)) + "\n")
    written.append(summary)
    return written


def _vegard_figure(r: dict):
    v = r["vegard"]
    angle = np.deg2rad(v["attrs"]["angle_deg"])
    beta, sd = v["beta"], v["beta_sd"]
    truth = r.get("truth", {}).get("attrs", {})
    fig = figure((11, 4.6))
    axes = fig.subplots(1, 2)
    particles = {k: p for k, p in r["particles"].items() if k != "attrs"}
    for axis, ax in enumerate(axes):
        cs, es, naive = [], [], []
        for p in particles.values():
            mask = p["mask"].astype(bool)
            offsets = p["offsets"]
            reference = -np.array([*offsets[:3], np.mean(offsets[3:])])  # the reference lattice's strain
            along = along_axes(undo_reference(p["measured"][:, mask].T, reference), angle)[:, axis]
            ok = np.isfinite(along)
            cs.append(p["composition"][mask][ok])
            es.append(along[ok])
            naive.append(p["naive_slope"][axis])
        c, e = np.concatenate(cs), np.concatenate(es)
        ax.hexbin(c, e, gridsize=60, bins="log", cmap="Greys", mincnt=1)
        grid = np.linspace(np.nanmin(c), np.nanmax(c), 50)
        centre = float(np.mean(e))  # both lines through the data's centre: offsets are not the law's
        order = beta.shape[0]
        law = (basis(grid, order) - basis(c, order).mean(axis=0)) @ beta[:, axis]
        ax.plot(grid, centre + law, color="C3", lw=2,
                label=f"eigenstrain law, elastic fit: beta_1 = {beta[0, axis]:+.5f} +- {sd[0, axis]:.1e}")
        slope = float(np.mean(naive))
        ax.plot(grid, centre + slope * (grid - c.mean()), color="C0", lw=2, ls="--",
                label=f"naive pixel regression (mean slope of the particles): {slope:+.4f}")
        key = f"misfit_{axis + 1}"
        if key in truth:
            ax.plot(grid, centre + truth[key] * (grid - c.mean()), color="k", lw=1, ls=":",
                    label=f"truth: {truth[key]:+.4f}")
        ax.set_xlabel("composition c")
        ax.set_ylabel(f"strain along crystal axis {axis + 1} (offsets removed)")
        ax.set_title(f"crystal axis {axis + 1}: {len(particles)} particle(s), {c.size} pixels")
        ax.legend(loc="best", fontsize=8)
    return fig


def _maps_figure(name: str, p: dict, sigma: float, held_out: bool):
    measured, predicted, residual = p["measured"], p["predicted"], p["residual"]
    mask = p["mask"].astype(bool)
    rows = [k for k in range(4) if np.isfinite(measured[k][mask]).any()]
    fig = figure((13, 2.9 * len(rows)))
    axes = np.atleast_2d(fig.subplots(len(rows), 4))
    for i, k in enumerate(rows):
        values = np.concatenate([measured[k][mask], predicted[k][mask]])
        low, high = np.nanpercentile(values, [1, 99])
        for j, (title, data) in enumerate((("measured", measured), ("predicted", predicted))):
            image = show_map(axes[i, j], data[k], mask, "RdBu_r", low, high)
            axes[i, j].set_title(f"{COMPONENTS[k]} {title}", fontsize=9)
        fig.colorbar(image, ax=axes[i, :2], shrink=0.8)
        rms = float(np.sqrt(np.nanmean(residual[k][mask] ** 2)))
        image = show_map(axes[i, 2], residual[k], mask, "PuOr", -3 * sigma, 3 * sigma)
        axes[i, 2].set_title(f"residual (rms {rms:.2g}, sigma {sigma:.2g})", fontsize=9)
        fig.colorbar(image, ax=axes[i, 2], shrink=0.8)
        if i == 0:
            image = show_map(axes[i, 3], p["composition"], mask, "viridis", 0, 1)
            axes[i, 3].set_title("composition", fontsize=9)
            fig.colorbar(image, ax=axes[i, 3], shrink=0.8)
        else:
            axes[i, 3].set_axis_off()
    kind = "held out: predicted with the learned law, offsets fitted" if held_out else "fitted"
    fig.suptitle(f"{name} ({kind}; pixel {p['attrs']['pixel_size_nm']:g} nm)")
    return fig


def _stiffness_figure(s: dict):
    fig = figure((5.5, 3.8))
    ax = fig.subplots()
    history = np.asarray(s["loss_history"])
    if history.size:
        ax.semilogy(np.arange(1, history.size + 1), history - history.min() + 1e-3 * max(history.min(), 1),
                    marker="o")
    ax.set_xlabel("L-BFGS iteration")
    ax.set_ylabel("chi2/2 - final (+ small floor)")
    ratios = ", ".join(f"{k} {s['attrs'][k]:.3f}+-{s['attrs'][k + ' sd']:.3f}" for k in ("Q22/Q11", "Q12/Q11",
                                                                                          "Q66/Q11"))
    ax.set_title(ratios, fontsize=8)
    return fig


def summary_lines(r: dict) -> List[str]:
    v, a = r["vegard"], r["vegard"]["attrs"]
    truth = r.get("truth", {}).get("attrs", {})
    lines = [f"strain fit of {a.get('data', '?')}: Vegard law of order {a['order']} ({a['basis']})",
             f"  {a['n_obs']} strain values, sigma {a['sigma']:.3g}, reduced chi2 {a['reduced_chi2']:.4f}, "
             f"crystal axis 1 at {a['angle_deg']:g} deg from image x"]
    beta, sd = v["beta"], v["beta_sd"]
    for k in range(beta.shape[0]):
        for axis in range(2):
            line = f"  beta_{k + 1} axis {axis + 1}: {beta[k, axis]:+.6f} +- {sd[k, axis]:.6f}"
            key = f"misfit_{axis + 1}"
            if k == 0 and key in truth:
                line += f"   (truth {truth[key]:+.6f}, z = {(beta[k, axis] - truth[key]) / sd[k, axis]:+.2f})"
            lines.append(line)
    if "composition_bias_removed" in v:
        lines.append(f"  composition sigma: redrawn compositions removed a bias of "
                     f"{np.round(v['composition_bias_removed'][0], 7).tolist()} from beta_1")
    for key in v:
        if key.startswith("covariance_"):
            part_sd = np.sqrt(np.diag(v[key]))[:2]
            lines.append(f"  sd of beta_1 from {key[len('covariance_'):]}: {part_sd.round(7).tolist()}")
    s = r["stiffness"]
    Q = s["Q"] / s["Q"][0, 0]
    if s["attrs"].get("fitted"):
        lines.append(f"stiffness ratios fitted ({s['attrs']['message']}, {s['attrs']['iterations']} iterations):")
        for key in ("Q22/Q11", "Q12/Q11", "Q66/Q11"):
            line = f"  {key} = {s['attrs'][key]:.4f} +- {s['attrs'][key + ' sd']:.4f}"
            if key in truth:
                line += f"   (truth {truth[key]:.4f})"
            lines.append(line)
    else:
        lines.append(f"stiffness (given) ratios Q22/Q11 {Q[1, 1]:.4f}, Q12/Q11 {Q[0, 1]:.4f}, Q66/Q11 {Q[2, 2]:.4f}")
    lines.append("particles: naive pixel-regression slopes (axis 1, axis 2) beside the elastic beta_1, residual rms")
    for group in ("particles", "held_out"):
        for name, p in r.get(group, {}).items():
            if name == "attrs":
                continue
            rms = float(np.sqrt(np.nanmean(p["residual"][:, p["mask"].astype(bool)] ** 2)))
            tag = " (held out)" if group == "held_out" else ""
            lines.append(f"  {name}{tag}: naive {np.round(p['naive_slope'], 5).tolist()}, residual rms {rms:.3g}")
    return lines
