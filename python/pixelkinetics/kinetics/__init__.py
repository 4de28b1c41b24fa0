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
import lazy_loader as _lazy

# Imported when first used (``pixelkinetics`` explains why).
__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "bootstrap": ["Bootstrap"],
    "comparison": ["Comparison", "ModelScore", "compare_models"],
    "config": ["DegenerateParametersError", "FitConfig"],
    "coordinates": ["FitCoordinates"],
    "estimate": ["Estimate", "data_fingerprint"],
    "files": ["load_movies", "load_populations", "load_truth", "write_movies"],
    "fit": ["FitResult"],
    "movie": ["Movie"],
    "params": ["Params"],
    "problem": ["Problem", "Solution"],
    "report": ["write_report"],
    "results": ["FittedMovie", "Results", "Uncertainty", "add_intervals", "as_estimate", "is_results",
                "load_results", "write_results"],
    "sweep": ["Sweep", "SweepOutcome", "load_sweep", "read_runs", "run_sweep"],
    "synthetic": ["SyntheticTruth", "make_movies", "synth"],
    "truth": ["recovery_lines"],
    "uncertainty": ["Posterior", "laplace"],
})
