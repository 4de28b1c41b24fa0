"""The demo (``pixelkinetics demo``): synthetic movies with a known truth, fitted, reported, and compared with
the truth they were made from."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from .fit import FitResult, fit
from .movie import Movie
from .report import write_report
from .results import Results
from .synthetic import synth
from .truth import recovery_lines


@dataclass
class Demo:
    """What the demo made: its data, the fit, the results file and the report."""

    data: Path
    results_file: Path
    movies: List[Movie]
    fit: FitResult
    results: Results
    figures: List[Path]
    synth_time: float
    noise: float

    def summary(self) -> List[str]:
        n_sites = sum(m.n_sites for m in self.movies)
        return ([f"wrote {self.data}: {n_sites} sites, {self.movies[0].shape[0]} frames, noise {self.noise} "
                 f"({self.synth_time:.1f} s)"] + self.fit.summary() + recovery_lines(self.results)
                + [f"wrote {self.results_file} and {len(self.figures)} report files in {self.figures[-1].parent}"])


def demo(output: "str | os.PathLike" = "demo_output", *, particles: int = 12, sites: Tuple[int, int] = (150, 300),
         frames: int = 8, noise: float = 0.02, missing: float = 0.0, driving: str = "rate", scheme: str = "bdf2",
         n_sub: int = 40, seed: int = 0, max_iter: Optional[int] = None, progress: bool = True) -> Demo:
    """Make synthetic data (:func:`~pixelkinetics.kinetics.synthetic.synth`), fit them with the default
    configuration and write the results and the report into the folder ``output``: ``demo_data.h5``,
    ``demo_results.h5`` and ``report/``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    data, results_file = out / "demo_data.h5", out / "demo_results.h5"
    t0 = time.perf_counter()
    movies, _ = synth(data, particles=particles, sites=sites, frames=frames, noise=noise, missing=missing,
                      driving=driving, scheme=scheme, n_sub=n_sub, seed=seed)
    synth_time = time.perf_counter() - t0
    result = fit(data, output=results_file, max_iter=max_iter, progress=progress)
    results = Results.of_fit(result, movies, data_path=data)
    figures = write_report(results, out / "report")
    return Demo(data, results_file, movies, result, results, figures, synth_time, noise)
