"""The movie file of the spectral step (MODEL.md section 9): the particles' composition movies that
``pixelkinetics fit`` reads, with the maps and diagnostics of the whole field of view under ``/spectra``."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import h5py
import numpy as np

from ..floor.hdf5 import open_file, string_array, strings
from ..kinetics.files import write_movies
from ..kinetics.movie import Movie

if TYPE_CHECKING:  # annotations only: reading the file needs none of the reduction
    from .pipeline import SpectralMovie


def write_spectral_movie(path: "str | os.PathLike", spectral: SpectralMovie, movies: Sequence[Movie],
                         labels: np.ndarray) -> None:
    """The movie file of ``movies`` (MODEL.md section 9, with sigma) plus ``/spectra``: the maps of the whole
    field of view, shifts, crop, I0, masking counts, PCA and clusters; written atomically."""
    def extra(f: h5py.File) -> None:
        g = f.create_group("spectra")
        g["time"] = spectral.time
        g["energy"] = spectral.energy
        g["references"] = spectral.references
        g["reference_names"] = string_array(spectral.names)
        g.attrs["lithiated"] = spectral.lithiated
        g.attrs["delithiated"] = spectral.delithiated
        g["shifts"] = spectral.shifts
        g["crop"] = np.array(spectral.crop)
        for key in ("composition", "sigma", "amount", "amount_sd", "background", "reduced_chi2", "clusters"):
            value = getattr(spectral, key)
            if value is not None:
                g.create_dataset(key, data=value, compression="gzip")
        g["labels"] = labels.astype(np.int32)
        g["cluster_spectra"] = spectral.cluster_spectra
        d = spectral.decomposition
        p = g.create_group("pca")
        p["singular_values"] = d.singular_values
        p["components"] = d.components
        p.attrs["noise_edge"] = d.noise_edge
        p.attrs["n_components"] = d.n_components
        p.attrs["n_pixels"] = d.n_pixels
        g["n_components"] = spectral.n_components
        g["i0"] = spectral.i0
        g["i0_pixels"] = spectral.i0_pixels
        g["unfitted"] = spectral.unfitted
        m = g.create_group("masked")
        for reason, counts in spectral.masked.items():
            m[reason] = counts
        g["sources"] = string_array(spectral.sources)

    write_movies(path, movies, extra=extra)


def is_spectral_movie(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a movie file written by :func:`write_spectral_movie`."""
    return "spectra" in f


def read_spectral(path: "str | os.PathLike") -> dict:
    """The ``/spectra`` group of a file written by :func:`write_spectral_movie` as a dict of arrays."""
    path = os.fspath(path)
    with open_file(path) as f:
        if not is_spectral_movie(f):
            raise ValueError(f"{path}: /spectra is missing (not written by pixelkinetics spectra)")
        g = f["spectra"]
        out = {k: v[()] for k, v in g.items() if isinstance(v, h5py.Dataset)}
        out.update(dict(g.attrs))
        out["pca"] = dict({k: v[()] for k, v in g["pca"].items()}, **dict(g["pca"].attrs))
        out["masked"] = {k: v[()] for k, v in g["masked"].items()}
        out["reference_names"] = strings(out["reference_names"])
        return out
