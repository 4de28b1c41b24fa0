"""Diagnostic figures and a text summary of a fit (``pixelkinetics report``).

:func:`write_report` turns :class:`~pixelkinetics.kinetics.results.Results` (a fit in memory, or a results
file read back) into the figures a battery scientist looks at first, plus ``summary.txt``:

- ``frames_<particle>.png``: observed, fitted and residual frames of the largest particles;
- ``theta_vs_carbon.png``: the learned log-rate maps beside the carbon-coating thickness, their pooled
  correlation and, for synthetic data, the recovery of the true maps;
- ``theta_sd.png`` (after ``pixelkinetics uq``): the theta maps beside their posterior standard deviations;
- ``residuals.png``: normalised residuals against the standard normal, and the RMS residual per frame;
- ``kinetics.png``: the learned exchange current k0 j0(c) and homogeneous chemical potential mu_h(c), with
  their 95% bands after ``pixelkinetics uq``;
- ``history.png``: loss and gradient norm of the optimiser per iteration.

Residuals follow the fit's misfit: frames >= 1, plus frame 0 when ``fit["fit_initial"]``, at observed
pixels, scaled by the per-pixel ``sigma`` of a particle when it has one and by ``fit["sigma"]`` otherwise.

Figures are drawn on bare :class:`matplotlib.figure.Figure` objects with the Agg canvas: no display, no
pyplot state, and nothing left open once a figure is saved.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..floor.figures import colormap, figure, note, safe_name, show_map
from ..floor.units import time_unit
from .observations import first_fitted_frame
from .params import Params
from .results import FittedMovie, Results
from .truth import format_error, pearson, pooled, theta_correlation, true_value

#: Most frames (columns) drawn per particle; evenly spaced, the first and last included.
MAX_FRAMES = 8
#: The residual colour scale of the frame figures spans +- this many noise levels.
RESIDUAL_RANGE_SIGMA = 3.0
#: The normalised-residual histogram spans +- this many noise levels.
HISTOGRAM_RANGE_SIGMA = 5.0
#: Concentrations at which the kinetic curves are drawn.
C_GRID = np.linspace(0.01, 0.99, 197)

_CONCENTRATION_CMAP = colormap("viridis")
_RESIDUAL_CMAP = colormap("RdBu_r")
_THETA_CMAP = colormap("magma")
_CARBON_CMAP = colormap("cividis")


def write_report(results: Results, outdir: "str | os.PathLike", max_particles: int = 6,
                 dpi: int = 120) -> List[Path]:
    """Write the report figures and ``summary.txt`` into ``outdir`` (created if missing).

    Frame figures are drawn for the ``max_particles`` largest particles (most mask pixels; ties keep the
    file order); the same particles' maps appear in ``theta_vs_carbon.png``, whose scatter plots pool all
    particles. ``theta_vs_carbon.png`` is skipped when no particle has a carbon-thickness map.
    Returns the paths written, in the order listed in the module docstring, ``summary.txt`` last.
    """
    if max_particles < 0:
        raise ValueError(f"max_particles must be >= 0, got {max_particles}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    shown = _largest(results.particles, max_particles)
    sigma = float(results.fit["sigma"])
    fit_initial = bool(results.fit.get("fit_initial", False))

    figures: List[Tuple[str, Optional[Figure]]] = [
        (f"frames_{safe_name(name)}.png", _frames_figure(name, results.particles[name], sigma, fit_initial))
        for name in shown]
    figures += [
        ("theta_vs_carbon.png", _theta_carbon_figure(results, shown)),
        ("theta_sd.png", _theta_sd_figure(results, shown)),
        ("residuals.png", _residuals_figure(results)),
        ("kinetics.png", _kinetics_figure(results)),
        ("history.png", _history_figure(results.history)),
    ]
    written = []
    for filename, fig in figures:
        if fig is not None:
            fig.savefig(out / filename, dpi=dpi)
            written.append(out / filename)
    summary = out / "summary.txt"
    summary.write_text(_summary_text(results), encoding="utf-8")
    written.append(summary)
    return written


# -- figures ----------------------------------------------------------------------------------------------
def _frames_figure(name: str, p: FittedMovie, sigma: float, fit_initial: bool) -> Figure:
    """Observed (top), fitted (middle) and fitted - observed (bottom) frames of one particle.

    Read off where and when the model's lithiation front runs ahead of or behind the data. Concentrations
    share the 0..1 scale; residuals saturate at +-3 sigma, so a saturated patch is misfit well beyond the
    noise. Grey pixels are off the particle or not measured. Frame 0 is marked when it is not in the fit
    (it then only sets the initial state).
    """
    frames = _frame_indices(len(p.time))
    fig = figure((1.5 * len(frames) + 1.6, 5.4))
    axes = fig.subplots(3, len(frames), squeeze=False)
    limit = RESIDUAL_RANGE_SIGMA * sigma
    rows = [("observed", p.observed, _CONCENTRATION_CMAP, 0.0, 1.0),
            ("fitted", p.fitted, _CONCENTRATION_CMAP, 0.0, 1.0),
            ("fitted − observed", p.fitted - p.observed, _RESIDUAL_CMAP, -limit, limit)]
    images = []
    for row, (label, movie, cmap, low, high) in enumerate(rows):
        images += [show_map(axes[row, col], movie[f], p.mask, cmap, low, high) for col, f in enumerate(frames)]
        axes[row, 0].set_ylabel(label)
    fig.colorbar(images[0], ax=axes[:2, :], shrink=0.9, label="concentration c")
    fig.colorbar(images[-1], ax=axes[2, :], shrink=0.9, label=f"residual (±{RESIDUAL_RANGE_SIGMA:g}σ)")
    scale, unit = time_unit(p.time)
    for col, f in enumerate(frames):
        label = f"t = {p.time[f] / scale:.3g} {unit}"
        if f < first_fitted_frame(fit_initial):  # it only sets the initial state
            label += "\n(not fitted)"
        axes[0, col].set_title(label, fontsize=9)
    fig.suptitle(f"{name}: {int(p.mask.sum())} pixels, {len(p.time)} frames")
    return fig


def _theta_carbon_figure(results: Results, shown: Sequence[str]) -> Optional[Figure]:
    """The learned log-rate map theta beside the carbon-coating thickness of each shown particle, and the
    pooled scatter of theta against thickness over all particles' pixels.

    Read off whether fast-reacting regions sit where the carbon coating is thick: the title gives the
    Pearson r with each particle's mean removed (the pattern within particles) and the raw r (which also
    counts particle-to-particle offsets). For synthetic data a second scatter shows fitted against true
    theta (means removed; the diagonal is perfect recovery). None when no particle has a thickness map.
    """
    particles = results.particles
    carbon = {n: p.carbon_thickness for n, p in particles.items() if p.carbon_thickness is not None}
    if not carbon:
        return None
    theta = {n: p.theta for n, p in particles.items()}
    # (x label, x maps, particles pooled, draw the diagonal y = x)
    scatters = [("carbon thickness", carbon, {n: particles[n].mask for n in carbon}, False)]
    if results.truth is not None and results.truth[1]:
        true_theta = results.truth[1]
        scatters.append((r"true $\theta$", true_theta, {n: p.mask for n, p in particles.items() if n in true_theta},
                         True))
    maps = [n for n in shown if n in carbon]

    n_rows = max(len(maps), len(scatters))
    n_cols = 3 if maps else 1
    fig = figure((3.2 * n_cols + 0.8, max(2.6 * n_rows, 3.6)))
    grid = fig.add_gridspec(n_rows, n_cols)
    for row, name in enumerate(maps):
        mask = particles[name].mask
        for col, (values, cmap, label) in enumerate([(theta[name], _THETA_CMAP, r"$\theta$"),
                                                     (carbon[name], _CARBON_CMAP, "carbon thickness")]):
            ax = fig.add_subplot(grid[row, col])
            finite = values[mask & np.isfinite(values)]
            low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
            fig.colorbar(show_map(ax, values, mask, cmap, low, high), ax=ax, shrink=0.8)
            ax.set_title(f"{name}: {label}", fontsize=9)
    for rows, (label, reference, masks, diagonal) in zip(np.array_split(np.arange(n_rows), len(scatters)), scatters):
        ax = fig.add_subplot(grid[rows[0]:rows[-1] + 1, n_cols - 1])
        _correlation_scatter(ax, reference, theta, masks, label, diagonal)
    return fig


def _residuals_figure(results: Results) -> Figure:
    """Left: histogram of (fitted - observed) / sigma over every observed pixel in the fit, with the standard
    normal density. With the right model and noise level the bars follow the curve; a wider histogram means
    misfit (or sigma set too small), a narrower one sigma set too large, heavy tails outliers or local
    misfit. Right: RMS of fitted - observed per frame against the noise level: when in time the model
    departs from the data.
    """
    by_frame = _residuals(results)
    fig = figure((10.0, 4.0))
    hist_ax, frame_ax = fig.subplots(1, 2)
    chi2 = results.fit.get("reduced_chi2")
    title = "reduced χ² = " + ("n/a" if chi2 is None else f"{float(chi2):.4g}")
    if not by_frame:
        for ax in (hist_ax, frame_ax):
            note(ax, "no observed pixel in the fit")
        fig.suptitle(title)
        return fig

    r = np.concatenate([d / s for d, s in by_frame.values()])
    edges = np.linspace(-HISTOGRAM_RANGE_SIGMA, HISTOGRAM_RANGE_SIGMA, 61)
    beyond = np.mean(np.abs(r) > HISTOGRAM_RANGE_SIGMA)
    # Weighted so that the area of the bars is the fraction of residuals inside the plotted range.
    hist_ax.hist(r, bins=edges, weights=np.full(r.size, 1.0 / (r.size * (edges[1] - edges[0]))),
                 color="tab:blue", alpha=0.7,
                 label=f"{r.size} residuals, {100 * beyond:.2g}% beyond ±{HISTOGRAM_RANGE_SIGMA:g}")
    z = np.linspace(edges[0], edges[-1], 301)
    hist_ax.plot(z, np.exp(-0.5 * z ** 2) / np.sqrt(2 * np.pi), "k-", label="standard normal")
    hist_ax.set_xlabel("(fitted − observed) / σ")
    hist_ax.set_ylabel("density")
    hist_ax.legend(fontsize=8, loc="upper left")
    hist_ax.set_title(f"mean of ((fitted − observed) / σ)² = {np.mean(r ** 2):.4g}", fontsize=10)

    frames = np.array(sorted(by_frame))
    rms = [np.sqrt(np.mean(by_frame[f][0] ** 2)) for f in frames]
    noise = [np.sqrt(np.mean(by_frame[f][1] ** 2)) for f in frames]
    frame_ax.plot(frames, rms, "o-", label="RMS fitted − observed")
    frame_ax.plot(frames, noise, "k--", label="noise level σ")
    frame_ax.set_xlabel("frame")
    frame_ax.set_ylabel("concentration")
    frame_ax.set_ylim(bottom=0.0)
    frame_ax.set_xticks(frames)
    frame_ax.legend(fontsize=8)
    frame_ax.set_title("pooled over particles", fontsize=10)
    fig.suptitle(title)
    return fig


def _kinetics_figure(results: Results) -> Figure:
    """Left: the exchange current k0 j0(c) (log scale), how fast the surface reaction runs at each filling;
    its shape (e.g. skewed towards empty or full) is the reaction physics learned. Right: the homogeneous
    chemical potential mu_h(c); its non-monotonic (spinodal) part drives phase separation. Truth dashed for
    synthetic data; the grey band is the concentration range seen in the data (the curves are extrapolated
    outside it).
    """
    fig = figure((10.0, 4.0))
    j0_ax, mu_ax = fig.subplots(1, 2)
    curves = [("fitted", results.params, "-")]
    if results.truth is not None:
        curves.append(("truth", results.truth[0], "--"))
    for label, params, style in curves:
        j0_ax.semilogy(C_GRID, params.k0 * params.j0(C_GRID), style, label=label)
        mu_ax.plot(C_GRID, params.mu_h(C_GRID), style, label=label)
    for u, source, colour in ((results.uncertainty, "Laplace", "C0"), (results.bootstrap, "bootstrap", "C2")):
        if u is None:
            continue
        band = f"{100 * float(u.attrs['level']):.0f}% band ({source})"
        c = u.curves["c"]
        for ax, key in ((j0_ax, "j0"), (mu_ax, "mu_h")):
            low, high = u.curves[f"{key}_lower"], u.curves[f"{key}_upper"]
            if np.all(np.isfinite(low)) and np.all(np.isfinite(high)):
                ax.fill_between(c, low, high, color=colour, alpha=0.25, lw=0, label=band)
            else:
                ax.text(0.03, 0.03, "no band: a parameter of this curve is not determined", fontsize=8,
                        transform=ax.transAxes)
    seen = _observed_range(results)
    for ax in (j0_ax, mu_ax):
        if seen is not None:
            ax.axvspan(*seen, color="0.9", zorder=0, label="observed c (1st-99th percentile)")
        ax.set_xlabel("concentration c")
        ax.set_xlim(0.0, 1.0)
        ax.legend(fontsize=8)
    j0_ax.set_ylabel(r"$k_0\, j_0(c)$  [1/s]")
    j0_ax.set_title("exchange current", fontsize=10)
    mu_ax.set_ylabel(r"$\mu_h(c)$  [kT]")
    mu_ax.set_title("homogeneous chemical potential", fontsize=10)
    return fig


def _theta_sd_figure(results: Results, shown: Sequence[str]) -> Optional[Figure]:
    """Per particle: the learned theta map and its posterior standard deviation (Laplace approximation);
    the sd grows where a pixel's concentration hardly changed during the movie (little to learn from)."""
    u = results.uncertainty
    shown = [n for n in shown if u is not None and n in u.theta_sd and np.any(np.isfinite(u.theta_sd[n]))]
    if not shown:
        return None
    fig = figure((2.6 * len(shown) + 1.0, 5.0))
    axes = np.asarray(fig.subplots(2, len(shown), squeeze=False))
    thetas = np.concatenate([results.particles[n].theta[results.particles[n].mask] for n in shown])
    sds = np.concatenate([u.theta_sd[n][results.particles[n].mask] for n in shown])
    t_low, t_high = np.percentile(thetas, [1, 99])
    s_high = float(np.percentile(sds, 99))
    for j, name in enumerate(shown):
        p = results.particles[name]
        im_t = show_map(axes[0, j], p.theta, p.mask, _THETA_CMAP, t_low, t_high)
        im_s = show_map(axes[1, j], u.theta_sd[name], p.mask, _CONCENTRATION_CMAP, 0.0, s_high)
        axes[0, j].set_title(name, fontsize=8)
    axes[0, 0].set_ylabel("theta")
    axes[1, 0].set_ylabel("sd of theta")
    fig.colorbar(im_t, ax=list(axes[0]), shrink=0.8)
    fig.colorbar(im_s, ax=list(axes[1]), shrink=0.8)
    return fig


