"""The spectral step: STXM image stacks at many X-ray energies to composition movies with uncertainties.

Read stacks (:func:`read_stacks`: NXstxm, SDF .hdr/.xim, plain HDF5 / .npz), reduce them
(:func:`reduce_stacks`: alignment, optical density, PCA and clusters, non-negative reference fits with
propagated sigma), cut particles (:func:`segment`, :func:`particle_movies`) and write a movie file that
``pixelkinetics fit`` reads (:func:`write_spectral_movie`). The pieces are usable on their own;
:func:`composition_movie` is the whole step (``pixelkinetics spectra``); ``pixelkinetics.synth_stacks``
makes synthetic stacks to try it on.
"""
import lazy_loader as _lazy

# Imported when first used (``pixelkinetics`` explains why).
__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "align": ["common_region", "estimate_shifts", "shift_images"],
    "composition": ["CompositionMovie", "composition_movie"],
    "decompose": ["Clusters", "Decomposition", "cluster", "pca"],
    "optical_density": ["OpticalDensity", "auto_i0_region", "log_intensity", "optical_density"],
    "files": ["is_spectral_movie", "read_spectral", "write_spectral_movie"],
    "pipeline": ["SpectralMovie", "SpectraOptions", "particle_movies", "reduce_stacks", "segment"],
    "readers": ["interpolate_spectra", "read_i0", "read_references", "read_sdf", "read_stacks", "write_references",
                "write_stacks"],
    "report": ["write_spectra_report"],
    "stack": ["Stack"],
    "synthetic": ["REFERENCE_NAMES", "fe_l3_references", "movie_stacks"],
    "unmix": ["Unmixing", "fraction", "pseudo_inverse", "thickness", "two_energy_fraction", "unmix"],
})
