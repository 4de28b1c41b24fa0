"""Model comparison (``pixelkinetics compare``): candidate j0 bases and Legendre orders fitted with the same
settings and ranked by the Laplace evidence of their globals."""
from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

from ..floor.hdf5 import atomic_file
from .config import FitConfig, as_config
from .files import read_data
from .fit import fit
from .movie import Movie
from .uncertainty import Posterior, laplace


@dataclass
class ModelScore:
    """One candidate model of :func:`compare_models`, fitted and scored."""

    j0_base: str
    order: int                 #: Legendre order Mb of the ln j0 correction (b1..b_Mb free; b0 stays 0)
    posterior: Posterior
    reduced_chi2: float
    converged: bool

    @property
    def label(self) -> str:
        return f"{self.j0_base}, Mb = {self.order}"


@dataclass
class Comparison:
    """Candidates ranked by their Laplace evidence (the first is preferred)."""

    scores: List[ModelScore]

    @property
    def preferred(self) -> ModelScore:
        return self.scores[0]

    def table(self) -> List[str]:
        best = self.scores[0].posterior.log_evidence
        lines = [f"{'model':18s} {'ln evidence':>12s} {'delta':>8s} {'BIC':>10s} {'chi2/dof':>9s}  converged"]
        for s in self.scores:
            p = s.posterior
            lines.append(f"{s.label:18s} {p.log_evidence:12.2f} {p.log_evidence - best:8.2f} {p.bic:10.2f} "
                         f"{s.reduced_chi2:9.4f}  {'yes' if s.converged else 'no'}")
        lines.append(f"preferred: {self.preferred.label} (largest Laplace evidence)")
        return lines


def model_config(config: FitConfig, j0_base: str, order: int) -> FitConfig:
    """``config`` with the j0 base and the ln j0 Legendre order changed: b1..b_order free, b0 held at 0
    (k0 carries the scale), the other free globals as they were."""
    b = [config.initial.b[m] if m < len(config.initial.b) else 0.0 for m in range(order + 1)]
    initial = config.initial.replace(j0_base=j0_base, b=b)
    free = [n for n in config.free if not (n[0] == "b" and n[1:].isdigit())] + [f"b{m}" for m in range(1, order + 1)]
    bounds = {k: v for k, v in config.bounds.items() if k in initial.names()}
    return dataclasses.replace(config, initial=initial, free=free, bounds=bounds)


def compare_models(movies: Sequence[Movie], config: FitConfig, bases: Sequence[str] = ("one", "sqrt", "asym"),
                   orders: Sequence[int] = (2,), progress: bool = False, level: float = 0.95) -> Comparison:
    """Fit every (j0 base, Legendre order) model with the settings of ``config`` and rank them by their
    Laplace evidence (uniform priors of width PRIOR_WIDTH on the free globals in the fit coordinates)."""
    scores = []
    for base in bases:
        for order in orders:
            cfg = model_config(config, base, int(order))
            result = fit(movies, cfg, progress=progress)
            post = laplace(movies, result, level=level, progress=progress)
            scores.append(ModelScore(base, int(order), post, result.reduced_chi2, result.success))
    scores.sort(key=lambda s: -s.posterior.log_evidence)
    return Comparison(scores)


#: Columns of the comparison table written as CSV.
CSV_COLUMNS = ("j0_base", "order", "log_evidence", "bic", "reduced_chi2", "converged", "n_hessp")


def compare(data, config=None, *, bases: Sequence[str] = ("one", "sqrt", "asym"), orders: Sequence[int] = (2,),
            level: float = 0.95, output: "Optional[str | os.PathLike]" = None, progress: bool = True) -> Comparison:
    """Fit and rank j0 bases and Legendre orders by Laplace evidence (``pixelkinetics compare``).

    data: movies or the path of a movie file; config: the fit settings the candidates share (a FitConfig, a
    TOML path or None); output: a CSV file of the table."""
    movies, _ = read_data(data)
    comparison = compare_models(movies, as_config(config), bases=bases, orders=orders, progress=progress,
                                level=level)
    if output is not None:
        with atomic_file(output) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for s in comparison.scores:
                writer.writerow([s.j0_base, s.order, s.posterior.log_evidence, s.posterior.bic, s.reduced_chi2,
                                 s.converged, s.posterior.n_hessp])
    return comparison