def _history_figure(history: Mapping[str, np.ndarray]) -> Figure:
    """Loss and gradient norm (of the optimiser's scaled objective) per iteration: a converged fit flattens
    out in the loss and drops in the gradient norm; a loss still falling at the end calls for more iterations.
    """
    fig = figure((10.0, 3.6))
    loss_ax, grad_ax = fig.subplots(1, 2)
    iteration = np.asarray(history.get("iteration", []))
    for ax, key, label in ((loss_ax, "loss", "loss"), (grad_ax, "grad_norm", "gradient norm (optimiser scale)")):
        values = np.asarray(history.get(key, []), dtype=float)
        if iteration.size == 0 or values.size != iteration.size:
            note(ax, "no iterations recorded")
            continue
        ax.plot(iteration, values, ".-")
        if np.all(values > 0):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
    return fig


def _correlation_scatter(ax, x_maps: Mapping[str, np.ndarray], y_maps: Mapping[str, np.ndarray],
                         masks: Mapping[str, np.ndarray], x_label: str, diagonal: bool) -> None:
    """Pooled scatter of ``y_maps`` against ``x_maps`` with each particle's mean removed, titled with the
    Pearson r with and without mean removal; ``diagonal`` adds the line y = x."""
    x, y = pooled(x_maps, y_maps, masks, remove_mean=True)
    raw = pearson(*pooled(x_maps, y_maps, masks, remove_mean=False))
    ax.scatter(x, y, s=4, alpha=0.4, linewidths=0)
    if diagonal and x.size:
        ends = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(ends, ends, "k--", lw=1)
    ax.set_xlabel(f"{x_label} − particle mean")
    ax.set_ylabel(r"fitted $\theta$ − particle mean")
    ax.set_title(f"r = {pearson(x, y):.3f} (particle means removed)\nraw r = {raw:.3f}; "
                 f"{x.size} pixels, {len(masks)} particles", fontsize=9)


