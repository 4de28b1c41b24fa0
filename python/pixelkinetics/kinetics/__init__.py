"""The kinetics wing: phase-field reaction kinetics learned from composition movies.

Data: :class:`Movie` (a particle, or a population of particles, of one of three kinds), movie files
(:mod:`.files`). Model: :class:`Params` and :class:`Problem` (loss, gradient and simulation through the core).
Fitting: :class:`FitConfig`, the fit's coordinates (:mod:`.coordinates`), the preconditioned optimiser vector
(:mod:`.space`), the objective and the optimisers. Outcomes: :class:`FitResult` with its :class:`Estimate`,
:class:`Results` files, uncertainty (Laplace, :mod:`.uncertainty`; bootstrap, :mod:`.bootstrap`), model
comparison, sweeps, reports, populations and their stability, synthetic data.

The workflows (one per command) are functions of their modules, re-exported at the package's top level:
``pixelkinetics.fit`` is :func:`.fit.fit`, ``pixelkinetics.uq`` is :func:`.uncertainty.uq`, and so on.
"""
from .bootstrap import Bootstrap
from .comparison import Comparison, ModelScore, compare_models
from .config import DegenerateParametersError, FitConfig
from .coordinates import FitCoordinates
from .estimate import Estimate, data_fingerprint
from .files import load_movies, load_populations, load_truth, write_movies
from .fit import FitResult
from .movie import Movie
from .params import Params
from .problem import Problem, Solution
from .results import FittedMovie, Results, Uncertainty, add_intervals, as_estimate, load_results, write_results
from .sweep import Sweep, SweepOutcome, load_sweep, read_runs, run_sweep
from .synthetic import SyntheticTruth, make_movies
from .uncertainty import Posterior, laplace

__all__ = [
    "Bootstrap", "Comparison", "DegenerateParametersError", "Estimate", "FitConfig", "FitCoordinates", "FitResult",
    "FittedMovie", "ModelScore", "Movie", "Params", "Posterior", "Problem", "Results", "Solution", "Sweep",
    "SweepOutcome", "SyntheticTruth", "Uncertainty", "add_intervals", "as_estimate", "compare_models",
    "data_fingerprint", "laplace", "load_movies", "load_populations", "load_results", "load_sweep", "load_truth",
    "make_movies", "read_runs", "run_sweep", "write_movies", "write_results",
]
