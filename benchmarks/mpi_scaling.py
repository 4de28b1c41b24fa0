"""Strong scaling of one loss-and-gradient evaluation over MPI ranks (run under mpiexec).

    mpiexec -n N python benchmarks/mpi_scaling.py [--particles 256] [--sites 300 700] [--repeat 3]

Every rank makes the same synthetic batch (seeded; or reads --data), the particles are shared over the
ranks by cost, and rank 0 prints one JSON line: the median seconds of ``Problem.evaluate`` after a warm-up
(startup and data excluded), with the ranks, OpenMP threads and the per-rank cost balance.
"""
import argparse
import json
import os
import time

import numpy as np
from mpi4py import MPI

import pixelkinetics as pk
from pixelkinetics import FitConfig
from pixelkinetics.kinetics.synthetic import make_movies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=256)
    parser.add_argument("--sites", type=int, nargs=2, default=[300, 700])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", help="a movie file instead of the synthetic batch")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD

    if args.data:
        movies, theta = pk.load_movies(args.data), None
        params = FitConfig().initial
    else:
        movies, truth = make_movies(n_particles=args.particles, sites=tuple(args.sites), n_frames=args.frames,
                                    noise=0.02, seed=1, n_sub=5)
        params, theta = truth.params, truth.theta
    config = FitConfig()  # the fit's numerics: BDF2, 20 steps per frame, c^0 fitted
    problem = config.problem(movies, comm)
    thetas, c0s = problem.theta_vectors(theta), problem.initial_states()
    problem.evaluate(params, thetas, c0s)  # warm-up: first-touch allocation, symbolic analyses
    times = []
    for _ in range(args.repeat):
        comm.Barrier()
        t = time.perf_counter()
        e = problem.evaluate(params, thetas, c0s)
        times.append(time.perf_counter() - t)
    times = np.array(times)
    comm.Allreduce(MPI.IN_PLACE, times, op=MPI.MAX)  # the slowest rank's clock
    if comm.Get_rank() == 0:
        load = problem.shards.load if problem.shards is not None else np.array([1.0])
        print(json.dumps(dict(ranks=comm.Get_size(), threads=pk.num_threads(), particles=len(movies),
                              sites=problem.n_sites, seconds=float(np.median(times)), loss=e.loss,
                              balance=float(load.max() / load.mean()),
                              omp_num_threads=os.environ.get("OMP_NUM_THREADS"))))


if __name__ == "__main__":
    main()
