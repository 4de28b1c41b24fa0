"""Gauss-Newton Hessian-vector products. With x = (raw globals, theta per site, c^0 per site) and the
loss J(x) = misfit(x) + penalty(theta), the core gives H d = J_r^T J_r d + P d (tangent-linear sweep,
then adjoint sweep). At a zero-residual point (data = the model's own output) H is the exact Hessian,
so it must agree with central differences of the adjoint gradient, (g(x + e d) - g(x - e d)) / 2e,
to 1e-6 relative; and H is symmetric: u.Hv = v.Hu to 1e-10 relative. Backward Euler and BDF2,
D = 0 and D > 0, rate and potential driving."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.synthetic import make_movies

PARAMS = pk.Params(k0=0.03, alpha=0.45, Omega=3.0, kappa=1.5, B=0.7, D=0.0, a=[0.2, -0.1], b=[0.1, -0.3, 0.2],
                   j0_base="sqrt")
CASES = [("be", 0.0, "rate"), ("bdf2", 0.0, "rate"), ("be", 0.4, "rate"), ("bdf2", 0.4, "potential"),
         ("be", 0.0, "potential"), ("bdf2", 0.0, "logistic")]


def zero_residual_problem(scheme, D, driving, seed=5):
    """Noise-free movies from the solver itself: the fit's residuals vanish at the truth. Driving
    "logistic" is rate driving with the logistic j0 base (its globals j0_s, j0_c in the product)."""
    params = PARAMS.replace(D=D)
    if driving == "logistic":
        params, driving = params.replace(j0_base="logistic", j0_s=8.0, j0_c=0.45), "rate"
    movies, truth = make_movies(n_particles=2, sites=(25, 40), n_frames=4, t_end=30.0, driving=driving,
                                params=params, noise=0.0, scheme=scheme, n_sub=6, seed=seed)
    problem = pk.Problem(movies, scheme=scheme, n_sub=6, sigma=0.02, lam_s=0.3, lam_0=0.1, fit_initial=True)
    return problem, params, problem.theta_vectors(truth.theta), problem.initial_states()


def random_direction(rng, params, theta):
    d_globals = 1e-2 * rng.standard_normal(len(params.names()))
    if params.D == 0:
        d_globals[params.names().index("D")] = 0.0  # D >= 0: no central differences at D = 0
    return (d_globals, [0.1 * rng.standard_normal(t.size) for t in theta],
            [1e-2 * rng.standard_normal(t.size) for t in theta])


def flatten(globals_, theta, c0):
    return np.concatenate([np.asarray(globals_)] + list(theta) + list(c0))


@pytest.mark.parametrize("scheme,D,driving", CASES)
def test_gauss_newton_product_matches_differences_of_the_gradient_at_zero_residual(scheme, D, driving):
    problem, params, theta, c0 = zero_residual_problem(scheme, D, driving)
    rng = np.random.default_rng(1)
    d_g, d_theta, d_c0 = random_direction(rng, params, theta)
    lin = problem.linearize(params, theta, c0)
    assert lin.evaluation.misfit < 1e-18  # the point really is zero-residual
    hd = lin.product(d_g, d_theta, d_c0)
    names = params.names()
    x0 = np.array([params.values()[n] for n in names])

    def gradient(eps):
        p = params.replace(**dict(zip(names, x0 + eps * d_g)))
        e = problem.evaluate(p, [t + eps * d for t, d in zip(theta, d_theta)],
                             [c + eps * d for c, d in zip(c0, d_c0)])
        return flatten(e.grad_globals, e.grad_theta, e.grad_c0)

    eps = 1e-4
    differences = (gradient(eps) - gradient(-eps)) / (2 * eps)
    product = flatten(hd.globals, hd.theta, hd.c0)
    assert np.linalg.norm(product - differences) <= 1e-6 * np.linalg.norm(product)
    # Each block on its own, so that a wrong small block cannot hide behind a large one.
    n_g = len(names)
    assert np.linalg.norm(product[:n_g] - differences[:n_g]) <= 1e-6 * np.linalg.norm(product[:n_g])


@pytest.mark.parametrize("scheme,D,driving", CASES)
def test_gauss_newton_product_is_symmetric(scheme, D, driving):
    problem, params, theta, c0 = zero_residual_problem(scheme, D, driving)
    # Away from the optimum: H is the Gauss-Newton matrix, symmetric by construction, not the Hessian.
    theta = [t + 0.2 for t in theta]
    lin = problem.linearize(params.replace(Omega=3.3), theta, [np.clip(c + 0.02, 0.01, 0.99) for c in c0])
    rng = np.random.default_rng(2)
    u, v = random_direction(rng, params, theta), random_direction(rng, params, theta)
    hu, hv = lin.product(*u), lin.product(*v)
    u_hv = flatten(*u) @ flatten(hv.globals, hv.theta, hv.c0)
    v_hu = flatten(*v) @ flatten(hu.globals, hu.theta, hu.c0)
    assert abs(u_hv - v_hu) <= 1e-10 * abs(u_hv)
    assert hu.stats["n_tangent_solves"] == hu.stats["n_adjoint_solves"] > 0
    assert hu.stats["n_newton"] == 0  # no Newton iterations: the forward solutions are reused


def test_quadratic_model_is_half_the_curvature_of_the_misfit_along_the_direction():
    problem, params, theta, c0 = zero_residual_problem("be", 0.0, "rate")
    rng = np.random.default_rng(3)
    d_g, d_theta, d_c0 = random_direction(rng, params, theta)
    lin = problem.linearize(params, theta, c0)
    hd = lin.product(d_g, d_theta, d_c0)
    names = params.names()
    x0 = np.array([params.values()[n] for n in names])
    eps = 1e-3
    p = params.replace(**dict(zip(names, x0 + eps * d_g)))
    misfit = problem.evaluate(p, [t + eps * d for t, d in zip(theta, d_theta)],
                              [c + eps * d for c, d in zip(c0, d_c0)]).misfit
    # At zero residual the misfit along d is eps^2 d^T H d / 2 + O(eps^3).
    assert misfit / eps**2 == pytest.approx(hd.quadratic, rel=1e-2)


def test_products_need_matching_directions():
    problem, params, theta, c0 = zero_residual_problem("be", 0.0, "rate")
    lin = problem.linearize(params, theta, c0, with_gradient=False)
    with pytest.raises(ValueError, match="d_globals"):
        lin.product(np.zeros(3), theta)
    with pytest.raises(ValueError, match="direction theta has"):
        lin.product(np.zeros(len(params.names())), [t[:-1] for t in theta])
    with pytest.raises(ValueError, match="direction has 1 theta"):
        lin.product(np.zeros(len(params.names())), theta[:1], c0[:1])
