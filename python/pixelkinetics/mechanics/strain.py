"""The strain workflows: the strain-composition law of a strain file learned through elasticity
(``pixelkinetics strain``), and synthetic particles to try it on (``pixelkinetics synth-strain``)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .elastic import LFP_AC, StrainParticle
from .files import StrainData, read_strain, strain_file_summary, write_strain, write_strain_results
from .report import write_strain_report
from .synthetic import LFP_MISFIT, PATTERNS, synthetic_particle
from .vegard import Prediction, VegardFit, fit_vegard, naive_regression, predict_strain

logger = logging.getLogger(__name__)


@dataclass
class StrainFit:
    """The outcome of ``strain``: the law fitted to the training particles, the naive pixel regression of
    every particle, and the prediction of the held-out ones."""

    data: StrainData
    fit: VegardFit
    naive: Dict[str, np.ndarray]
    held_out: List[str]
    prediction: Optional[Prediction]
    output: Optional[str]
    figures: List[Path]
    composition_draws: int
    wall_time: float

    def summary(self) -> List[str]:
        lines = list(self.fit.summary())
        if self.fit.composition_bias is not None:
            lines.append(f"composition sigma: {self.composition_draws} redraws removed a bias of "
                         f"{np.round(self.fit.composition_bias[0], 6).tolist()} from beta_1")
        if self.fit.stiffness_fit is not None:
            lines += self.fit.stiffness_fit.summary()
        for p in self.data.particles:
            line = f"{p.name}: naive pixel regression {np.round(self.naive[p.name], 5).tolist()}"
            if p.name in self.held_out:
                line += f"; held out, predicted with residual rms {self.prediction.rms[p.name]:.3g}"
            lines.append(line)
        if self.output:
            lines.append(f"wrote {self.output} in {self.wall_time:.1f} s")
        if self.figures:
            lines.append(f"wrote {len(self.figures)} report files to {self.figures[0].parent}")
        return lines


def strain(data: "str | os.PathLike", output: "Optional[str | os.PathLike]" = None, *, order: int = 1,
           fit_stiffness: bool = False, hold_out: Sequence[str] = (), sigma: Optional[float] = None,
           composition_draws: int = 16, report: "Optional[str | os.PathLike]" = None,
           progress: bool = True) -> StrainFit:
    """Learn the strain-composition law of the particles of a strain file (``pixelkinetics strain``).

    order: terms of the law (1 is Vegard's); fit_stiffness: also fit the stiffness ratios; hold_out:
    particles left out of the fit and predicted with the learned law; sigma: the strain noise (default: the
    file's strain_sigma, else estimated); composition_draws: redraws that propagate composition sigma;
    output: the results file; report: a folder for its figures (needs ``output``)."""
    t0 = time.perf_counter()
    path = os.fspath(data)
    data = read_strain(path)
    names = [p.name for p in data.particles]
    unknown = sorted(set(hold_out) - set(names))
    if unknown:
        raise ValueError(f"{path}: --hold-out names no particle under /strain: {unknown} (there are {names})")
    train = [p for p in data.particles if p.name not in hold_out]
    held_out = [p for p in data.particles if p.name in hold_out]
    if not train:
        raise ValueError(f"{path}: every particle is held out; nothing is left to fit")
    if report is not None and output is None:
        raise ValueError("a strain report is drawn from its results file: give an output")
    logger.info(f"{len(train)} particle(s) fitted jointly, {len(held_out)} held out, order {order}, crystal "
                f"axis 1 at {np.rad2deg(data.angle):g} deg")
    for line in strain_file_summary(data):
        logger.info(line)
    if composition_draws < 2 and any(p.composition_sigma is not None for p in train):
        logger.warning(f"composition draws {composition_draws} < 2: composition_sigma is not propagated and its "
                       "bias is not removed")
    fit = fit_vegard(train, order=order, stiffness=data.stiffness, angle=data.angle,
                     sigma=sigma if sigma is not None else data.strain_sigma, fit_stiffness=fit_stiffness,
                     composition_draws=composition_draws, progress=progress)
    naive = {p.name: naive_regression(p, data.angle) for p in data.particles}
    prediction = predict_strain(fit, held_out) if held_out else None
    figures: List[Path] = []
    if output is not None:
        write_strain_results(output, fit, train, naive, held_out, prediction, data_path=path, truth=data.truth)
        if report is not None:
            figures = write_strain_report(output, report)
    return StrainFit(data, fit, naive, [p.name for p in held_out], prediction,
                     None if output is None else os.fspath(output), figures, composition_draws,
                     time.perf_counter() - t0)


def synth_strain(output: "Optional[str | os.PathLike]" = None, *, patterns: Sequence[str] = PATTERNS,
                 size: int = 96, noise: float = 1e-3, composition_noise: float = 0.0, angle_deg: float = 0.0,
                 convention: str = "py4dstem", seed: int = 0) -> List[StrainParticle]:
    """Synthetic strain and composition maps of LiFePO4-like particles, one per composition pattern, written
    with their truth to ``output`` when given (``pixelkinetics synth-strain``)."""
    bad = [p for p in patterns if p not in PATTERNS]
    if bad:
        raise ValueError(f"--patterns: unknown {bad}; choose from {', '.join(PATTERNS)}")
    angle = np.deg2rad(angle_deg)
    particles = [synthetic_particle(p, n=size, noise=noise, angle=angle, composition_noise=composition_noise,
                                    seed=seed + k, name=f"{p}-{k}") for k, p in enumerate(patterns)]
    if output is not None:
        Q = LFP_AC / LFP_AC[0, 0]
        truth = {"misfit_1": LFP_MISFIT[0], "misfit_2": LFP_MISFIT[1], "Q22/Q11": Q[1, 1], "Q12/Q11": Q[0, 1],
                 "Q66/Q11": Q[2, 2], "noise": noise, "composition_noise": composition_noise}
        write_strain(output, particles, angle=angle, convention=convention, truth=truth)
    return particles
