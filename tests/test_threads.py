"""Thread invariance: particles are independent tasks and their contributions are summed in
particle order, so one and two OpenMP threads give the same loss and gradient (to 1e-13 relative)."""
import numpy as np

import pixelkinetics as pk
from pixelkinetics.kinetics.synthetic import make_movies


def test_one_and_two_threads_give_the_same_loss_and_gradient(restore_threads):
    movies, truth = make_movies(n_particles=8, sites=(30, 90), n_frames=4, seed=8, missing=0.05)
    problem = pk.Problem(movies, n_sub=6, lam_s=0.2, lam_0=0.1)
    params = truth.params.replace(k0=0.025, Omega=4.0)
    theta = problem.theta_vectors(truth.theta)
    results = []
    for n in (1, 2):
        pk.set_num_threads(n)
        assert pk.num_threads() == (n if pk.has_openmp() else 1)
        results.append(problem.loss_and_gradient_vectors(params, theta))
    (l1, g1, t1, _), (l2, g2, t2, _) = results
    assert abs(l1 - l2) <= 1e-13 * abs(l1)
    np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=0)
    for a, b in zip(t1, t2):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13 * np.abs(a).max())


def test_thread_count_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="number of threads must be >= 1"):
        pk.set_num_threads(0)
