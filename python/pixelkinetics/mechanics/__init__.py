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
from .elastic import (
    COMPONENTS,
    LFP_AC,
    LFP_CIJ,
    ElasticModel,
    StrainParticle,
    axis_tensor,
    basis,
    plane_stress,
    rotate_stiffness,
    voigt_rotation,
)
from .files import (
    StrainData,
    from_py4dstem,
    read_strain,
    read_strain_results,
    to_py4dstem,
    write_strain,
    write_strain_results,
)
from .stiffness import ReducedLoss, StiffnessFit, fit_stiffness_ratios, stiffness_from_parameters, stiffness_parameters
from .strain import StrainFit
from .synthetic import LFP_MISFIT, PATTERNS, composition_pattern, synthetic_particle
from .vegard import (
    CompositionNoise,
    Prediction,
    VegardFit,
    VegardProblem,
    composition_noise,
    fit_vegard,
    naive_regression,
    predict_strain,
)

__all__ = [
    "COMPONENTS", "CompositionNoise", "LFP_AC", "LFP_CIJ", "LFP_MISFIT", "PATTERNS", "ElasticModel", "Prediction",
    "ReducedLoss", "StiffnessFit", "StrainData", "StrainFit", "StrainParticle", "VegardFit", "VegardProblem",
    "axis_tensor", "basis", "composition_noise", "composition_pattern", "fit_stiffness_ratios", "fit_vegard",
    "from_py4dstem", "naive_regression", "plane_stress", "predict_strain", "read_strain", "read_strain_results",
    "rotate_stiffness", "stiffness_from_parameters", "stiffness_parameters", "synthetic_particle",
    "to_py4dstem", "voigt_rotation", "write_strain", "write_strain_results",
]