# -- summary ----------------------------------------------------------------------------------------------
def _summary_text(results: Results) -> str:
    """Parameters, free set, figures of merit and, for synthetic data, the recovery of the truth."""
    fit = results.fit
    free = list(fit.get("free", []))
    chi2 = fit.get("reduced_chi2")
    lines = [
        "pixelkinetics fit report",
        "",
        f"particles: {len(results.particles)} ({sum(int(p.mask.sum()) for p in results.particles.values())} pixels)",
        f"noise level sigma: {float(fit['sigma']):g}"
        + (" (per-pixel sigma where given)" if any(p.sigma is not None for p in results.particles.values()) else ""),
        f"frame 0 in the fit: {'yes' if fit.get('fit_initial', False) else 'no'}",
        f"free parameters: {', '.join(free) if free else '(none)'}",
        "reduced chi-square: " + ("n/a" if chi2 is None else f"{float(chi2):.4f}"),
        f"iterations: {fit.get('n_iter', 'n/a')}",
        f"optimiser: {fit.get('method', 'n/a')}",
        f"loss-and-gradient evaluations: {fit.get('n_fev', 'n/a')}",
        f"Gauss-Newton Hessian-vector products: {fit.get('n_hessp', 0)}",
    ]
    if "success" in fit:
        lines.append(f"converged: {'yes' if fit['success'] else 'no'} ({fit.get('message', '')})")
    if "wall_time" in fit:
        lines.append(f"wall time: {float(fit['wall_time']):.3g} s")

    true_params = results.truth[0] if results.truth is not None else None
    lines += ["", f"global parameters (j0 base {results.params.j0_base}; * = free)"]
    lines += _parameter_table(results.params, true_params, free)

    if results.uncertainty is not None:
        lines += [""] + _uncertainty_lines(results.uncertainty, true_params)
    if results.bootstrap is not None:
        lines += [""] + _bootstrap_lines(results.bootstrap, true_params)

    thetas = {n: p.theta for n, p in results.particles.items()}
    references = [("carbon thickness", {n: p.carbon_thickness for n, p in results.particles.items()
                                        if p.carbon_thickness is not None})]
    if results.truth is not None:
        references.append(("true theta", results.truth[1]))
    correlations = [_correlation_line(f"theta vs {label}", thetas, maps,
                                      {n: p.mask for n, p in results.particles.items() if n in maps})
                    for label, maps in references if maps]
    if correlations:
        lines += ["", "log-rate maps theta"] + correlations
    return "\n".join(lines) + "\n"


