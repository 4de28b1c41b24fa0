"""The commands: each reads its arguments, calls its workflow and prints what came of it."""
from __future__ import annotations

import argparse
from typing import Iterable

import pixelkinetics as pk

from .arguments import i0_source, numbers, words


def say(lines: Iterable[str]) -> None:
    """Print a workflow's summary lines under the command's first line."""
    for line in lines:
        print(f"  {line}")


def _progress(args) -> bool:
    return not args.quiet


def _synth_options(args) -> dict:
    return dict(particles=args.particles, sites=tuple(args.sites), frames=args.frames, seed=args.seed)


def demo(args: argparse.Namespace) -> int:
    print(f"pixelkinetics {pk.__version__} demo: {args.particles} synthetic particles, fit, report "
          f"({pk.num_threads()} OpenMP thread(s){'' if pk.has_openmp() else ', built without OpenMP'})")
    made = pk.demo(args.output, **_synth_options(args), noise=args.noise, missing=args.missing,
                   driving=args.driving, scheme=args.scheme, n_sub=args.n_sub, max_iter=args.max_iter,
                   progress=_progress(args))
    say(made.summary())
    return 0


def synth(args: argparse.Namespace) -> int:
    movies, _ = pk.synth(args.output, **_synth_options(args), noise=args.noise, missing=args.missing,
                         driving=args.driving, scheme=args.scheme, n_sub=args.n_sub)
    print(f"wrote {args.output}: {len(movies)} particles, {sum(m.n_sites for m in movies)} sites, "
          f"{args.frames} frames, noise {args.noise}, {100 * args.missing:.0f}% missing, truth under /truth")
    return 0


def fit(args: argparse.Namespace) -> int:
    print(f"pixelkinetics fit {args.data} -> {args.output} ({pk.processes(args.comm)})")
    result = pk.fit(args.data, args.config, output=args.output, resume=args.resume, max_iter=args.max_iter,
                    progress=_progress(args), comm=args.comm)
    say(result.summary())
    if args.uq:
        posterior = pk.uq(args.data, result, output=args.output, progress=_progress(args), comm=args.comm)
        say(posterior.summary() + [f"wrote /uncertainty and theta_sd maps into {args.output}"])
    return 0


def uq(args: argparse.Namespace) -> int:
    if args.bootstrap:
        return _bootstrap(args)
    given = [flag for flag, value in (("--method", args.method), ("--seed", args.seed), ("--resume", args.resume))
             if value not in (None, False)]
    if given:
        raise ValueError(f"{', '.join(given)} belong to the bootstrap: add --bootstrap N")
    print(f"pixelkinetics uq {args.data} {args.results}")
    posterior = pk.uq(args.data, args.results, level=args.level, free=words(args.free), output=args.results,
                      progress=_progress(args), comm=args.comm)
    say(posterior.summary() + [f"wrote /uncertainty and theta_sd maps into {args.results}"])
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    if args.free is not None:
        raise ValueError("--free is a Laplace identifiability study; the bootstrap refits the fit's own free set")
    print(f"pixelkinetics uq --bootstrap {args.bootstrap}: {args.data} {args.results}")
    boot = pk.bootstrap(args.data, args.results, args.bootstrap, level=args.level, method=args.method or "corrected",
                        seed=args.seed or 0, output=args.results, resume=args.resume, progress=_progress(args),
                        comm=args.comm)
    say(boot.summary() + [f"wrote /bootstrap into {args.results}"])
    return 0


def compare(args: argparse.Namespace) -> int:
    comparison = pk.compare(args.data, args.config, bases=words(args.bases), orders=numbers(args.orders, int),
                            output=args.output, progress=_progress(args))
    print("\n".join(comparison.table()))
    if args.output:
        print(f"wrote {args.output}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    if args.summary:
        print("\n".join(pk.sweep_summary(args.sweep, args.output).table()))
        return 0
    print(f"pixelkinetics sweep {args.sweep}")
    outcome = pk.sweep(args.sweep, output=args.output, resume=args.resume, retry_failed=args.retry_failed,
                       csv_path=args.csv, progress=_progress(args), comm=args.comm)
    if outcome is None:  # a worker rank
        return 0
    if outcome.skipped:
        say([f"skipped {len(outcome.skipped)} run(s) already stored"])
    print("\n".join(outcome.table()))
    failed = f"; {outcome.n_failed} run(s) failed" if outcome.n_failed else ""
    say([f"wrote {outcome.output} and {outcome.csv}{failed}"])
    return 0


def simulate(args: argparse.Namespace) -> int:
    simulation = pk.simulate(args.data, args.results, config=args.config, output=args.output)
    print(f"wrote {args.output}: " + "; ".join(simulation.summary()))
    return 0


def report(args: argparse.Namespace) -> int:
    print("\n".join(pk.report(args.results, args.output).summary()))
    return 0


def info(args: argparse.Namespace) -> int:
    print("\n".join(pk.info(args.data)))
    return 0


def spectra(args: argparse.Namespace) -> int:
    print(f"pixelkinetics spectra: {len(args.stacks)} file(s) -> {args.output}")
    made = pk.composition_movie(
        args.stacks, args.references, args.output, names=words(args.names), lithiated=args.lithiated,
        delithiated=args.delithiated, times=numbers(args.times), i0=i0_source(args.i0), align=args.align,
        align_time=not args.no_time_align, background=not args.no_background, saturation=args.saturation,
        clusters=args.clusters, min_snr=args.min_snr, min_pixels=args.min_pixels, report=args.report,
        progress=_progress(args))
    say(made.summary() + [f"next: pixelkinetics fit {args.output} -o RESULTS.h5"])
    return 0


def synth_stacks(args: argparse.Namespace) -> int:
    stacks, references = pk.synth_stacks(args.output, **_synth_options(args), energies=args.energies,
                                         i0_rate=args.i0_rate, dwell=args.dwell)
    E, H, W = stacks[0].shape
    print(f"wrote {args.output}: {len(stacks)} stacks of {E} energies x {H}x{W} pixels ({args.particles} particles, "
          f"Poisson counts, drift), and the reference spectra {references}")
    print(f"next: pixelkinetics spectra {args.output} --references {references} -o movie.h5 --report spectra_report")
    return 0


def stability(args: argparse.Namespace) -> int:
    print("pixelkinetics stability")
    result = pk.stability(args.output, args.config, grid=args.grid, max_current=args.max_current,
                          particles=args.particles)
    say(result.summary() + [f"wrote {args.output} ({result.wall_time:.1f} s)"])
    return 0


def strain(args: argparse.Namespace) -> int:
    print(f"pixelkinetics strain {args.data}")
    made = pk.strain(args.data, args.output, order=args.order, fit_stiffness=args.fit_stiffness,
                     hold_out=args.hold_out, sigma=args.sigma, composition_draws=args.composition_draws,
                     report=args.report, progress=_progress(args))
    say(made.summary())
    return 0


def synth_strain(args: argparse.Namespace) -> int:
    particles = pk.synth_strain(args.output, patterns=words(args.patterns), size=args.size, noise=args.noise,
                                composition_noise=args.composition_noise, angle_deg=args.angle_deg,
                                convention=args.convention, seed=args.seed)
    print(f"wrote {args.output}: {len(particles)} particle(s) of {args.size}x{args.size} pixels "
          f"({args.patterns}), LiFePO4 a-c misfit {pk.mechanics.LFP_MISFIT}, strain noise {args.noise:g}, "
          f"{args.convention} convention")
    print(f"next: pixelkinetics strain {args.output} -o strain_fit.h5 --report strain_report")
    return 0
