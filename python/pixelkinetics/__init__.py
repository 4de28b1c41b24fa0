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
import lazy_loader as _lazy

from ._core import SolverError, has_openmp, num_threads, set_num_threads  # noqa: F401 (in __all__, below)

__version__ = "0.1.0"

# Everything else is imported when first used, so that `import pixelkinetics` stays light (the wings
# bring SciPy's statistics, scikit-learn and matplotlib): the same names, as ordinary imports would give.
__getattr__, __dir__, _lazy_all = _lazy.attach(__name__, ["cli", "floor", "kinetics", "mechanics", "spectra"], {
    # the model contract
    "kinetics.files": ["load_movies", "write_movies"],
    "kinetics.movie": ["Movie"],
    "kinetics.params": ["Params"],
    "kinetics.problem": ["Problem", "Solution"],
    # objects the workflows take and return
    "kinetics.config": ["FitConfig"],
    "kinetics.estimate": ["Estimate"],
    "kinetics.results": ["Results", "load_results", "write_results"],
    # the workflows, one per command
    "kinetics.bootstrap": ["bootstrap"],
    "kinetics.comparison": ["compare"],
    "kinetics.demo": ["demo"],
    "kinetics.fit": ["FitResult", "fit"],
    "kinetics.simulate": ["simulate"],
    "kinetics.stability": ["stability"],
    "kinetics.sweep": ["sweep", "sweep_summary"],
    "kinetics.synthetic": ["synth"],
    "kinetics.uncertainty": ["uq"],
    "mechanics.strain": ["strain", "synth_strain"],
    "spectra.composition": ["composition_movie"],
    "workflows": ["info", "report", "synth_stacks"],
    # processes
    "floor.parallel": ["processes", "world"],
})
__all__ = sorted(set(_lazy_all) | {"SolverError", "has_openmp", "num_threads", "set_num_threads", "__version__"})
