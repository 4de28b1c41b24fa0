"""The Laplace approximation (uncertainty.laplace: Gauss-Newton blocks probed for all particles at once,
then dense algebra per particle) against its reference in the same run: one loss-and-gradient
evaluation of the same particles. Two batch sizes with the same particle sizes show that the number of
products, and so the cost per evaluation, does not grow with the number of particles.
    python -m pytest benchmarks/test_bench_uq.py --benchmark-group-by=group --benchmark-columns=min,mean,rounds
"""
import pytest

import pixelkinetics as pk
from pixelkinetics import FitConfig, Params, Problem
from pixelkinetics.kinetics.estimate import Estimate
from pixelkinetics.kinetics.synthetic import make_movies
from pixelkinetics.kinetics.uncertainty import laplace


@pytest.mark.parametrize("n_particles", [4, 8])
@pytest.mark.parametrize("variant", ["reference-core-evaluate", "laplace"])
def test_laplace(benchmark, variant, n_particles):
    pk.set_num_threads(2)
    benchmark.group = f"Laplace approximation, {n_particles} particles of 150-200 sites, 2 threads"
    params = Params(k0=0.02, Omega=4.5, kappa=2.0, b=[0.0, 0.3, -0.2])
    movies, truth = make_movies(n_particles=n_particles, sites=(150, 200), n_frames=8, params=params, seed=2,
                                scheme="bdf2")
    config = FitConfig(initial=truth.params)
    if variant == "reference-core-evaluate":
        problem = Problem(movies, scheme=config.scheme, n_sub=config.n_sub, lam_s=config.lam_s, fit_initial=True)
        thetas = problem.theta_vectors(truth.theta)
        benchmark.pedantic(problem.evaluate, args=(truth.params, thetas, problem.initial_states()), rounds=3,
                           iterations=1)
    else:
        post = benchmark.pedantic(laplace, args=(movies, Estimate(config, truth.params, truth.theta)), rounds=1,
                                  iterations=1)
        benchmark.extra_info["n_hessp"] = post.n_hessp
        assert post.n_hessp == len(config.free) + 2 * max(m.n_sites for m in movies)