def _uncertainty_lines(u, truth: Optional[Params]) -> List[str]:
    a = u.attrs
    lines = [f"uncertainty (Laplace approximation at the optimum; {100 * float(a['level']):.0f}% intervals; "
             f"{int(a['n_hessp'])} Hessian-vector products, {float(a['wall_time']):.3g} s)"]
    lines += _interval_lines(u, truth)
    lines += [f"  {text}" for text in u.extra.get("undetermined", [])]
    sds = np.concatenate([m[np.isfinite(m)] for m in u.theta_sd.values()] or [np.zeros(0)])
    if sds.size:
        lines.append(f"  theta sd: median {np.median(sds):.3g} (5th-95th percentile {np.percentile(sds, 5):.3g}-"
                     f"{np.percentile(sds, 95):.3g})")
    lines.append(f"  Laplace log evidence {float(a['log_evidence']):.2f}, BIC {float(a['bic']):.2f}")
    return lines


def _bootstrap_lines(u, truth: Optional[Params]) -> List[str]:
    a = u.attrs
    lines = [f"uncertainty (parametric bootstrap: {int(a['n_replicates'])} refits of data simulated at the estimate, "
             f"{len(u.extra.get('failed', []))} failed; {100 * float(a['level']):.0f}% intervals ({a['method']}); "
             f"{float(a['wall_time']):.3g} s)"]
    return lines + _interval_lines(u, truth, [f"  bias-corrected value {v:.6g}" for v in u.extra["corrected"]])


