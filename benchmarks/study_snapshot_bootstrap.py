"""Calibration study of the snapshot bootstrap (not a speed benchmark; not collected by pytest).

Synthetic snapshot data (four populations: two delithiated from 0.85 at 2e-3 and 6e-3 /s, two lithiated
from 0.2; noise 0.01, theta ~ N(0, 0.3^2), logistic j0 with s = 12, c* = 0.5) are fitted from s = 9,
c* = 0.4 with the particles' states held (fit_theta and fit_initial off), and bootstrapped. Per data set
it prints one JSON line; at the end, the mean estimates, their spread against the bootstrap's, and how
many intervals of each kind hold the truth.

Run: OMP_NUM_THREADS=1 python benchmarks/study_snapshot_bootstrap.py --sets 20 --particles 60 --frames 10 \
         --replicates 20
"""
import argparse
import json

import numpy as np

import pixelkinetics as pk
from pixelkinetics import FitConfig, fit
from pixelkinetics.kinetics.bootstrap import bootstrap
from pixelkinetics.kinetics.population import synthetic_population

TRUTH = pk.Params(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, D=0.0, b=[0.0], j0_base="logistic",
                  j0_s=12.0, j0_c=0.5)
DESIGN = [(-2e-3, 0.85), (-6e-3, 0.85), (2e-3, 0.2), (6e-3, 0.2)]
FREE = ["k0", "Omega", "j0_s", "j0_c"]


def one_set(index: int, particles: int, frames: int, replicates: int) -> dict:
    movies = [synthetic_population(TRUTH, n_particles=particles, n_frames=frames, current=current,
                                   c_start=c_start, noise=0.01, kind="snapshot", observed=1.0,
                                   seed=100 * index + k, name=f"run{k}")[0]
              for k, (current, c_start) in enumerate(DESIGN)]
    config = FitConfig(initial=TRUTH.replace(k0=0.03, Omega=0.5, j0_s=9.0, j0_c=0.4), free=FREE, lam_s=0.0,
                       lam_0=1 / 0.3 ** 2, sigma=0.01, n_sub=40, fit_theta=False, fit_initial=False)
    result = fit(movies, config, progress=False)
    boot = bootstrap(movies, result, replicates, seed=index, progress=False)
    out = {"set": index, "reduced_chi2": result.reduced_chi2, "wall_time": boot.wall_time}
    for i, name in enumerate(boot.free):
        out[name] = dict(estimate=boot.values[i], bias_corrected=boot.corrected[i], sd=boot.sd[i],
                         **{m: boot.interval(name, m) for m in ("corrected", "normal")})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--first", type=int, default=1, help="index of the first data set (its seeds)")
    parser.add_argument("--particles", type=int, default=60)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--replicates", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for index in range(args.first, args.first + args.sets):
        rows.append(one_set(index, args.particles, args.frames, args.replicates))
        print(json.dumps(rows[-1]), flush=True)
    truth = TRUTH.values()
    for name in FREE:
        est = np.array([r[name]["estimate"] for r in rows])
        print(f"{name:6s} mean estimate {est.mean():.4g} (truth {truth[name]:.4g}), corrected "
              f"{np.mean([r[name]['bias_corrected'] for r in rows]):.4g}; spread over sets {est.std(ddof=1):.3g}, "
              f"bootstrap sd {np.mean([r[name]['sd'] for r in rows]):.3g}; intervals holding the truth: "
              + ", ".join(f"{m} {sum(r[name][m][0] <= truth[name] <= r[name][m][1] for r in rows)}/{len(rows)}"
                          for m in ("corrected", "normal")))


if __name__ == "__main__":
    main()
