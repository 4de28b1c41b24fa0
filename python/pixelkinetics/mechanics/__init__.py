"""Chemo-mechanics: learn the strain-composition law (Vegard) through the equations of elasticity.

A particle that is not uniformly lithiated constrains itself: its measured lattice strain is the elastic
response to the composition misfit, not the misfit, so regressing strain on composition pixel by pixel
is biased (:func:`naive_regression`). :func:`fit_vegard` fits the law through plane-stress elasticity on
the masked pixels (the C++ core's ElasticBatch): the law's coefficients and their covariance by linear
least squares on the basis responses, stiffness ratios by L-BFGS with adjoint gradients
(:mod:`.stiffness`). Files: :func:`read_strain` (py4DSTEM's convention handled), :func:`write_strain_results`.
The workflows of ``pixelkinetics strain`` and ``synth-strain`` are :func:`.strain.strain` and
:func:`.strain.synth_strain` (``pixelkinetics.strain`` and ``pixelkinetics.synth_strain``).
"""
import lazy_loader as _lazy

# Imported when first used (``pixelkinetics`` explains why).
__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "elastic": ["COMPONENTS", "LFP_AC", "LFP_CIJ", "ElasticModel", "StrainParticle", "axis_tensor", "basis",
                "plane_stress", "rotate_stiffness", "voigt_rotation"],
    "files": ["StrainData", "from_py4dstem", "is_strain_results", "read_strain", "read_strain_results",
              "to_py4dstem", "write_strain", "write_strain_results"],
    "report": ["write_strain_report"],
    "stiffness": ["ReducedLoss", "StiffnessFit", "fit_stiffness_ratios", "stiffness_from_parameters",
                  "stiffness_parameters"],
    "strain": ["StrainFit"],
    "synthetic": ["LFP_MISFIT", "PATTERNS", "composition_pattern", "synthetic_particle"],
    "vegard": ["CompositionNoise", "Prediction", "VegardFit", "VegardProblem", "composition_noise", "fit_vegard",
               "naive_regression", "predict_strain"],
})