def _interval_lines(u, truth: Optional[Params], notes: Optional[Sequence[str]] = None) -> List[str]:
    """One line per free global: value +- sd [interval] (``notes`` after it) and, with a truth, whether
    the interval holds it."""
    true_values = truth.values() if truth is not None else {}
    lines = []
    for i, name in enumerate(u.free):
        if not np.isfinite(u.sd[i]):
            lines.append(f"  {name:<8}{u.values[i]:>14.6g}   not determined by these data")
            continue
        line = f"  {name:<8}{u.values[i]:>14.6g} +- {u.sd[i]:<10.3g} [{u.lower[i]:.6g}, {u.upper[i]:.6g}]"
        line += notes[i] if notes else ""
        if name in true_values:
            inside = u.lower[i] <= true_values[name] <= u.upper[i]
            line += f"  truth {'inside' if inside else 'OUTSIDE'}"
        lines.append(line)
    return lines


def _parameter_table(params: Params, truth: Optional[Params], free: Sequence[str]) -> List[str]:
    """One line per global: value, free mark and, with a truth, the true value and the error
    (:func:`~pixelkinetics.kinetics.truth.format_error`). Legendre coefficients one set lacks count as 0."""
    values = params.values()
    names = list(values) + [n for n in (truth.values() if truth is not None else {}) if n not in values]
    header = f"  {'name':<8}{'value':>14}  "
    if truth is not None:
        header += f"{'truth':>14}  {'error':>16}"
    lines = [header]
    for name in names:
        value = values.get(name, 0.0)
        line = f"  {name:<8}{value:>14.6g}{' *' if name in free else '  '}"
        if truth is not None:
            true = true_value(truth, name)
            line += f"{true:>14.6g}  {format_error(value, true):>16}"
        lines.append(line)
    return lines


