"""Forward solve and loss + gradient of the 62-particle batch, 20 backward-Euler steps per frame.

Each group carries its reference in the same run: the serial path with the general sparse LU and a
full Newton iteration (a fresh factorisation every iteration). Run with
    python -m pytest benchmarks --benchmark-group-by=group --benchmark-columns=min,mean,rounds
"""
import numpy as np
import pytest

import pixelkinetics as pk

VARIANTS = {
    # name: (linear_solver, reuse_jacobian)
    "reference-lu-newton": ("lu", False),
    "symmetric-newton": ("auto", False),
    "symmetric-chord": ("auto", True),
}


def make_problem(movies, variant):
    solver, reuse = VARIANTS[variant]
    problem = pk.Problem(movies, scheme="be", n_sub=20, sigma=0.02, linear_solver=solver)
    problem.settings.reuse_jacobian = reuse
    return problem


def prepare(batch_62, variant, threads):
    """The problem of one benchmark; the reference runs only as the serial path."""
    if variant == "reference-lu-newton" and threads != 1:
        pytest.skip("the reference is the serial path")
    pk.set_num_threads(threads)
    movies, truth = batch_62
    return make_problem(movies, variant), truth


@pytest.fixture(scope="module")
def reference(batch_62):
    movies, truth = batch_62
    problem = make_problem(movies, "reference-lu-newton")
    return problem.loss_and_gradient_vectors(truth.params, problem.theta_vectors(truth.theta))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward(benchmark, batch_62, reference, variant, threads):
    problem, truth = prepare(batch_62, variant, threads)
    benchmark.group = "forward 62 particles"
    solution = benchmark.pedantic(problem.solve, args=(truth.params, truth.theta), rounds=3, iterations=1)
    s = solution.stats
    benchmark.extra_info.update(newton_per_step=s["n_newton"] / s["n_steps"],
                                factorisations_per_step=s["n_factorizations"] / s["n_steps"], threads=threads)
    # The result is checked, not only timed: every variant lands on the reference loss.
    assert problem.loss(truth.params, truth.theta) == pytest.approx(reference[0], rel=1e-9)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loss_and_gradient(benchmark, batch_62, reference, variant, threads):
    problem, truth = prepare(batch_62, variant, threads)
    theta = problem.theta_vectors(truth.theta)
    benchmark.group = "loss+gradient 62 particles"
    loss, g, g_theta, s = benchmark.pedantic(problem.loss_and_gradient_vectors, args=(truth.params, theta),
                                             rounds=3, iterations=1)
    benchmark.extra_info.update(newton_per_step=s["n_newton"] / s["n_steps"], threads=threads)
    assert loss == pytest.approx(reference[0], rel=1e-9)
    np.testing.assert_allclose(g, reference[1], rtol=1e-6)
