"""pixelkinetics: learn reaction kinetics of battery particles from X-ray movies.

Commands: demo (synthetic data -> fit -> results and figures), synth, fit, uq, compare, sweep, simulate,
report, info; spectra (STXM image stacks -> composition movie) and synth-stacks; stability (populations);
strain (strain-composition law through elasticity) and synth-strain. fit, uq and sweep share
their work over the ranks of `mpiexec -n N pixelkinetics ...`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from . import __version__
from ._core import SolverError, has_openmp, num_threads, set_num_threads
from .parallel import CollectiveError, agree, on_root, rank_of, size_of, world

#: Ground truth of ``synth`` and ``demo``: a j0(c) with a learned shape (b1, b2) on the sqrt base.
SYNTH_TRUTH = dict(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0, 0.5, -0.3], j0_base="sqrt")


def _synthesize(args: argparse.Namespace, path: Path):
    from .io import write_movies
    from .params import Params
    from .synthetic import make_movies

    movies, truth = make_movies(n_particles=args.particles, sites=tuple(args.sites), n_frames=args.frames,
                                noise=args.noise, missing=args.missing, driving=args.driving,
                                params=Params(**SYNTH_TRUTH), scheme=args.scheme, n_sub=args.n_sub, seed=args.seed)
    write_movies(path, movies, truth)
    return movies, truth


def _load_config(path: Optional[str]):
    from .fit import FitConfig

    return FitConfig.from_toml(path) if path else FitConfig()


def _print_fit_summary(result, movies) -> None:
    n_sites = sum(m.n_sites for m in movies)
    print(f"  {result.message}")
    work = f"{result.n_fev} loss-and-gradient evaluations ({result.time_fev / max(result.n_fev - 1, 1):.3f} s each)"
    if result.n_hessp:
        work += (f", {result.n_hessp} Hessian-vector products "
                 f"({result.time_hessp / result.n_hessp:.3f} s each)")
    print(f"  {len(movies)} particles, {n_sites} sites: {result.n_iter} iterations, {work}; "
          f"{result.wall_time:.1f} s in all")
    print(f"  loss {result.loss:.6g}, reduced chi-square {result.reduced_chi2:.4f} "
          f"({result.n_obs} observations, {result.n_free} free parameters)")
    values = result.params.values()
    print("  " + ", ".join(f"{n} {values[n]:.4g}" for n in result.config.free))


def _run_fit(data: str, output: str, config, resume: bool, quiet: bool, max_iter: Optional[int], comm=None):
    from .fit import fit
    from .io import load_movies, load_truth, write_results

    movies = agree(comm, lambda: load_movies(data))
    checkpoint = f"{output}.checkpoint"
    if os.path.exists(checkpoint) and not resume:
        print(f"  {checkpoint} exists from an earlier run; starting afresh (pass --resume to continue it)")
    if resume and not os.path.exists(checkpoint):
        print(f"  no checkpoint {checkpoint}: starting afresh")
    result = fit(movies, config, checkpoint=checkpoint, resume=resume, progress=not quiet, max_iter=max_iter,
                 comm=comm)

    def write():
        write_results(output, result, movies, data_path=data, truth=load_truth(data))
        if os.path.exists(checkpoint):
            os.remove(checkpoint)

    on_root(comm, write)
    return result, movies


def _recovery_lines(results) -> List[str]:
    from .report import theta_correlation

    true_params, true_theta = results.truth
    masks = {n: p.mask for n, p in results.particles.items() if n in true_theta}
    fitted = {n: results.particles[n].theta for n in masks}
    corr = theta_correlation(fitted, true_theta, masks, remove_mean=True)
    lines = [f"  theta correlation with the truth (per-particle means removed): {corr:.4f}"]
    truth_values, fit_values = true_params.values(), results.params.values()
    for name in results.fit["free"]:
        t, v = truth_values.get(name, 0.0), fit_values[name]
        err = f"{100 * (v - t) / t:+.1f}%" if t != 0 else f"{v - t:+.3g} (absolute)"
        lines.append(f"  {name:6s} fitted {v:9.4g}   truth {t:9.4g}   error {err}")
    return lines


def _demo(args: argparse.Namespace) -> int:
    from .fit import FitConfig
    from .io import load_results
    from .report import write_report

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(f"pixelkinetics {__version__} demo: {args.particles} synthetic particles, fit, report "
          f"({num_threads()} OpenMP thread(s){'' if has_openmp() else ', built without OpenMP'})")
    data, results_path = out / "demo_data.h5", out / "demo_results.h5"
    t0 = time.perf_counter()
    movies, _ = _synthesize(args, data)
    print(f"  wrote {data}: {sum(m.n_sites for m in movies)} sites, {args.frames} frames, noise {args.noise} "
          f"({time.perf_counter() - t0:.1f} s)")
    result, movies = _run_fit(str(data), str(results_path), FitConfig(), resume=False, quiet=args.quiet,
                              max_iter=args.max_iter)
    _print_fit_summary(result, movies)
    results = load_results(results_path)
    print("\n".join(_recovery_lines(results)))
    figures = write_report(results, out / "report")
    print(f"  wrote {results_path} and {len(figures)} report files in {out / 'report'}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    movies, _ = _synthesize(args, Path(args.output))
    print(f"wrote {args.output}: {len(movies)} particles, {sum(m.n_sites for m in movies)} sites, "
          f"{args.frames} frames, noise {args.noise}, {100 * args.missing:.0f}% missing, truth under /truth")
    return 0


def _where(comm) -> str:
    """The processes of a run, for its first line."""
    threads = f"{num_threads()} thread(s)"
    return threads if size_of(comm) == 1 else f"{size_of(comm)} MPI ranks x {threads}"


def _fit(args: argparse.Namespace) -> int:
    config = agree(args.comm, lambda: _load_config(args.config))
    print(f"pixelkinetics fit {args.data} -> {args.output} (free: {', '.join(config.free) or 'none'}"
          f"{', theta' if config.fit_theta else ''}{', c0' if config.fit_initial else ''}; {_where(args.comm)})")
    result, movies = _run_fit(args.data, args.output, config, args.resume, args.quiet, args.max_iter, args.comm)
    _print_fit_summary(result, movies)
    if args.uq:
        _run_uq(args.data, args.output, 0.95, None, args.quiet, args.comm)
    return 0


def _results_config(results, where: str):
    """The FitConfig a results file was fitted with."""
    from .fit import FitConfig

    if "config" not in results.fit:
        raise ValueError(f"{where}: /fit has no config attribute (written by an old version); fit again")
    return FitConfig.from_dict(json.loads(results.fit["config"]), where=where)


def _read_fitted(data: str, results_path: str, comm=None):
    """(movies, results, config, theta maps, c0 maps) of a fitted data file, read on every rank."""
    from .io import load_movies, load_results

    def read():
        movies = load_movies(data)
        results = load_results(results_path)
        missing = [m.name for m in movies if m.name not in results.particles]
        if missing:
            raise ValueError(f"{results_path}: no fit for the particles {missing} of {data}")
        return movies, results, _results_config(results, results_path)

    movies, results, config = agree(comm, read)
    theta = {m.name: results.particles[m.name].theta for m in movies}
    c0 = {m.name: results.particles[m.name].c0 for m in movies}
    return movies, results, config, theta, c0


def _run_uq(data: str, results_path: str, level: float, free: Optional[str], quiet: bool, comm=None) -> None:
    import dataclasses

    from .io import write_uncertainty
    from .uncertainty import laplace

    movies, results, config, theta, c0 = _read_fitted(data, results_path, comm)
    if free is not None:  # what if these were free: an identifiability study at the fitted point
        config = dataclasses.replace(config, free=[n.strip() for n in free.split(",") if n.strip()])
    posterior = laplace(movies, config, results.params, theta, c0, level=level, progress=not quiet, comm=comm)
    on_root(comm, lambda: write_uncertainty(results_path, posterior))
    print("\n".join("  " + line for line in posterior.summary()))
    print(f"  wrote /uncertainty and theta_sd maps into {results_path}")


def _run_bootstrap(args: argparse.Namespace) -> None:
    from .bootstrap import bootstrap
    from .io import write_bootstrap

    if args.free is not None:
        raise ValueError("--free is a Laplace identifiability study; the bootstrap refits the fit's own free set")
    if not 0 < args.level < 1:
        raise ValueError(f"--level must lie in (0, 1), got {args.level}")

    movies, results, config, theta, c0 = _read_fitted(args.data, args.results, args.comm)
    print(f"pixelkinetics uq --bootstrap {args.bootstrap}: {len(movies)} particles, seed {args.seed or 0} "
          f"({_where(args.comm)})")
    checkpoint = f"{args.results}.bootstrap-checkpoint"
    if os.path.exists(checkpoint) and not args.resume:
        print(f"  {checkpoint} exists from an earlier run; starting afresh (pass --resume to continue it)")
    if args.resume and not os.path.exists(checkpoint):
        print(f"  no checkpoint {checkpoint}: starting afresh")
    boot = bootstrap(movies, config, results.params, theta, c0, args.bootstrap, level=args.level,
                     method=args.method or "corrected", seed=args.seed or 0, progress=not args.quiet,
                     checkpoint=checkpoint, resume=args.resume, comm=args.comm)

    def write():
        write_bootstrap(args.results, boot)
        if os.path.exists(checkpoint):  # only once the refits are stored
            os.remove(checkpoint)

    on_root(args.comm, write)
    print("\n".join("  " + line for line in boot.summary()))
    print(f"  wrote /bootstrap into {args.results}")


def _uq(args: argparse.Namespace) -> int:
    if args.bootstrap:
        _run_bootstrap(args)
        return 0
    given = [flag for flag, value in (("--method", args.method), ("--seed", args.seed), ("--resume", args.resume))
             if value not in (None, False)]
    if given:
        raise ValueError(f"{', '.join(given)} belong to the bootstrap: add --bootstrap N")
    _run_uq(args.data, args.results, args.level, args.free, args.quiet, args.comm)
    return 0


def _compare(args: argparse.Namespace) -> int:
    import csv

    from .io import atomic_file, load_movies
    from .uncertainty import compare_models

    movies = load_movies(args.data)
    config = _load_config(args.config)
    bases = [b.strip() for b in args.bases.split(",") if b.strip()]
    orders = [int(o) for o in args.orders.split(",") if o.strip()]
    comparison = compare_models(movies, config, bases=bases, orders=orders, progress=not args.quiet)
    print("\n".join(comparison.table()))
    if args.output:
        with atomic_file(args.output) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["j0_base", "order", "log_evidence", "bic", "reduced_chi2", "converged", "n_hessp"])
            for s in comparison.scores:
                w.writerow([s.j0_base, s.order, s.posterior.log_evidence, s.posterior.bic, s.reduced_chi2,
                            s.converged, s.posterior.n_hessp])
        print(f"wrote {args.output}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import format_table, load_sweep, read_runs, run_sweep, summary_rows, write_csv

    comm = args.comm
    sweep = agree(comm, lambda: load_sweep(args.sweep, args.output))
    order = [t.name for t in sweep.tasks]
    if args.summary:
        records = read_runs(sweep.output) if os.path.exists(sweep.output) else {}
        print("\n".join(format_table(summary_rows(records, sweep.kind, sweep.reference, order))))
        return 0
    print(f"pixelkinetics sweep {args.sweep} -> {sweep.output}: {len(sweep.tasks)} {sweep.kind} runs "
          f"({_where(comm) if size_of(comm) == 1 else f'{size_of(comm) - 1} worker ranks'})")
    outcome = run_sweep(sweep, resume=args.resume, retry_failed=args.retry_failed, comm=comm,
                        progress=not args.quiet)
    if outcome is None:  # a worker rank
        return 0
    if outcome.skipped:
        print(f"  skipped {len(outcome.skipped)} run(s) already stored")
    rows = summary_rows(outcome.records, sweep.kind, sweep.reference, order)
    print("\n".join(format_table(rows)))
    csv_path = args.csv or os.path.splitext(sweep.output)[0] + ".csv"
    write_csv(csv_path, rows)
    n_failed = sum(r["status"] != "ok" for r in rows)
    print(f"  wrote {sweep.output} and {csv_path}" + (f"; {n_failed} run(s) failed" if n_failed else ""))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import dataclasses

    from .io import load_movies, load_results, write_movies
    from .problem import Problem

    movies = load_movies(args.data)
    config = _load_config(args.config)
    params, theta, c0 = config.initial, None, None
    if args.results:
        results = load_results(args.results)
        if not args.config and "config" in results.fit:  # the fit's own numerics reproduce its movies
            config = _results_config(results, args.results)
        params = results.params
        theta = {n: p.theta for n, p in results.particles.items() if n in {m.name for m in movies}}
        c0 = {n: p.c0 for n, p in results.particles.items() if n in theta}
    problem = Problem(movies, scheme=config.scheme, n_sub=config.n_sub, newton_tol=config.newton_tol)
    solution = problem.solve(params, theta, c0)
    # The data's movies with the model's frames: populations stay populations, every particle tracked.
    out = [dataclasses.replace(m, concentration=solution.concentration[m.name], sigma=None, matching="tracked",
                               voltage=solution.voltage[m.name] if m.driving == "potential" else m.voltage)
           for m in movies]
    write_movies(args.output, out)
    s = solution.stats
    print(f"wrote {args.output}: {len(out)} simulated particles ({s['n_steps']} steps, {s['n_newton']} Newton "
          f"iterations)")
    return 0


def _report(args: argparse.Namespace) -> int:
    import h5py

    from .io import load_results
    from .report import write_report

    try:
        with h5py.File(args.results, "r") as f:
            spectral = "spectra" in f and "fit" not in f
            strain = "vegard" in f
    except OSError:
        spectral = strain = False  # load_results reports it
    if strain:
        from .mechanics.report import write_strain_report

        figures = write_strain_report(args.results, args.output)
        print(f"wrote {len(figures)} files of the strain fit to {args.output}")
        return 0
    if spectral:
        from .spectra.report import write_spectra_report

        figures = write_spectra_report(args.results, args.output)
        print(f"wrote {len(figures)} files of the spectral step to {args.output}")
        return 0
    results = load_results(args.results)
    figures = write_report(results, args.output)
    print(f"wrote {len(figures)} files to {args.output}:")
    for f in figures:
        print(f"  {f}")
    if results.truth is not None:
        print("\n".join(_recovery_lines(results)))
    return 0


def _info(args: argparse.Namespace) -> int:
    import h5py

    from .io import load_movies, load_results

    try:
        with h5py.File(args.data, "r") as f:
            is_results = "fit" in f and "parameters" in f
    except OSError:
        is_results = False  # load_movies reports it
    if is_results:
        r = load_results(args.data)
        print(f"{args.data}: results of a fit of {len(r.particles)} particle(s) to {r.fit.get('data', '?')}")
        print(f"  {r.fit['message']}; {r.fit['n_iter']} iterations, {r.fit['n_fev']} evaluations, "
              f"{r.fit.get('n_hessp', 0)} Hessian-vector products, reduced chi-square {r.fit['reduced_chi2']:.4f}")
        print("  " + ", ".join(f"{k} {v:.4g}" for k, v in r.params.values().items()))
        return 0
    movies = load_movies(args.data)
    print(f"{args.data}: {len(movies)} particle(s)")
    for m in movies:
        T, H, W = m.shape
        missing = np.isnan(m.concentration[:, m.mask]).mean()
        print(f"  {m.name}: {T} frames over {m.time[-1] - m.time[0]:g} s, {H}x{W} pixels, {m.n_sites} sites, "
              f"{m.driving} driving, {100 * missing:.1f}% missing")
    return 0


def _i0_option(text: str):
    """--i0: auto, ROW0:ROW1,COL0:COL1 (a region of bare support) or a file with an I0 spectrum."""
    import re

    if text == "auto":
        return "auto"
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*,\s*(\d+):(\d+)\s*", text)
    if m:
        return tuple(int(g) for g in m.groups())
    if os.path.exists(text):
        return text
    raise ValueError(f"--i0 {text!r}: expected 'auto', a region ROW0:ROW1,COL0:COL1 or an existing I0 file")


def _spectra(args: argparse.Namespace) -> int:
    from .spectra import (
        SpectraOptions,
        interpolate_spectra,
        particle_movies,
        read_i0,
        read_references,
        read_stacks,
        reduce_stacks,
        segment,
        write_spectral_movie,
    )
    from .spectra.report import write_spectra_report

    t0 = time.perf_counter()
    stacks = [s for path in args.stacks for s in read_stacks(path)]
    energy = stacks[0].energy
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    ref_energy, ref_spectra, ref_names = read_references(args.references, names)
    references = interpolate_spectra(ref_energy, ref_spectra, energy, f"{args.references}: reference spectra")
    i0 = _i0_option(args.i0)
    if isinstance(i0, str) and i0 != "auto":
        e, rate = read_i0(i0)
        i0 = interpolate_spectra(e, rate, energy, f"{args.i0}: I0 spectrum")[0]
    times = [float(t) for t in args.times.split(",")] if args.times else None
    options = SpectraOptions(i0=i0, align=args.align, align_time=not args.no_time_align,
                             background=not args.no_background, saturation=args.saturation,
                             n_clusters=args.clusters)
    lithiated = args.lithiated or ref_names[0]
    delithiated = args.delithiated or ref_names[1 if len(ref_names) > 1 else 0]
    print(f"pixelkinetics spectra: {len(stacks)} stacks of {energy.size} energies from {len(args.stacks)} file(s); "
          f"composition = {lithiated} / ({lithiated} + {delithiated})")
    spectral = reduce_stacks(stacks, references, ref_names, lithiated, delithiated, options, times,
                             progress=not args.quiet)
    labels = segment(spectral, min_snr=args.min_snr, min_pixels=args.min_pixels)
    movies = particle_movies(spectral, labels)
    write_spectral_movie(args.output, spectral, movies, labels)
    print("\n".join("  " + line for line in spectral.summary()))
    print(f"  {len(movies)} particle(s) ({', '.join(str(m.n_sites) for m in movies)} pixels) written to "
          f"{args.output} in {time.perf_counter() - t0:.1f} s; next: pixelkinetics fit {args.output} -o RESULTS.h5")
    if args.report:
        files = write_spectra_report(args.output, args.report)
        print(f"  wrote {len(files)} report files to {args.report}")
    return 0


def _synth_stacks(args: argparse.Namespace) -> int:
    from .params import Params
    from .spectra.readers import write_references, write_stacks
    from .spectra.synthetic import REFERENCE_NAMES, fe_l3_references, movie_stacks
    from .synthetic import make_movies

    movies, truth = make_movies(n_particles=args.particles, sites=tuple(args.sites), n_frames=args.frames,
                                noise=0.0, params=Params(**SYNTH_TRUTH), scheme="bdf2", n_sub=40, seed=args.seed)
    stacks, labels, _, _, _ = movie_stacks([m.mask for m in movies], [truth.concentration[m.name] for m in movies],
                                           movies[0].time, n_energies=args.energies, i0_rate=args.i0_rate,
                                           dwell=args.dwell, rng=args.seed)
    write_stacks(args.output, stacks)
    refs = os.path.splitext(args.output)[0] + "_references.txt"
    energy = np.linspace(698.0, 732.0, 341)
    write_references(refs, energy, fe_l3_references(energy), list(REFERENCE_NAMES))
    T, (E, H, W) = len(stacks), stacks[0].shape
    print(f"wrote {args.output}: {T} stacks of {E} energies x {H}x{W} pixels ({args.particles} particles, Poisson "
          f"counts, drift), and the reference spectra {refs}")
    print(f"next: pixelkinetics spectra {args.output} --references {refs} -o movie.h5 --report spectra_report")
    return 0


#: A layered oxide without a miscibility gap whose exchange current falls steeply with lithium content.
NMC_DEMO = dict(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, D=0.0, b=[0.0], j0_base="logistic", j0_s=40.0,
                j0_c=0.5)


def _stability(args: argparse.Namespace) -> int:
    from .params import Params
    from .stability_plot import stability_figure, stability_map

    params = _load_config(args.config).initial if args.config else Params(**NMC_DEMO)
    if params.B != 0 or params.D != 0:
        raise ValueError(f"{args.config}: a population has B = 0 and D = 0 (homogeneous particles without "
                         f"coherency strain), got B = {params.B}, D = {params.D}")
    currents = np.concatenate([-np.geomspace(args.max_current, args.max_current / 100, args.grid // 2),
                               np.geomspace(args.max_current / 100, args.max_current, args.grid - args.grid // 2)])
    compositions = np.linspace(0.15, 0.85, args.grid)
    t0 = time.perf_counter()
    result = stability_map(params, currents, compositions, n_particles=args.particles)
    stability_figure(params, result, args.output)
    print(f"pixelkinetics stability: j0 base {params.j0_base}, {args.grid} x {args.grid} points, "
          f"{args.particles} particles each ({time.perf_counter() - t0:.1f} s)")
    print("\n".join("  " + line for line in result.summary()))
    print(f"  wrote {args.output}")
    return 0


def _strain(args: argparse.Namespace) -> int:
    from .mechanics import fit_vegard, naive_regression, predict_strain, read_strain, write_strain_results
    from .mechanics.files import strain_file_summary
    from .mechanics.report import write_strain_report

    t0 = time.perf_counter()
    data = read_strain(args.data)
    names = [p.name for p in data.particles]
    unknown = sorted(set(args.hold_out) - set(names))
    if unknown:
        raise ValueError(f"{args.data}: --hold-out names no particle under /strain: {unknown} (there are {names})")
    train = [p for p in data.particles if p.name not in args.hold_out]
    held_out = [p for p in data.particles if p.name in args.hold_out]
    if not train:
        raise ValueError(f"{args.data}: every particle is held out; nothing is left to fit")
    print(f"pixelkinetics strain: {len(train)} particle(s) fitted jointly, {len(held_out)} held out, order "
          f"{args.order}, crystal axis 1 at {np.rad2deg(data.angle):g} deg")
    print("\n".join("  " + line for line in strain_file_summary(data)))
    sigma = args.sigma if args.sigma is not None else data.strain_sigma
    if args.composition_draws < 2 and any(p.composition_sigma is not None for p in train):
        print(f"  warning: --composition-draws {args.composition_draws} < 2: composition_sigma is not propagated "
              f"and its bias is not removed", file=sys.stderr)
    fit = fit_vegard(train, order=args.order, stiffness=data.stiffness, angle=data.angle, sigma=sigma,
                     fit_stiffness=args.fit_stiffness, composition_draws=args.composition_draws,
                     progress=not args.quiet)
    naive = {p.name: naive_regression(p, data.angle) for p in data.particles}
    prediction = predict_strain(fit, held_out) if held_out else None
    write_strain_results(args.output, fit, train, naive, held_out, prediction, data_path=args.data,
                         truth=data.truth)
    print("\n".join("  " + line for line in fit.summary()))
    if fit.composition_bias is not None:
        print(f"  composition sigma: {args.composition_draws} redraws removed a bias of "
              f"{np.round(fit.composition_bias[0], 6).tolist()} from beta_1")
    if fit.stiffness_fit is not None:
        print("\n".join("  " + line for line in fit.stiffness_fit.summary()))
    for p in data.particles:
        print(f"  {p.name}: naive pixel regression {np.round(naive[p.name], 5).tolist()}"
              + (f"; held out, predicted with residual rms {prediction.rms[p.name]:.3g}" if p.name in args.hold_out
                 else ""))
    print(f"  wrote {args.output} in {time.perf_counter() - t0:.1f} s")
    if args.report:
        files = write_strain_report(args.output, args.report)
        print(f"  wrote {len(files)} report files to {args.report}")
    return 0


def _synth_strain(args: argparse.Namespace) -> int:
    from .mechanics import LFP_AC, LFP_MISFIT, PATTERNS, synthetic_particle, write_strain

    patterns = [p.strip() for p in args.patterns.split(",")]
    bad = [p for p in patterns if p not in PATTERNS]
    if bad:
        raise ValueError(f"--patterns: unknown {bad}; choose from {', '.join(PATTERNS)}")
    angle = np.deg2rad(args.angle_deg)
    particles = [synthetic_particle(p, n=args.size, noise=args.noise, angle=angle,
                                    composition_noise=args.composition_noise, seed=args.seed + k, name=f"{p}-{k}")
                 for k, p in enumerate(patterns)]
    Q = LFP_AC / LFP_AC[0, 0]
    truth = {"misfit_1": LFP_MISFIT[0], "misfit_2": LFP_MISFIT[1], "Q22/Q11": Q[1, 1], "Q12/Q11": Q[0, 1],
             "Q66/Q11": Q[2, 2], "noise": args.noise, "composition_noise": args.composition_noise}
    write_strain(args.output, particles, angle=angle, convention=args.convention, truth=truth)
    print(f"wrote {args.output}: {len(particles)} particle(s) of {args.size}x{args.size} pixels "
          f"({', '.join(patterns)}), LiFePO4 a-c misfit {LFP_MISFIT}, strain noise {args.noise:g}, "
          f"{args.convention} convention")
    print(f"next: pixelkinetics strain {args.output} -o strain_fit.h5 --report strain_report")
    return 0


def _positive(kind, zero: bool = False):
    """An argparse type: a number of ``kind`` that is > 0 (>= 0 with ``zero``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (value >= 0 if zero else value > 0) or value != value:
            raise argparse.ArgumentTypeError(f"{text} must be {'>= 0' if zero else '> 0'}")
        return value
    return parse


def _add_synth_options(p: argparse.ArgumentParser, particles: int, sites: List[int]) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelkinetics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pixelkinetics {__version__}")
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: OMP_NUM_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="make a synthetic data set with known truth, fit it, write results and figures")
    demo.add_argument("-o", "--output", default="demo_output", help="output directory (default demo_output)")
    _add_synth_options(demo, particles=12, sites=[150, 300])
    demo.add_argument("--max-iter", type=int, default=None, help="L-BFGS-B iterations (default: the config's)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)

    synth = sub.add_parser("synth", help="write synthetic movies with their ground truth under /truth")
    synth.add_argument("-o", "--output", required=True, help="HDF5 movie file to write")
    _add_synth_options(synth, particles=40, sites=[300, 700])
    synth.set_defaults(run=_synth)

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
    uq.add_argument("--bootstrap", type=_positive(int), metavar="N",
                    help="instead of the Laplace approximation: refit N data sets simulated at the estimate, "
                         "new population realisations for snapshots (their spread is not the noise's alone)")
    uq.add_argument("--method", choices=["corrected", "normal", "basic"], default=None,
                    help="bootstrap interval: corrected (the replicates' bias removed, +- q sd; the default), "
                         "normal (estimate +- q sd) or basic (from the replicates' quantiles; needs many)")
    uq.add_argument("--seed", type=_positive(int, zero=True), default=None, help="bootstrap random seed (default 0)")
    uq.add_argument("--resume", action="store_true", help="continue a bootstrap from RESULTS.bootstrap-checkpoint")
    uq.add_argument("--quiet", action="store_true", help="no progress bar")
    uq.set_defaults(run=_uq)

    compare = sub.add_parser("compare", help="fit and rank j0 bases and Legendre orders by Laplace evidence")
    compare.add_argument("data", help="HDF5 movie file")
    compare.add_argument("--config", help="TOML file: the fit settings shared by the candidates")
    compare.add_argument("--bases", default="one,sqrt,asym", help="j0 bases (default one,sqrt,asym)")
    compare.add_argument("--orders", default="2", help="Legendre orders Mb of ln j0 (default 2)")
    compare.add_argument("-o", "--output", help="CSV file of the table")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.set_defaults(run=_compare)
    fit.set_defaults(run=_fit)

    sweep = sub.add_parser("sweep", help="run a grid or list of fits or solver variants (over MPI ranks if any)")
    sweep.add_argument("sweep", help="TOML sweep file (see pixelkinetics.sweep)")
    sweep.add_argument("-o", "--output", help="sweep results file (default: the sweep file's 'output', or "
                                              "its name with .h5)")
    sweep.add_argument("--resume", action="store_true", help="skip the runs already stored in the output")
    sweep.add_argument("--retry-failed", action="store_true", help="with --resume: run failed runs again")
    sweep.add_argument("--csv", help="summary CSV (default: the output's name with .csv)")
    sweep.add_argument("--summary", action="store_true", help="print the stored summary table, run nothing")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(run=_sweep)

    simulate = sub.add_parser("simulate", help="simulate the movies of a data file with given parameters")
    simulate.add_argument("data", help="HDF5 movie file: masks, times, driving")
    simulate.add_argument("-o", "--output", required=True, help="HDF5 movie file of the simulated movies")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--results", help="results file: its parameters, theta maps and initial states")
    source.add_argument("--config", help="TOML file: its [model] parameters (theta = 0)")
    simulate.set_defaults(run=_simulate)

    report = sub.add_parser("report", help="write the figures of a results file (fit or strain) or of a `spectra` "
                                           "movie file")
    report.add_argument("results", help="HDF5 results file, or a movie file written by `spectra`")
    report.add_argument("-o", "--output", required=True, help="directory for the PNG figures")
    report.set_defaults(run=_report)

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
    spectra.set_defaults(run=_spectra)

    synth_stacks = sub.add_parser("synth-stacks", help="write synthetic STXM stacks of a simulated particle movie")
    synth_stacks.add_argument("-o", "--output", required=True, help="plain HDF5 stack file to write")
    _add_synth_options(synth_stacks, particles=4, sites=[150, 300])
    synth_stacks.add_argument("--energies", type=int, default=50, help="energies per stack (default 50)")
    synth_stacks.add_argument("--i0-rate", type=float, default=2e6, help="incident counts per second (default 2e6)")
    synth_stacks.add_argument("--dwell", type=float, default=2e-3, help="dwell per pixel in seconds (default 2e-3)")
    synth_stacks.set_defaults(run=_synth_stacks)

    stability = sub.add_parser("stability", help="where a driven population splits: analytic diagram over "
                                                 "(current, composition) next to simulated populations")
    stability.add_argument("-o", "--output", required=True, help="PNG figure to write")
    stability.add_argument("--config", help="TOML file whose [model] holds the parameters (default: a layered "
                                            "oxide with a logistic j0, s = 40, c* = 0.5)")
    stability.add_argument("--grid", type=int, default=10, help="points per axis (default 10)")
    stability.add_argument("--max-current", type=float, default=5e-2, help="largest |dc/dt| in 1/s (default 5e-2)")
    stability.add_argument("--particles", type=int, default=100, help="particles per simulated population")
    stability.set_defaults(run=_stability)

    strain = sub.add_parser("strain", help="learn the strain-composition law (Vegard) of correlated strain and "
                                           "composition maps through elasticity")
    strain.add_argument("data", help="HDF5 file with a /strain group (pixelkinetics.mechanics.files)")
    strain.add_argument("-o", "--output", required=True, help="HDF5 results file to write")
    strain.add_argument("--order", type=_positive(int), default=1, help="terms of the law: 1 is Vegard's (default 1)")
    strain.add_argument("--fit-stiffness", action="store_true", help="also fit the stiffness ratios (L-BFGS)")
    strain.add_argument("--hold-out", nargs="+", default=[], metavar="NAME",
                        help="particles left out of the fit and predicted with the learned law")
    strain.add_argument("--sigma", type=_positive(float), default=None,
                        help="strain noise (default: the file's strain_sigma, else estimated)")
    strain.add_argument("--composition-draws", type=_positive(int, zero=True), default=16,
                        help="redraws that propagate composition sigma (default 16)")
    strain.add_argument("--report", help="directory for the figures and summary")
    strain.add_argument("--quiet", action="store_true", help="no progress bar")
    strain.set_defaults(run=_strain)

    synth_strain = sub.add_parser("synth-strain", help="write synthetic strain and composition maps of "
                                                       "LiFePO4-like particles with their truth")
    synth_strain.add_argument("-o", "--output", required=True, help="HDF5 strain file to write")
    synth_strain.add_argument("--patterns", default="two-phase,core-shell,blobs,linear",
                              help="comma-separated composition patterns, one particle each")
    synth_strain.add_argument("--size", type=_positive(int), default=96, help="pixels per side (default 96)")
    synth_strain.add_argument("--noise", type=_positive(float, zero=True), default=1e-3,
                              help="strain noise (default 1e-3)")
    synth_strain.add_argument("--composition-noise", type=_positive(float, zero=True), default=0.0,
                              help="noise of the composition map, written as its sigma (default 0)")
    synth_strain.add_argument("--angle-deg", type=float, default=0.0, help="crystal axis a from image x")
    synth_strain.add_argument("--convention", choices=("real", "py4dstem"), default="py4dstem",
                              help="how the strain maps are written (default py4dstem)")
    synth_strain.add_argument("--seed", type=int, default=0)
    synth_strain.set_defaults(run=_synth_strain)

    info = sub.add_parser("info", help="summarise a movie or results file")
    info.add_argument("data", help="HDF5 file")
    info.set_defaults(run=_info)
    return parser


#: Commands that share their work over the ranks of an ``mpiexec`` launch.
MPI_COMMANDS = ("fit", "uq", "sweep")


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    comm = world()
    if size_of(comm) > 1 and args.command not in MPI_COMMANDS:
        if rank_of(comm) == 0:
            print(f"pixelkinetics: error: {args.command} does not run under MPI (only {', '.join(MPI_COMMANDS)} "
                  "do); start it without mpiexec", file=sys.stderr)
        return 2
    args.comm = comm
    quiet_rank = rank_of(comm) != 0
    stdout = sys.stdout
    if quiet_rank:  # rank 0 speaks for the job
        sys.stdout = open(os.devnull, "w")
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        elif size_of(comm) > 1 and "OMP_NUM_THREADS" not in os.environ:
            set_num_threads(_threads_per_rank())
        return args.run(args)
    except (ValueError, FileNotFoundError, SolverError, CollectiveError) as exc:
        if not quiet_rank:
            print(f"pixelkinetics: error: {exc}", file=sys.stderr)
        elif not getattr(exc, "collective", False):  # perhaps this rank's alone: say it before the abort
            print(f"pixelkinetics: rank {rank_of(comm)}: error: {exc}", file=sys.stderr)
        _abort_unless_collective(comm, exc, 2)
        return 2
    except KeyboardInterrupt:
        print("pixelkinetics: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if size_of(comm) == 1:
            raise
        import traceback

        print(f"pixelkinetics: rank {rank_of(comm)}: unexpected error", file=sys.stderr)
        traceback.print_exc()
        _abort_unless_collective(comm, exc, 1)
        return 1
    finally:
        if quiet_rank:
            sys.stdout.close()
            sys.stdout = stdout


def _threads_per_rank() -> int:
    """Without OMP_NUM_THREADS, the ranks on one node share its cores instead of each taking all of them."""
    local = next((int(os.environ[v]) for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
                  if os.environ.get(v, "").isdigit()), 1)
    return max(1, (os.cpu_count() or 1) // max(local, 1))


def _abort_unless_collective(comm, exc: BaseException, code: int) -> None:
    """End the whole MPI job when an error may have struck one rank alone: the others would wait for it in
    their next collective call for ever. Errors that every rank raised together end normally."""
    if size_of(comm) > 1 and not getattr(exc, "collective", False):
        sys.stderr.flush()
        if rank_of(comm) != 0:
            time.sleep(2.0)  # let rank 0 report first, should it have failed too
        comm.Abort(code)


if __name__ == "__main__":
    sys.exit(main())
