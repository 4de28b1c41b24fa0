"""The model's movies (``pixelkinetics simulate``): the data's particles and populations simulated at a fitted
estimate or at given parameters, as a movie file."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from .config import as_config
from .files import read_data, write_movies
from .movie import Movie
from .problem import Problem
from .results import as_estimate


@dataclass
class Simulation:
    """Simulated movies (the data's, with the model's frames) and the solver's statistics."""

    movies: List[Movie]
    stats: Dict[str, int]

    def summary(self) -> List[str]:
        return [f"{len(self.movies)} simulated particles ({self.stats['n_steps']} steps, "
                f"{self.stats['n_newton']} Newton iterations)"]


def simulate(data, estimate=None, *, config=None, output: "Optional[str | os.PathLike]" = None) -> Simulation:
    """Simulate the movies of ``data`` (movies or the path of a movie file: masks, times, driving).

    estimate: a fit (a FitResult, Results, an Estimate or the path of a results file): its parameters, theta
    maps and initial states, with the fit's own numerics, which reproduce its fitted movies; or config: a
    FitConfig or the path of its TOML file, whose [model] parameters are simulated with theta = 0 (neither:
    the default configuration). output: a movie file to write. Populations stay populations, every particle
    tracked.
    """
    if estimate is not None and config is not None:
        raise ValueError("simulate takes an estimate (results) or a configuration, not both")
    movies, _ = read_data(data)
    theta = c0 = None
    if estimate is not None:
        estimate = as_estimate(estimate)
        names = {m.name for m in movies}
        config, params = estimate.config, estimate.params
        theta = {n: t for n, t in estimate.theta.items() if n in names}
        c0 = {n: c for n, c in (estimate.c0 or {}).items() if n in names}
    else:
        config = as_config(config)
        params = config.initial
    # The integration settings alone: the loss's settings (sigma, the theta penalties) must not change the movies.
    problem = Problem(movies, scheme=config.scheme, n_sub=config.n_sub, newton_tol=config.newton_tol)
    solution = problem.solve(params, theta, c0)
    out = [dataclasses.replace(m, concentration=solution.concentration[m.name], sigma=None,
                               kind="tracked" if m.is_population else "particle",
                               voltage=solution.voltage[m.name] if m.driving == "potential" else m.voltage)
           for m in movies]
    if output is not None:
        write_movies(output, out)
    return Simulation(out, solution.stats)
