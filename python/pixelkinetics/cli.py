"""Command line: ``pixelkinetics demo`` and ``pixelkinetics info DATA.h5``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from . import __version__
from ._core import SolverError, has_openmp, num_threads, set_num_threads


def _demo(args: argparse.Namespace) -> int:
    from .io import write_movies
    from .problem import Problem
    from .synthetic import make_movies

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(f"pixelkinetics {__version__}: synthetic demo with {args.particles} particles "
          f"({num_threads()} OpenMP thread(s){'' if has_openmp() else ', built without OpenMP'})")
    t0 = time.perf_counter()
    movies, truth = make_movies(n_particles=args.particles, n_frames=8, noise=0.02, seed=args.seed)
    data = out / "demo_data.h5"
    write_movies(data, movies, truth)
    n_sites = sum(m.n_sites for m in movies)
    print(f"  wrote {data} ({n_sites} sites, 8 frames) in {time.perf_counter() - t0:.2f} s")

    problem = Problem(movies, scheme="be", n_sub=20, sigma=0.02)
    t0 = time.perf_counter()
    solution = problem.solve(truth.params, truth.theta)
    t_forward = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss, g_globals, _ = problem.loss_and_gradient(truth.params, truth.theta)
    t_gradient = time.perf_counter() - t0
    s = solution.stats
    n_obs = sum(int(np.isfinite(m.concentration[1:][:, m.mask]).sum()) for m in movies)
    print(f"  forward solve      {t_forward:7.3f} s  ({s['n_steps']} steps, "
          f"{s['n_newton'] / s['n_steps']:.2f} Newton iterations and "
          f"{s['n_factorizations'] / s['n_steps']:.2f} factorisations per step)")
    print(f"  loss and gradient  {t_gradient:7.3f} s  (ratio to forward {t_gradient / t_forward:.2f})")
    print(f"  loss at the truth  {loss:.1f}  (reduced chi-square {2 * loss / n_obs:.3f})")
    print("  gradient at the truth: " + ", ".join(f"{k} {v:+.3g}" for k, v in g_globals.items()))
    return 0


def _info(args: argparse.Namespace) -> int:
    from .io import load_movies

    movies = load_movies(args.data)
    print(f"{args.data}: {len(movies)} particle(s)")
    for m in movies:
        T, H, W = m.shape
        missing = np.isnan(m.concentration[:, m.mask]).mean()
        print(f"  {m.name}: {T} frames over {m.time[-1] - m.time[0]:g} s, {H}x{W} pixels, {m.n_sites} sites, "
              f"{m.driving} driving, {100 * missing:.1f}% missing")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelkinetics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pixelkinetics {__version__}")
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: OMP_NUM_THREADS)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a synthetic data set and evaluate loss and gradient")
    demo.add_argument("-o", "--output", default="demo_output", help="output directory")
    demo.add_argument("--particles", type=int, default=16, help="number of synthetic particles")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    info = sub.add_parser("info", help="summarise a movie file")
    info.add_argument("data", help="HDF5 movie file")
    info.set_defaults(run=_info)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        set_num_threads(args.threads)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, SolverError) as exc:
        print(f"pixelkinetics: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
