"""The parser of the command line: every command, its arguments and their help."""
from __future__ import annotations

import argparse
from typing import List

from .. import __version__
from . import commands
from .arguments import positive


def _synth_options(p: argparse.ArgumentParser, particles: int, sites: List[int]) -> None:
    p.add_argument("--particles", type=int, default=particles, help=f"number of particles (default {particles})")
    p.add_argument("--sites", type=int, nargs=2, default=sites, metavar=("MIN", "MAX"), help="pixels per particle")
    p.add_argument("--frames", type=int, default=8, help="frames per movie (default 8)")
    p.add_argument("--noise", type=float, default=0.02, help="Gaussian noise of the concentration (default 0.02)")
    p.add_argument("--missing", type=float, default=0.0, help="fraction of missing pixels per frame")
    p.add_argument("--driving", choices=("rate", "potential"), default="rate")
    p.add_argument("--scheme", choices=("be", "bdf2"), default="bdf2",
                   help="time stepping of the truth (default bdf2, finer than the fit's)")
    p.add_argument("--n-sub", type=int, default=40, help="steps per frame interval of the truth (default 40)")
    p.add_argument("--seed", type=int, default=0)


DESCRIPTION = """pixelkinetics: learn reaction kinetics of battery particles from X-ray movies.

Commands: demo (synthetic data -> fit -> results and figures), synth, fit, uq, compare, sweep, simulate,
report, info; spectra (STXM image stacks -> composition movie) and synth-stacks; stability (populations);
strain (strain-composition law through elasticity) and synth-strain. fit, uq and sweep share
their work over the ranks of `mpiexec -n N pixelkinetics ...`. Each command is a function of the
Python package (pixelkinetics.fit, pixelkinetics.uq, ...) with the same defaults.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelkinetics", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pixelkinetics {__version__}")
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: OMP_NUM_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="make a synthetic data set with known truth, fit it, write results and figures")
    demo.add_argument("-o", "--output", default="demo_output", help="output directory (default demo_output)")
    _synth_options(demo, particles=12, sites=[150, 300])
    demo.add_argument("--max-iter", type=int, default=None, help="L-BFGS-B iterations (default: the config's)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=commands.demo)

    synth = sub.add_parser("synth", help="write synthetic movies with their ground truth under /truth")
    synth.add_argument("-o", "--output", required=True, help="HDF5 movie file to write")
    _synth_options(synth, particles=40, sites=[300, 700])
    synth.set_defaults(run=commands.synth)

    fit = sub.add_parser("fit", help="fit the model to a movie file")
    fit.add_argument("data", help="HDF5 movie file (MODEL.md section 9)")
    fit.add_argument("-o", "--output", required=True, help="HDF5 results file to write")
    fit.add_argument("--config", help="TOML file with [model], [fit] and [solver] tables")
    fit.add_argument("--max-iter", type=int, default=None, help="L-BFGS-B iterations in total")
    fit.add_argument("--resume", action="store_true", help="continue from OUTPUT.checkpoint")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--uq", action="store_true", help="then the uncertainty analysis (as `pixelkinetics uq`)")

    uq = sub.add_parser("uq", help="error bars, theta sd maps and undetermined combinations of a fit (Laplace), "
                                   "or a parametric bootstrap (--bootstrap N)")
    uq.add_argument("data", help="the HDF5 movie file that was fitted")
    uq.add_argument("results", help="its results file; /uncertainty and theta_sd maps (or /bootstrap) are "
                                    "added to it")
    uq.add_argument("--level", type=float, default=0.95, help="interval probability (default 0.95)")
    uq.add_argument("--free", help="comma-separated free globals to assess instead of the fit's own "
                                   "(an identifiability study at the fitted point)")
    uq.add_argument("--bootstrap", type=positive(int), metavar="N",
                    help="instead of the Laplace approximation: refit N data sets simulated at the estimate, "
                         "new population realisations for snapshots (their spread is not the noise's alone)")
    uq.add_argument("--method", choices=["corrected", "normal", "basic"], default=None,
                    help="bootstrap interval: corrected (the replicates' bias removed, +- q sd; the default), "
                         "normal (estimate +- q sd) or basic (from the replicates' quantiles; needs many)")
    uq.add_argument("--seed", type=positive(int, zero=True), default=None, help="bootstrap random seed (default 0)")
    uq.add_argument("--resume", action="store_true", help="continue a bootstrap from RESULTS.bootstrap-checkpoint")
    uq.add_argument("--quiet", action="store_true", help="no progress bar")
    uq.set_defaults(run=commands.uq)

    compare = sub.add_parser("compare", help="fit and rank j0 bases and Legendre orders by Laplace evidence")
    compare.add_argument("data", help="HDF5 movie file")
    compare.add_argument("--config", help="TOML file: the fit settings shared by the candidates")
    compare.add_argument("--bases", default="one,sqrt,asym", help="j0 bases (default one,sqrt,asym)")
    compare.add_argument("--orders", default="2", help="Legendre orders Mb of ln j0 (default 2)")
    compare.add_argument("-o", "--output", help="CSV file of the table")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.set_defaults(run=commands.compare)
    fit.set_defaults(run=commands.fit)

    sweep = sub.add_parser("sweep", help="run a grid or list of fits or solver variants (over MPI ranks if any)")
    sweep.add_argument("sweep", help="TOML sweep file (see pixelkinetics.kinetics.sweep)")
    sweep.add_argument("-o", "--output", help="sweep results file (default: the sweep file's 'output', or "
                                              "its name with .h5)")
    sweep.add_argument("--resume", action="store_true", help="skip the runs already stored in the output")
    sweep.add_argument("--retry-failed", action="store_true", help="with --resume: run failed runs again")
    sweep.add_argument("--csv", help="summary CSV (default: the output's name with .csv)")
    sweep.add_argument("--summary", action="store_true", help="print the stored summary table, run nothing")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(run=commands.sweep)

    simulate = sub.add_parser("simulate", help="simulate the movies of a data file with given parameters")
    simulate.add_argument("data", help="HDF5 movie file: masks, times, driving")
    simulate.add_argument("-o", "--output", required=True, help="HDF5 movie file of the simulated movies")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--results", help="results file: its parameters, theta maps and initial states")
    source.add_argument("--config", help="TOML file: its [model] parameters (theta = 0)")
    simulate.set_defaults(run=commands.simulate)

    report = sub.add_parser("report", help="write the figures of a results file (fit or strain) or of a `spectra` "
                                           "movie file")
    report.add_argument("results", help="HDF5 results file, or a movie file written by `spectra`")
    report.add_argument("-o", "--output", required=True, help="directory for the PNG figures")
    report.set_defaults(run=commands.report)

    spectra = sub.add_parser("spectra", help="STXM image stacks (one per time point) -> composition movie with sigma")
    spectra.add_argument("stacks", nargs="+", help="stack files: NXstxm or plain HDF5, .npz, or SDF .hdr (+ .xim)")
    spectra.add_argument("-o", "--output", required=True, help="HDF5 movie file to write (input of `fit`)")
    spectra.add_argument("--references", required=True,
                         help="reference spectra: text table 'energy name1 name2 ...' or HDF5 (/energy + one "
                              "dataset per phase), OD per unit amount")
    spectra.add_argument("--names", help="comma-separated references to fit (default: all in the file)")
    spectra.add_argument("--lithiated", help="reference of the lithiated phase (default: the first)")
    spectra.add_argument("--delithiated", help="reference of the delithiated phase (default: the second)")
    spectra.add_argument("--times", help="comma-separated stack times in seconds (default: the files' time stamps)")
    spectra.add_argument("--i0", default="auto", help="'auto' (bright region), ROW0:ROW1,COL0:COL1 (region of "
                                                      "bare support, aligned frame) or an I0 spectrum file")
    spectra.add_argument("--align", choices=("subpixel", "integer", "none"), default="subpixel")
    spectra.add_argument("--no-time-align", action="store_true", help="do not register the stacks to the first")
    spectra.add_argument("--no-background", action="store_true", help="no constant OD background in the fits")
    spectra.add_argument("--saturation", type=float, help="counts at or above this are masked")
    spectra.add_argument("--clusters", type=int, default=3, help="k-means clusters (default 3)")
    spectra.add_argument("--min-snr", type=float, default=10.0,
                         help="particle pixels: amount above this many standard deviations (default 10)")
    spectra.add_argument("--min-pixels", type=int, default=20, help="smallest particle in pixels (default 20)")
    spectra.add_argument("--report", help="directory for the figures of the spectral step")
    spectra.add_argument("--quiet", action="store_true", help="no progress bar")
    spectra.set_defaults(run=commands.spectra)

    synth_stacks = sub.add_parser("synth-stacks", help="write synthetic STXM stacks of a simulated particle movie")
    synth_stacks.add_argument("-o", "--output", required=True, help="plain HDF5 stack file to write")
    _synth_options(synth_stacks, particles=4, sites=[150, 300])
    synth_stacks.add_argument("--energies", type=int, default=50, help="energies per stack (default 50)")
    synth_stacks.add_argument("--i0-rate", type=float, default=2e6, help="incident counts per second (default 2e6)")
    synth_stacks.add_argument("--dwell", type=float, default=2e-3, help="dwell per pixel in seconds (default 2e-3)")
    synth_stacks.set_defaults(run=commands.synth_stacks)

    stability = sub.add_parser("stability", help="where a driven population splits: analytic diagram over "
                                                 "(current, composition) next to simulated populations")
    stability.add_argument("-o", "--output", required=True, help="PNG figure to write")
    stability.add_argument("--config", help="TOML file whose [model] holds the parameters (default: a layered "
                                            "oxide with a logistic j0, s = 40, c* = 0.5)")
    stability.add_argument("--grid", type=int, default=10, help="points per axis (default 10)")
    stability.add_argument("--max-current", type=float, default=5e-2, help="largest |dc/dt| in 1/s (default 5e-2)")
    stability.add_argument("--particles", type=int, default=100, help="particles per simulated population")
    stability.set_defaults(run=commands.stability)

    strain = sub.add_parser("strain", help="learn the strain-composition law (Vegard) of correlated strain and "
                                           "composition maps through elasticity")
    strain.add_argument("data", help="HDF5 file with a /strain group (pixelkinetics.mechanics.files)")
    strain.add_argument("-o", "--output", required=True, help="HDF5 results file to write")
    strain.add_argument("--order", type=positive(int), default=1, help="terms of the law: 1 is Vegard's (default 1)")
    strain.add_argument("--fit-stiffness", action="store_true", help="also fit the stiffness ratios (L-BFGS)")
    strain.add_argument("--hold-out", nargs="+", default=[], metavar="NAME",
                        help="particles left out of the fit and predicted with the learned law")
    strain.add_argument("--sigma", type=positive(float), default=None,
                        help="strain noise (default: the file's strain_sigma, else estimated)")
    strain.add_argument("--composition-draws", type=positive(int, zero=True), default=16,
                        help="redraws that propagate composition sigma (default 16)")
    strain.add_argument("--report", help="directory for the figures and summary")
    strain.add_argument("--quiet", action="store_true", help="no progress bar")
    strain.set_defaults(run=commands.strain)

    synth_strain = sub.add_parser("synth-strain", help="write synthetic strain and composition maps of "
                                                       "LiFePO4-like particles with their truth")
    synth_strain.add_argument("-o", "--output", required=True, help="HDF5 strain file to write")
    synth_strain.add_argument("--patterns", default="two-phase,core-shell,blobs,linear",
                              help="comma-separated composition patterns, one particle each")
    synth_strain.add_argument("--size", type=positive(int), default=96, help="pixels per side (default 96)")
    synth_strain.add_argument("--noise", type=positive(float, zero=True), default=1e-3,
                              help="strain noise (default 1e-3)")
    synth_strain.add_argument("--composition-noise", type=positive(float, zero=True), default=0.0,
                              help="noise of the composition map, written as its sigma (default 0)")
    synth_strain.add_argument("--angle-deg", type=float, default=0.0, help="crystal axis a from image x")
    synth_strain.add_argument("--convention", choices=("real", "py4dstem"), default="py4dstem",
                              help="how the strain maps are written (default py4dstem)")
    synth_strain.add_argument("--seed", type=int, default=0)
    synth_strain.set_defaults(run=commands.synth_strain)

    info = sub.add_parser("info", help="summarise a movie or results file")
    info.add_argument("data", help="HDF5 file")
    info.set_defaults(run=commands.info)
    return parser
