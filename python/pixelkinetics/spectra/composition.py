"""The spectral workflow: STXM image stacks to a composition movie file (``pixelkinetics spectra``)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..kinetics.movie import Movie
from .files import write_spectral_movie
from .pipeline import SpectralMovie, SpectraOptions, particle_movies, reduce_stacks, segment
from .readers import interpolate_spectra, read_i0, read_references, read_stacks
from .report import write_spectra_report
from .stack import Stack

logger = logging.getLogger(__name__)

#: Reference spectra: the path of a table or HDF5 file, or (energy (E,), spectra (K, E), names).
References = Union[str, os.PathLike, Tuple[np.ndarray, np.ndarray, Sequence[str]]]


@dataclass
class CompositionMovie:
    """What the spectral step made of the stacks: the reduced maps, the particles' movies, their labels."""

    spectral: SpectralMovie
    movies: List[Movie]
    labels: np.ndarray
    output: Optional[str]
    figures: List[Path]
    wall_time: float

    def summary(self) -> List[str]:
        where = f" written to {self.output}" if self.output else ""
        lines = self.spectral.summary() + [
            f"{len(self.movies)} particle(s) ({', '.join(str(m.n_sites) for m in self.movies)} pixels){where} in "
            f"{self.wall_time:.1f} s"]
        if self.figures:
            lines.append(f"wrote {len(self.figures)} report files to {self.figures[0].parent}")
        return lines


def composition_movie(stacks: Sequence[Union[str, os.PathLike, Stack]], references: References,
                      output: "Optional[str | os.PathLike]" = None, *, names: Optional[Sequence[str]] = None,
                      lithiated: Optional[str] = None, delithiated: Optional[str] = None,
                      times: Optional[Sequence[float]] = None, i0="auto", align: str = "subpixel",
                      align_time: bool = True, background: bool = True, saturation: Optional[float] = None,
                      clusters: int = 3, min_snr: float = 10.0, min_pixels: int = 20,
                      report: "Optional[str | os.PathLike]" = None, progress: bool = True) -> CompositionMovie:
    """STXM image stacks, one per time point, to composition movies with sigma (``pixelkinetics spectra``).

    stacks: stack files (NXstxm, plain HDF5, .npz, SDF .hdr) or :class:`Stack` objects; references: the
    reference spectra (OD per unit amount), a file or (energy, spectra, names); names: the references to fit
    (default: all); lithiated, delithiated: the references of the two phases (default: the first two);
    times: the stacks' times in seconds (default: their time stamps); i0: "auto", a region (row0, row1, col0,
    col1) of bare support in the aligned frame, the path of an I0 spectrum file or I0 rates at the stacks'
    energies; the rest as :class:`SpectraOptions` and :func:`segment` take them. output: the movie file to
    write (``fit`` reads it); report: a folder for the figures of the spectral step (needs ``output``).
    """
    if report is not None and output is None:
        raise ValueError("a report of the spectral step is drawn from its movie file: give an output")
    t0 = time.perf_counter()
    stacks = [s for item in stacks for s in ([item] if isinstance(item, Stack) else read_stacks(item))]
    if not stacks:
        raise ValueError("no stacks given")
    energy = stacks[0].energy
    if isinstance(references, (str, os.PathLike)):
        where = os.fspath(references)
        ref_energy, ref_spectra, ref_names = read_references(where, list(names) if names else None)
    else:
        where = "reference spectra"
        ref_energy, ref_spectra, ref_names = references
    spectra = interpolate_spectra(np.asarray(ref_energy), np.asarray(ref_spectra), energy,
                                  f"{where}: reference spectra")
    if isinstance(i0, (str, os.PathLike)) and os.fspath(i0) != "auto":
        e, rate = read_i0(i0)
        i0 = interpolate_spectra(e, rate, energy, f"{os.fspath(i0)}: I0 spectrum")[0]
    options = SpectraOptions(i0=i0, align=align, align_time=align_time, background=background,
                             saturation=saturation, n_clusters=clusters)
    lithiated = lithiated or ref_names[0]
    delithiated = delithiated or ref_names[1 if len(ref_names) > 1 else 0]
    logger.info(f"{len(stacks)} stacks of {energy.size} energies; composition = {lithiated} / ({lithiated} + "
                f"{delithiated})")
    spectral = reduce_stacks(stacks, spectra, list(ref_names), lithiated, delithiated, options, times,
                             progress=progress)
    labels = segment(spectral, min_snr=min_snr, min_pixels=min_pixels)
    movies = particle_movies(spectral, labels)
    figures: List[Path] = []
    if output is not None:
        write_spectral_movie(output, spectral, movies, labels)
        if report is not None:
            figures = write_spectra_report(output, report)
    return CompositionMovie(spectral, movies, labels, None if output is None else os.fspath(output), figures,
                            time.perf_counter() - t0)
