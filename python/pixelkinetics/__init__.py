"""pixelkinetics: learn phase-field reaction kinetics of battery particles from X-ray movies."""
from ._core import SolverError, has_openmp, num_threads, set_num_threads
from .io import load_movies
from .movie import Movie
from .params import Params
from .problem import Problem, Solution

__version__ = "0.1.0"

__all__ = [
    "Movie",
    "Params",
    "Problem",
    "Solution",
    "SolverError",
    "has_openmp",
    "load_movies",
    "num_threads",
    "set_num_threads",
    "__version__",
]
