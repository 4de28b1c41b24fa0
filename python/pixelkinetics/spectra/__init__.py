"""The spectral step: STXM image stacks at many X-ray energies to composition movies with uncertainties.

Read stacks (:func:`read_stacks`: NXstxm, SDF .hdr/.xim, plain HDF5 / .npz), reduce them
(:func:`reduce_stacks`: alignment, optical density, PCA and clusters, non-negative reference fits with
propagated sigma), cut particles (:func:`segment`, :func:`particle_movies`) and write a movie file that
``pixelkinetics fit`` reads (:func:`write_spectral_movie`). The pieces are usable on their own;
:func:`composition_movie` is the whole step (``pixelkinetics spectra``) and :func:`synth_stacks` makes
synthetic stacks to try it on.
"""
from .align import common_region, estimate_shifts, shift_images
from .composition import CompositionMovie, composition_movie, synth_stacks
from .decompose import Clusters, Decomposition, cluster, pca
from .optical_density import OpticalDensity, auto_i0_region, log_intensity, optical_density
from .pipeline import (
                       SpectralMovie,
                       SpectraOptions,
                       particle_movies,
                       read_spectral,
                       reduce_stacks,
                       segment,
                       write_spectral_movie,
)
from .readers import interpolate_spectra, read_i0, read_references, read_sdf, read_stacks
from .stack import Stack
from .unmix import Unmixing, fraction, pseudo_inverse, thickness, two_energy_fraction, unmix

__all__ = [
    "Clusters", "CompositionMovie", "Decomposition", "OpticalDensity", "SpectralMovie", "SpectraOptions", "Stack",
    "Unmixing", "auto_i0_region", "cluster", "common_region", "composition_movie", "estimate_shifts", "fraction",
    "interpolate_spectra", "log_intensity", "optical_density", "particle_movies", "pca", "pseudo_inverse", "read_i0",
    "read_references", "read_sdf", "read_spectral", "read_stacks", "reduce_stacks", "segment", "shift_images",
    "synth_stacks", "thickness", "two_energy_fraction", "unmix", "write_spectral_movie",
]
