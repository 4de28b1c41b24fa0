"""The stability diagram of a driven population (``pixelkinetics stability``): the analytic growth rate
lambda(I, c) of :mod:`pixelkinetics.population` with its boundary lambda = 0, the simulated populations on
a grid of (I, c) with their bimodality, and the histograms of a full charge and a full discharge."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

import numpy as np

from ._core import SolverError
from .params import Params
from .population import bimodality, growth_rate, log_amplification, simulate_population, simulated_growth_rate
from .report import _figure

#: Bimodality coefficient above which a population counts as split (Sarle's 5/9).
SPLIT = 5.0 / 9.0


@dataclass
class StabilityMap:
    currents: np.ndarray
    compositions: np.ndarray
    predicted: np.ndarray        #: (I, c) analytic growth rate at the middle of each window [1/s]
    growth: np.ndarray           #: (I, c) the solver's growth rate of a two-particle split [1/s]
    bimodality: np.ndarray       #: (I, c) bimodality of a population after its window
    amplification: np.ndarray    #: (I, c) spread after the window / spread before
    log_growth: np.ndarray       #: (I, c) ln of the analysis' amplification of a small spread over the window

    @property
    def split(self) -> np.ndarray:
        """Simulated populations that split: bimodal (Sarle > 5/9) with a spread that grew (a shrinking
        spread of a few noise-like values can look bimodal)."""
        return (self.bimodality > SPLIT) & (self.amplification > 1)

    def agreement(self) -> float:
        """Share of grid points where the simulated and predicted signs of the growth agree."""
        return float(np.mean((self.growth > 0) == (self.predicted > 0)))

    def summary(self) -> List[str]:
        unstable = self.predicted > 0
        split = self.split

        def median(values):
            values = values[np.isfinite(values)]
            return float(np.median(values)) if values.size else np.nan

        failed = int(np.isnan(self.bimodality).sum())
        return [f"{self.predicted.size} points (I, c): {int(unstable.sum())} unstable by the analysis; simulated "
                f"growth agrees in sign at {100 * self.agreement():.0f}%"
                + (f"; {failed} population run(s) failed in the solver" if failed else ""),
                f"bimodality after the window: median {median(self.bimodality[unstable]):.2f} at unstable points, "
                f"{median(self.bimodality[~unstable]):.2f} at stable ones; split (> {SPLIT:.2f}) at "
                f"{int(split.sum())} points, {int((split & ~unstable).sum())} of them stable by the analysis"]


def stability_map(params: Params, currents: np.ndarray, compositions: np.ndarray, travel: float = 0.1,
                  n_particles: int = 100, seed: int = 0) -> StabilityMap:
    """Simulate every (I, c): a two-particle split over a short window (its growth rate) and a population of
    ``n_particles`` while the mean moves by ``travel`` through c (its bimodality and spread growth)."""
    shape = (len(currents), len(compositions))
    predicted, growth, bimod, amp, log_growth = (np.empty(shape) for _ in range(5))
    for a, current in enumerate(currents):
        for b, c in enumerate(compositions):
            growth[a, b], mid = simulated_growth_rate(params, c, current)
            predicted[a, b] = growth_rate(params, mid, current)
            start = c - np.sign(current) * travel / 2
            log_growth[a, b] = log_amplification(params, start, start + np.sign(current) * travel, current)
            try:
                frames = simulate_population(params, start, current, travel, n_particles,
                                             seed=seed + a * shape[1] + b)
            except SolverError:  # particles driven into the 0 or 1 limits: no verdict at this point
                bimod[a, b] = amp[a, b] = np.nan
                continue
            bimod[a, b] = bimodality(frames[-1])
            amp[a, b] = frames[-1].std() / max(frames[0].std(), 1e-300)
    return StabilityMap(np.asarray(currents), np.asarray(compositions), predicted, growth, bimod, amp, log_growth)


def stability_figure(params: Params, result: StabilityMap, path: "str | os.PathLike", dpi: int = 120) -> None:
    fig = _figure((13, 4.8))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1.4, 1]))
    cs = np.linspace(0.03, 0.97, 300)
    currents = result.currents
    # One row per grid current: lambda / |I| along c, with the boundary lambda = 0 marked in each row.
    lam = np.array([[growth_rate(params, c, i) / abs(i) for c in cs] for i in currents])
    scale = float(np.percentile(np.abs(lam), 90)) or 1.0
    rows = np.arange(currents.size)
    im = ax1.pcolormesh(cs, rows, lam, cmap="RdBu_r", vmin=-scale, vmax=scale, shading="nearest")
    for a, row in enumerate(lam):
        crossings = np.flatnonzero(np.diff(np.sign(row)) != 0)
        for k in crossings:
            ax1.plot([cs[k], cs[k]], [a - 0.45, a + 0.45], "k-", lw=2)
        for b, c in enumerate(result.compositions):
            if np.isnan(result.bimodality[a, b]):
                ax1.plot(c, a, "x", ms=7, color="0.4")
                continue
            ax1.plot(c, a, "o", ms=7, mfc="k" if result.split[a, b] else "none", mec="k")
    ax1.set_yticks(rows, [f"{i:+.1e}" for i in currents])
    ax1.set_xlabel("mean lithium fraction c")
    ax1.set_ylabel("current I = dc/dt (1/s)")
    ax1.set_title("lambda / |I| (red: splits; black bars: lambda = 0); filled: simulated population split",
                  fontsize=9)
    fig.colorbar(im, ax=ax1, label="lambda / |I| (clipped at the 90th percentile)")
    i_max = abs(currents).max()
    runs = ((-i_max / 10, 0.9, "C3", "delithiation"), (i_max / 10, 0.1, "C0", "lithiation"))
    for current, start, colour, label in runs:
        try:
            frames = simulate_population(params, start, current, 0.5, n_particles=300, n_frames=2)
        except SolverError as exc:
            ax2.text(0.5, 0.5 if current < 0 else 0.3, f"{label}: {exc}", transform=ax2.transAxes, ha="center",
                     fontsize=7, wrap=True)
            continue
        ax2.hist(frames[-1], bins=40, range=(0, 1), color=colour, alpha=0.6,
                 label=f"{label} at {current:+.1e}/s: bimodality {bimodality(frames[-1]):.2f}")
    ax2.set_xlabel("particle lithium fraction after the mean moved by 0.5")
    ax2.set_ylabel("particles")
    ax2.legend(fontsize=8)
    ax2.set_title("populations after a full (dis)charge")
    fig.savefig(path, dpi=dpi)
