"""One evaluation of the fit objective (loss / n_obs and its gradient in the optimiser's preconditioned
coordinates, with c^0 fitted and frame 0 in the loss) against its reference in the same run: the bare
core loss and gradient of the same batch. The ratio is the cost of the Python fitting layer.
    python -m pytest benchmarks/test_bench_fit.py --benchmark-group-by=group --benchmark-columns=min,mean,rounds
"""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics import FitConfig
from pixelkinetics.kinetics.objective import FitObjective
from pixelkinetics.kinetics.observations import count_observations
from pixelkinetics.kinetics.space import ParameterSpace


@pytest.fixture(scope="module")
def space(batch_62):
    movies, _ = batch_62
    config = FitConfig()
    problem = pk.Problem(movies, scheme=config.scheme, n_sub=config.n_sub, sigma=config.sigma, lam_s=config.lam_s,
                         fit_initial=True, newton_tol=config.newton_tol)
    space = ParameterSpace(config, problem, count_observations(movies, True))
    space.precondition()
    return space


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", ["reference-core-evaluate", "fit-objective"])
def test_fit_objective_evaluation(benchmark, space, variant, threads):
    pk.set_num_threads(threads)
    benchmark.group = f"fit objective, 62 particles, {threads} thread(s)"
    u = 0.01 * np.random.default_rng(0).standard_normal(space.size)
    if variant == "fit-objective":
        objective = FitObjective(space, space.problem)
        f, g = benchmark.pedantic(objective, args=(u,), rounds=3, iterations=1)
        assert np.isfinite(f) and g.shape == u.shape
    else:
        params, thetas, c0s, _, _ = space.unpack(u)
        e = benchmark.pedantic(space.problem.evaluate, args=(params, thetas, c0s), rounds=3, iterations=1)
        assert np.isfinite(e.loss)


@pytest.mark.parametrize("variant", ["reference-core-evaluate", "linearize", "gauss-newton-product"])
def test_gauss_newton_product(benchmark, space, variant):
    """A Gauss-Newton Hessian-vector product (tangent-linear and adjoint sweeps over kept factors)
    against one loss-and-gradient evaluation; and the linearisation that keeps the factors."""
    pk.set_num_threads(2)
    benchmark.group = "Gauss-Newton products, 62 particles, 2 threads"
    u = 0.01 * np.random.default_rng(0).standard_normal(space.size)
    params, thetas, c0s, _, _ = space.unpack(u)
    problem = space.problem
    if variant == "reference-core-evaluate":
        benchmark.pedantic(problem.evaluate, args=(params, thetas, c0s), rounds=3, iterations=1)
    elif variant == "linearize":
        benchmark.pedantic(problem.linearize, args=(params, thetas, c0s), rounds=3, iterations=1)
    else:
        lin = problem.linearize(params, thetas, c0s)
        direction = [0.1 * np.ones_like(t) for t in thetas]
        h = benchmark.pedantic(lin.product, args=(np.zeros(len(params.names())), direction), rounds=5,
                               iterations=1)
        assert h.quadratic > 0
