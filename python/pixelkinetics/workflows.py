"""The workflows that span the wings: a report of any file the package writes and a summary of any file it
reads (``pixelkinetics report`` and ``info``), which ask the wings what a file is and hand it to the one
that owns it, and synthetic STXM stacks of a simulated movie (``pixelkinetics synth-stacks``: kinetics
simulates, spectra observes). The wings load what is asked of them only (their names are attached lazily),
so that ``info`` does not import the plotting of every wing."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

import h5py
import numpy as np

from . import kinetics, mechanics, spectra
from .floor.units import duration


def file_kind(path: "str | os.PathLike") -> str:
    """What an HDF5 file of the package holds: a fit's "results", "strain-results", a "spectral-movie" (the
    movie file of ``spectra``) or "movies" (anything else: the movie reader says what is wrong with it)."""
    try:
        with h5py.File(path, "r") as f:
            if mechanics.is_strain_results(f):
                return "strain-results"
            if kinetics.is_results(f):
                return "results"
            if spectra.is_spectral_movie(f):
                return "spectral-movie"
    except OSError:
        pass  # not readable: the reader of movies reports it with the file's name
    return "movies"


@dataclass
class Report:
    """The figures (and summary) a report wrote, and, for a fit of synthetic data, its recovery of the truth."""

    kind: str
    figures: List[Path]
    recovery: List[str] = field(default_factory=list)

    def summary(self) -> List[str]:
        what = {"results": "", "strain-results": " of the strain fit", "spectral-movie": " of the spectral step"}
        folder = self.figures[0].parent if self.figures else "?"
        if self.kind != "results":
            return [f"wrote {len(self.figures)} files{what[self.kind]} to {folder}"]
        return ([f"wrote {len(self.figures)} files to {folder}:"] + [f"  {f}" for f in self.figures]
                + [f"  {line}" for line in self.recovery])


def report(source, output: "str | os.PathLike") -> Report:
    """The figures of a results file (a fit or a strain fit), of a movie file written by ``spectra``, or of
    :class:`~pixelkinetics.kinetics.results.Results` in memory (``Results.of_fit(result, movies)`` for a fit
    just made), written into the folder ``output`` (``pixelkinetics report``)."""
    if isinstance(source, kinetics.Results):
        return _fit_report(source, output)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"report draws a results file or Results, got {type(source).__name__} (a fit's Results: "
                        "Results.of_fit(result, movies))")
    kind = file_kind(source)
    if kind == "strain-results":
        return Report(kind, mechanics.write_strain_report(source, output))
    if kind == "spectral-movie":
        return Report(kind, spectra.write_spectra_report(source, output))
    return _fit_report(kinetics.load_results(source), output)


def _fit_report(results, output) -> Report:
    figures = kinetics.write_report(results, output)
    return Report("results", figures, kinetics.recovery_lines(results) if results.truth is not None else [])


def info(path: "str | os.PathLike") -> List[str]:
    """A summary of a movie or results file (``pixelkinetics info``), line by line."""
    path = os.fspath(path)
    if file_kind(path) == "results":
        r = kinetics.load_results(path)
        return [f"{path}: results of a fit of {len(r.particles)} particle(s) to {r.fit.get('data', '?')}",
                f"  {r.fit['message']}; {r.fit['n_iter']} iterations, {r.fit['n_fev']} evaluations, "
                f"{r.fit.get('n_hessp', 0)} Hessian-vector products, reduced chi-square {r.fit['reduced_chi2']:.4f}",
                "  " + ", ".join(f"{k} {v:.4g}" for k, v in r.params.values().items())]
    movies = kinetics.load_movies(path)
    lines = [f"{path}: {len(movies)} particle(s)"]
    for m in movies:
        T, H, W = m.shape
        missing = np.isnan(m.concentration[:, m.mask]).mean()
        lines.append(f"  {m.name}: {T} frames over {duration(m.time[-1] - m.time[0])}, {H}x{W} pixels, "
                     f"{m.n_sites} sites, {m.driving} driving, {100 * missing:.1f}% missing")
    return lines


def synth_stacks(output: "str | os.PathLike", *, particles: int = 4, sites: Tuple[int, int] = (150, 300),
                 frames: int = 8, energies: int = 50, i0_rate: float = 2e6, dwell: float = 2e-3,
                 seed: int = 0) -> Tuple[list, str]:
    """Synthetic STXM stacks of a simulated movie (``pixelkinetics synth-stacks``): Poisson counts with
    stage drift, written to ``output`` (plain HDF5), with the reference spectra beside it
    (OUTPUT_references.txt). Returns the stacks and the references' path."""
    movies, truth = kinetics.synth(particles=particles, sites=sites, frames=frames, noise=0.0, n_sub=40, seed=seed)
    stacks, _, _, _, _ = spectra.movie_stacks([m.mask for m in movies], [truth.concentration[m.name] for m in movies],
                                              movies[0].time, n_energies=energies, i0_rate=i0_rate, dwell=dwell,
                                              rng=seed)
    spectra.write_stacks(output, stacks)
    references = os.path.splitext(os.fspath(output))[0] + "_references.txt"
    energy = np.linspace(698.0, 732.0, 341)
    spectra.write_references(references, energy, spectra.fe_l3_references(energy), list(spectra.REFERENCE_NAMES))
    return stacks, references
