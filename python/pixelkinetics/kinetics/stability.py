"""Where a driven population splits (electro-autocatalysis, ``pixelkinetics stability``).

A homogeneous population at mean composition c driven at the current I = dc/dt has, for every zero-mean
perturbation (which leaves V unchanged to first order), the growth rate

    lambda(c, I) = dR/dc at fixed V = I (ln j0)'(c) + k0 j0(c) g'(eta) mu_h'(c),   k0 j0(c) g(eta) = I

with g(eta) = exp(-alpha eta) - exp((1 - alpha) eta). The second term is stabilising wherever mu_h rises
(no miscibility gap); the first destabilises when j0 grows in the direction the population moves. lambda > 0
splits the population into lithium-rich and lithium-poor particles. mu_h, j0, the rate and their slopes
come from the core (:mod:`.params`), the functions the solver integrates.

:func:`stability` draws lambda(I, c) with its boundary next to simulated populations on a grid of (I, c)
(their bimodality) and the histograms of a full charge and a full discharge.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import List

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

from .._core import SolverError
from ..floor.figures import figure
from .config import as_config
from .params import Params
from .population import simulate_driven, simulate_population

logger = logging.getLogger(__name__)

#: A layered oxide without a miscibility gap whose exchange current falls steeply with lithium content.
NMC_DEMO = dict(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, D=0.0, b=[0.0], j0_base="logistic", j0_s=40.0,
                j0_c=0.5)


# -- the growth rate of the analysis --------------------------------------------------------------------
def overpotential(params: Params, c: float, current: float) -> float:
    """The overpotential eta at which a particle of composition c reacts at rate ``current`` (1/s):
    k0 j0(c) g(eta) = current (the rate falls monotonically from +inf to -inf in eta, so eta is unique)."""
    def excess(eta: float) -> float:
        return float(params.rate(c, eta)) - current

    lo, hi = -1.0, 1.0
    while excess(lo) < 0:
        lo *= 2
    while excess(hi) > 0:
        hi *= 2
    return brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14)


def growth_rate(params: Params, c: float, current: float) -> float:
    """lambda(c, I) of the module docstring, in 1/s: > 0 where a homogeneous population splits."""
    dmu_h, dlog_j0, drate = params.slopes(c, overpotential(params, c, current))
    return current * dlog_j0 + drate * dmu_h


def phase_diagram(params: Params, currents: np.ndarray, compositions: np.ndarray) -> np.ndarray:
    """(len(currents), len(compositions)) growth rates; the population splits where they are > 0."""
    return np.array([[growth_rate(params, c, i) for c in compositions] for i in currents])


def log_amplification(params: Params, c_start: float, c_end: float, current: float) -> float:
    """ln of the factor by which the linear analysis grows a small spread while the mean moves from
    ``c_start`` to ``c_end`` at ``current``: the integral of lambda dt = lambda dc / I."""
    return float(quad(lambda c: growth_rate(params, c, current) / current, c_start, c_end, limit=200)[0])


# -- the solver's answer ------------------------------------------------------------------------------------
def simulated_growth_rate(params: Params, c: float, current: float, delta: float = 1e-4, window: float = 0.004,
                          n_sub: int = 200):
    """(growth rate, mean composition it belongs to) of a +-``delta`` split of two equal particles
    simulated by the core at ``current`` while the mean moves by ``window``: the solver's own answer to
    :func:`growth_rate`."""
    t_end = window / abs(current)
    out = simulate_driven(params, np.array([c + delta, c - delta]), current, np.linspace(0.0, t_end, 3),
                          n_sub=n_sub, newton_tol=1e-14)
    spread = (out[:, 0] - out[:, 1]) / 2
    return float(np.log(spread[-1] / spread[0]) / t_end), c + current * t_end / 2


def bimodality(fractions: np.ndarray) -> float:
    """Sarle's bimodality coefficient (skewness^2 + 1) / (kurtosis + 3 (n-1)^2 / ((n-2)(n-3))) of a
    population's fractions: about 1/3 for a normal spread, above 5/9 for two groups; 0 for a population
    without spread (all particles alike)."""
    x = np.asarray(fractions, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.size
    sd = x.std()
    if n < 4 or sd < 1e-9:
        return 0.0
    z = (x - x.mean()) / sd
    skewness = np.mean(z ** 3) * np.sqrt(n * (n - 1)) / (n - 2)
    excess = ((n + 1) * (np.mean(z ** 4) - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))
    return float((skewness ** 2 + 1) / (excess + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


# -- the diagram --------------------------------------------------------------------------------------------
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
    wall_time: float = 0.0

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
    fig = figure((13, 4.8))
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


def stability(output: "str | os.PathLike", params=None, *, grid: int = 10, max_current: float = 5e-2,
              particles: int = 100, seed: int = 0) -> StabilityMap:
    """The stability diagram of a driven population (``pixelkinetics stability``), drawn into the PNG file
    ``output``: lambda(I, c) with its boundary on a ``grid`` x ``grid`` mesh of currents of both signs (|I|
    from ``max_current`` / 100 to ``max_current``, in 1/s) and compositions 0.15 to 0.85, each point beside
    a simulated population of ``particles``. params: a Params, a FitConfig or the path of a TOML file whose
    [model] holds them (default: :data:`NMC_DEMO`, a layered oxide with a logistic j0)."""
    where = os.fspath(params) if isinstance(params, (str, os.PathLike)) else "parameters"
    if params is None:
        params = Params(**NMC_DEMO)
    elif not isinstance(params, Params):
        params = as_config(params).initial
    if params.B != 0 or params.D != 0:
        raise ValueError(f"{where}: a population has B = 0 and D = 0 (homogeneous particles without "
                         f"coherency strain), got B = {params.B}, D = {params.D}")
    logger.info(f"j0 base {params.j0_base}, {grid} x {grid} points, {particles} particles each")
    t0 = time.perf_counter()
    currents = np.concatenate([-np.geomspace(max_current, max_current / 100, grid // 2),
                               np.geomspace(max_current / 100, max_current, grid - grid // 2)])
    result = stability_map(params, currents, np.linspace(0.15, 0.85, grid), n_particles=particles, seed=seed)
    stability_figure(params, result, output)
    result.wall_time = time.perf_counter() - t0
    return result
