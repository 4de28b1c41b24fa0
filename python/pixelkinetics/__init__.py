"""pixelkinetics: learn phase-field reaction kinetics of battery particles from X-ray movies.

Every command of the command line is a function here, with the same defaults::

    import pixelkinetics as pk
    result = pk.fit("data.h5", output="results.h5")        # pixelkinetics fit data.h5 -o results.h5
    posterior = pk.uq("data.h5", result, output="results.h5")
    pk.report("results.h5", "figures")

The model contract (MODEL.md section 11): :func:`load_movies`, :class:`Params`, :class:`Problem` with
``loss``, ``loss_and_gradient`` and ``simulate``. The wings hold the rest: :mod:`pixelkinetics.kinetics`,
:mod:`pixelkinetics.spectra`, :mod:`pixelkinetics.mechanics`, over :mod:`pixelkinetics.floor`.
"""
from ._core import SolverError, has_openmp, num_threads, set_num_threads
from .floor.parallel import world
from .kinetics import (
    Estimate,
    FitConfig,
    FitResult,
    Movie,
    Params,
    Problem,
    Results,
    Solution,
    load_movies,
    load_results,
    write_movies,
    write_results,
)
from .kinetics.bootstrap import bootstrap
from .kinetics.comparison import compare
from .kinetics.demo import demo
from .kinetics.fit import fit
from .kinetics.simulate import simulate
from .kinetics.stability import stability
from .kinetics.sweep import sweep, sweep_summary
from .kinetics.synthetic import synth
from .kinetics.uncertainty import uq
from .mechanics.strain import strain, synth_strain
from .spectra.composition import composition_movie, synth_stacks
from .workflows import info, report

__version__ = "0.1.0"

__all__ = [
    # the model contract
    "Movie", "Params", "Problem", "Solution", "SolverError", "load_movies",
    # objects the workflows take and return
    "Estimate", "FitConfig", "FitResult", "Results", "load_results", "write_movies", "write_results",
    # the workflows, one per command
    "bootstrap", "compare", "composition_movie", "demo", "fit", "info", "report", "simulate", "stability",
    "strain", "sweep", "sweep_summary", "synth", "synth_stacks", "synth_strain", "uq",
    # threads and processes
    "has_openmp", "num_threads", "set_num_threads", "world",
    "__version__",
]