def _correlation_line(label: str, a, b, masks) -> str:
    r = theta_correlation(a, b, masks, remove_mean=True)
    raw = theta_correlation(a, b, masks, remove_mean=False)
    return f"  {label}: r = {r:.4f} with each particle's mean removed, raw r = {raw:.4f} ({len(masks)} particles)"


# -- helpers ----------------------------------------------------------------------------------------------
def _largest(particles: Mapping[str, FittedMovie], count: int) -> List[str]:
    """Names of the ``count`` particles with the most mask pixels; ties keep the given order."""
    return sorted(particles, key=lambda name: -int(particles[name].mask.sum()))[:count]


def _frame_indices(n_frames: int) -> List[int]:
    """At most MAX_FRAMES evenly spaced frame indices, the first and last included."""
    return sorted({int(round(f)) for f in np.linspace(0, n_frames - 1, min(n_frames, MAX_FRAMES))})


def _residuals(results: Results) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """fitted - observed and the noise level at every observed pixel in the misfit, pooled over particles
    and keyed by frame index: frames >= 1, and frame 0 when ``fit["fit_initial"]``. The noise level is the
    particle's per-pixel sigma when it has one, else ``fit["sigma"]``."""
    sigma = float(results.fit["sigma"])
    first = first_fitted_frame(bool(results.fit.get("fit_initial", False)))
    diffs: Dict[int, List[np.ndarray]] = {}
    noise: Dict[int, List[np.ndarray]] = {}
    for p in results.particles.values():
        for f in range(first, len(p.time)):
            observed, fitted = p.observed[f][p.mask], p.fitted[f][p.mask]
            s = p.sigma[f][p.mask] if p.sigma is not None else np.full(observed.shape, sigma)
            ok = np.isfinite(observed) & np.isfinite(fitted)
            diffs.setdefault(f, []).append(fitted[ok] - observed[ok])
            noise.setdefault(f, []).append(s[ok])
    pooled = {f: (np.concatenate(diffs[f]), np.concatenate(noise[f])) for f in sorted(diffs)}
    return {f: ds for f, ds in pooled.items() if ds[0].size}


def _observed_range(results: Results) -> Optional[Tuple[float, float]]:
    """The 1st to 99th percentile of all observed concentrations, or None when nothing is observed."""
    values = np.concatenate([p.observed[:, p.mask].ravel() for p in results.particles.values()] + [np.empty(0)])
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    low, high = np.percentile(values, [1.0, 99.0])
    return float(low), float(high)
