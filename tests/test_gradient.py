"""Taylor tests of the discrete-adjoint gradient. For the loss J(x) over x = (every raw global
parameter, every theta entry) and a random direction d, the remainder
|J(x + eps d) - J(x) - eps dJ/dx . d| must fall as eps^2 (smallest observed rate > 1.9), for backward
Euler and BDF2, D = 0 and D > 0, rate and potential driving."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.synthetic import make_movies
from pixelkinetics.verification import taylor_test

PARAMS = pk.Params(k0=0.03, alpha=0.45, Omega=3.0, kappa=1.5, B=0.7, D=0.0, a=[0.2, -0.1], b=[0.1, -0.3, 0.2],
                   j0_base="sqrt")


#: The logistic j0 base of layered oxides, 1 / (1 + exp(j0_s (c - j0_c))), with a Legendre correction.
LOGISTIC = PARAMS.replace(j0_base="logistic", j0_s=8.0, j0_c=0.45, b=[0.1, -0.2])


def flat_problem(scheme, D, driving, seed=3, params=PARAMS):
    movies, _ = make_movies(n_particles=2, sites=(25, 40), n_frames=4, t_end=30.0, driving=driving,
                            params=params.replace(D=D), noise=0.02, missing=0.05, scheme=scheme, n_sub=6,
                            seed=seed)
    problem = pk.Problem(movies, scheme=scheme, n_sub=6, sigma=0.02, lam_s=0.3, lam_0=0.1)
    base = params.replace(D=D)
    names = base.names()
    sizes = [m.n_sites for m in movies]

    def unpack(x):
        params = base.replace(**dict(zip(names, x[:len(names)])))
        thetas = np.split(x[len(names):], np.cumsum(sizes)[:-1])
        return params, thetas

    def loss(x):
        params, thetas = unpack(x)
        return problem.loss(params, {m.name: problem.to_map(m, t) for m, t in zip(movies, thetas)})

    def gradient(x):
        params, thetas = unpack(x)
        _, g, g_theta, _ = problem.loss_and_gradient_vectors(params, thetas)
        return np.concatenate([g] + g_theta)

    rng = np.random.default_rng(seed)
    x0 = np.concatenate([list(base.values().values()), 0.3 * rng.standard_normal(sum(sizes))])
    return loss, gradient, x0, len(names)


@pytest.mark.parametrize("driving", ["rate", "potential"])
@pytest.mark.parametrize("D", [0.0, 0.3], ids=["D0", "D0.3"])
@pytest.mark.parametrize("scheme", ["be", "bdf2"])
def test_gradient_passes_taylor_test(scheme, D, driving):
    loss, gradient, x0, n_globals = flat_problem(scheme, D, driving)
    rng = np.random.default_rng(11)
    direction = rng.standard_normal(x0.size)
    # Relative perturbations of the globals keep k0 > 0 and alpha inside (0, 1).
    direction[:n_globals] *= 0.1 * np.maximum(np.abs(x0[:n_globals]), 0.1)
    direction[5] = abs(direction[5])  # D >= 0: the derivative at D = 0 is taken one-sided
    rates = taylor_test(loss, x0, gradient(x0), direction, eps0=1e-2, n_halvings=4)
    assert rates.min() > 1.9, rates


@pytest.mark.parametrize("index,name", [(0, "k0"), (2, "Omega"), (3, "kappa"), (5, "D")])
def test_each_global_gradient_passes_taylor_test(index, name):
    loss, gradient, x0, n_globals = flat_problem("be", 0.3, "rate")
    direction = np.zeros_like(x0)
    direction[index] = 0.1 * max(abs(x0[index]), 0.1)
    rates = taylor_test(loss, x0, gradient(x0), direction, eps0=1e-2, n_halvings=4)
    assert rates.min() > 1.9, (name, rates)


@pytest.mark.parametrize("driving", ["rate", "potential"])
def test_logistic_j0_gradient_passes_taylor_test(driving):
    loss, gradient, x0, n_globals = flat_problem("bdf2", 0.0, driving, params=LOGISTIC)
    assert LOGISTIC.names()[-2:] == ["j0_s", "j0_c"] and n_globals == len(LOGISTIC.names())
    rng = np.random.default_rng(12)
    direction = rng.standard_normal(x0.size)
    direction[:n_globals] *= 0.1 * np.maximum(np.abs(x0[:n_globals]), 0.1)
    direction[5] = abs(direction[5])
    assert taylor_test(loss, x0, gradient(x0), direction, eps0=1e-2, n_halvings=4).min() > 1.9
    for index in (n_globals - 2, n_globals - 1):  # j0_s and j0_c alone
        alone = np.zeros(x0.size)
        alone[index] = 0.1 * abs(x0[index])
        rates = taylor_test(loss, x0, gradient(x0), alone, eps0=1.0, n_halvings=4)
        assert rates.min() > 1.9, (LOGISTIC.names()[index], rates)


def test_wrong_gradient_fails_taylor_test():
    # The test must be able to fail: a 1% error in the gradient gives first-order remainders.
    loss, gradient, x0, _ = flat_problem("be", 0.0, "rate")
    direction = np.random.default_rng(5).standard_normal(x0.size) * 0.01
    rates = taylor_test(loss, x0, 1.01 * gradient(x0), direction, eps0=1e-2, n_halvings=4)
    assert rates.min() < 1.5, rates


@pytest.mark.parametrize("driving", ["rate", "potential"])
@pytest.mark.parametrize("scheme", ["be", "bdf2"])
def test_initial_state_gradient_passes_taylor_test(scheme, driving):
    # c^0 as a parameter with frame 0 in the loss; under rate driving the frame-0 target is mean(c^0), so
    # the gradient carries that chain too.
    movies, _ = make_movies(n_particles=2, sites=(25, 40), n_frames=4, t_end=30.0, driving=driving, params=PARAMS,
                            noise=0.02, missing=0.05, scheme=scheme, n_sub=3, seed=4)
    problem = pk.Problem(movies, scheme=scheme, n_sub=3, sigma=0.02, fit_initial=True)
    theta = [0.3 * np.random.default_rng(1).standard_normal(m.n_sites) for m in movies]
    sizes = [m.n_sites for m in movies]
    c0 = np.concatenate(problem.initial_states())

    def loss(x):
        states = np.split(x, np.cumsum(sizes)[:-1])
        return problem.evaluate(PARAMS, theta, states).loss

    gradient = np.concatenate(problem.evaluate(PARAMS, theta, np.split(c0, np.cumsum(sizes)[:-1])).grad_c0)
    direction = 0.05 * np.random.default_rng(2).standard_normal(c0.size)
    rates = taylor_test(loss, c0, gradient, direction, eps0=1e-1, n_halvings=4)
    assert rates.min() > 1.9, rates


@pytest.mark.parametrize("driving", ["rate", "potential"])
def test_drive_gradient_passes_taylor_test(driving):
    # d loss / d drive_f, the frame values of the target mean (rate) or of V (potential), c^0 held fixed.
    from pixelkinetics import _core

    movies, _ = make_movies(n_particles=1, sites=(25, 40), n_frames=4, t_end=30.0, driving=driving, params=PARAMS,
                            noise=0.02, scheme="bdf2", n_sub=5, seed=6)
    problem = pk.Problem(movies, scheme="bdf2", n_sub=5, sigma=0.02)
    theta = [np.zeros(movies[0].n_sites)]
    base = problem._core_movie(movies[0], problem.obs_weights[0], 1.0)
    observed = np.nan_to_num(movies[0].concentration[:, movies[0].mask])
    weight = np.isfinite(movies[0].concentration[:, movies[0].mask]).astype(float)

    def result(drive):
        particle = _core.Movie("p", movies[0].mask.astype(np.uint8), 1.0, True, np.ones(base.n_sites),
                                  problem.initial_states()[0], movies[0].time, driving, drive, observed, weight)
        return _core.Batch([particle]).loss_and_gradient(PARAMS.to_core(), theta, problem.settings)[0]

    if driving == "rate":
        drive0 = np.clip([np.mean(problem.initial_states()[0])] +
                         [np.nanmean(f[movies[0].mask]) for f in movies[0].concentration[1:]], 1e-3, 1 - 1e-3)
    else:
        drive0 = movies[0].voltage.copy()
    direction = 0.02 * np.random.default_rng(3).standard_normal(drive0.size)
    rates = taylor_test(lambda d: result(d)["loss"], drive0, result(drive0)["grad_drive"], direction,
                        eps0=1e-1, n_halvings=4)
    assert rates.min() > 1.9, rates
