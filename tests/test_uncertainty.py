"""The Laplace approximation: exact block algebra, calibration over noise draws, identifiability and
model comparison."""
from __future__ import annotations

import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics import FitConfig, Params, Problem, fit
from pixelkinetics.kinetics.comparison import compare_models
from pixelkinetics.kinetics.coordinates import FitCoordinates
from pixelkinetics.kinetics.estimate import Estimate
from pixelkinetics.kinetics.synthetic import make_movies, observe
from pixelkinetics.kinetics.uncertainty import laplace

TRUTH = Params(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0, 0.3, -0.2], j0_base="sqrt")


def _effective_truth(movies, truth):
    """With theta_mean = "zero" the fit's k0 carries the mean rate: the truth it estimates."""
    mean = np.concatenate([truth.theta[m.name][m.mask] for m in movies]).mean()
    values = truth.params.values()
    values["k0"] *= np.exp(mean)
    return values


def _dense_covariance(movies, config, params, theta, c0):
    """The posterior covariance from the whole Gauss-Newton Hessian, probed column by column in the fit
    coordinates, with mean(theta) = 0 as a constraint: the reference the block algebra must reproduce."""
    problem = Problem(movies, scheme=config.scheme, n_sub=config.n_sub, sigma=config.sigma, lam_s=config.lam_s,
                      fit_initial=True, newton_tol=config.newton_tol)
    thetas, c0s = problem.theta_vectors(theta), problem.c0_vectors(c0)
    lin = problem.linearize(params, thetas, c0s, with_gradient=False)
    names = params.names()
    free = [n for n in names if n in config.free]
    coordinates = FitCoordinates(free)
    jac = coordinates.jacobian(coordinates.z(params))
    sizes = [m.n_sites for m in movies]
    n_sites, nf = sum(sizes), len(free)
    split = np.cumsum(sizes)[:-1]

    def product(v):
        raw = np.zeros(len(names))
        raw[[names.index(n) for n in free]] = v[:nf] * jac
        r = lin.product(raw, np.split(v[nf:nf + n_sites], split), np.split(v[nf + n_sites:], split))
        g = r.globals[[names.index(n) for n in free]] * jac
        return np.concatenate([g, np.concatenate(r.theta), np.concatenate(r.c0)])

    n = nf + 2 * n_sites
    H = np.column_stack([product(e) for e in np.eye(n)])
    a = np.zeros(n)
    a[nf:nf + n_sites] = 1.0
    kkt = np.block([[0.5 * (H + H.T), a[:, None]], [a[None, :], np.zeros((1, 1))]])
    return np.linalg.inv(kkt)[:n, :n], nf, n_sites


def test_block_algebra_reproduces_the_dense_posterior(restore_threads):
    pk.set_num_threads(2)
    movies, truth = make_movies(n_particles=3, sites=(20, 45), n_frames=5, t_end=40.0, params=TRUTH,
                                scheme="bdf2", n_sub=10, seed=3)
    config = FitConfig(initial=TRUTH, n_sub=10)
    c0 = {m.name: np.clip(m.concentration[0], 0.01, 0.99) for m in movies}
    post = laplace(movies, Estimate(config, TRUTH, truth.theta, c0))
    cov, nf, n_sites = _dense_covariance(movies, config, TRUTH, truth.theta, c0)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(np.sqrt(np.diag(post.covariance)), sd[:nf], rtol=1e-7)
    ours = np.concatenate([post.theta_sd[m.name][m.mask] for m in movies])
    np.testing.assert_allclose(ours, sd[nf:nf + n_sites], rtol=1e-7)
    c0_sd = np.concatenate([post.c0_sd[m.name][m.mask] for m in movies])
    np.testing.assert_allclose(c0_sd, sd[nf + n_sites:], rtol=1e-7)
    # One product per free global and one per unknown of the largest particle: all particles at once.
    assert post.n_hessp == nf + 2 * max(m.n_sites for m in movies)
    assert post.extra["asymmetry"] < 1e-10


@pytest.fixture(scope="module")
def calibration_draws():
    """Fits and Laplace approximations of many noise draws from one truth (the model's own numerics)."""
    movies, truth = make_movies(n_particles=2, sites=(60, 90), n_frames=8, t_end=70.0, params=TRUTH,
                                scheme="bdf2", n_sub=20, seed=3, noise=0.0)
    # b1 is left out: on two small particles it trades off against Omega non-linearly (Omega's z-scores
    # then scatter 1.45 times wider than the Laplace sd).
    config = FitConfig(initial=TRUTH, free=["k0", "Omega", "kappa", "b2"], loss_tol=1e-3)
    draws = []
    for d in range(40):
        data = observe(movies, truth.concentration, 0.02, rng=1000 + d)
        result = fit(data, config, progress=False)
        assert result.success, result.message
        draws.append((result, laplace(data, result)))
    return movies, truth, draws


def test_intervals_of_the_globals_cover_the_truth(calibration_draws, restore_threads):
    movies, truth, draws = calibration_draws
    values = _effective_truth(movies, truth)
    inside = np.array([[lo <= values[n] <= hi for n, lo, hi in zip(p.free, p.lower, p.upper)] for _, p in draws])
    coverage = inside.mean()
    assert 0.90 <= coverage <= 0.99, f"95% intervals cover the truth in {100 * coverage:.1f}% of draws"


def test_theta_sd_matches_the_scatter_across_draws(calibration_draws):
    movies, _, draws = calibration_draws
    thetas = np.array([np.concatenate([r.theta[m.name][m.mask] for m in movies]) for r, _ in draws])
    predicted = np.array([np.concatenate([p.theta_sd[m.name][m.mask] for m in movies]) for _, p in draws])
    empirical = thetas.std(axis=0, ddof=1)
    ratio = np.sqrt(np.mean(predicted ** 2, axis=0)) / empirical
    # Each pixel's scatter from 40 draws is itself uncertain by ~11%: compare the typical pixel.
    assert 0.8 <= np.median(ratio) <= 1.2, f"median predicted / empirical theta sd {np.median(ratio):.3f}"


@pytest.mark.parametrize("driving", ["rate", "potential"])
def test_planted_degeneracy_is_named(driving):
    movies, truth = make_movies(n_particles=2, sites=(30, 50), n_frames=6, t_end=50.0, params=TRUTH,
                                driving=driving, scheme="bdf2", n_sub=10, seed=5)
    config = FitConfig(initial=TRUTH, free=["k0", "Omega", "kappa", "B", "b1"], n_sub=10)
    c0 = {m.name: np.clip(m.concentration[0], 0.01, 0.99) for m in movies}
    post = laplace(movies, Estimate(config, TRUTH, truth.theta, c0))
    sd = dict(zip(post.free, post.sd))
    if driving == "potential":  # V is given: B (c - cbar) and Omega (1 - 2c) act differently
        assert post.undetermined == []
        assert all(np.isfinite(v) for v in sd.values())
        return
    # Under rate driving V absorbs constants, so only B - 2 Omega acts: moves along dOmega : dB = 1 : 2 are free.
    assert len(post.undetermined) == 1
    comb = post.undetermined[0]
    assert comb.coefficients["B"] == pytest.approx(1.0)
    assert comb.coefficients["Omega"] == pytest.approx(0.5, abs=1e-4)
    assert all(abs(comb.coefficients[n]) < 1e-4 for n in ("k0", "kappa", "b1"))
    assert "0.5 Omega + B is not determined" in comb.describe()
    assert np.isinf(sd["Omega"]) and np.isinf(sd["B"])
    assert all(np.isfinite(sd[n]) for n in ("k0", "kappa", "b1"))


@pytest.mark.parametrize("base", ["one", "sqrt", "asym"])
def test_model_comparison_picks_the_true_j0_base(base, restore_threads):
    pk.set_num_threads(2)
    truth = Params(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0, 0.3], j0_base=base)
    movies, _ = make_movies(n_particles=2, sites=(60, 90), n_frames=8, t_end=70.0, params=truth, scheme="bdf2",
                            n_sub=20, seed=4)
    config = FitConfig(initial=Params(k0=0.02, Omega=4.0, kappa=1.5, b=[0.0], j0_base="sqrt"),
                       free=["k0", "Omega", "kappa"])
    comparison = compare_models(movies, config, bases=("one", "sqrt", "asym"), orders=(1, 2))
    assert (comparison.preferred.j0_base, comparison.preferred.order) == (base, 1), "\n".join(comparison.table())


def test_laplace_with_globals_only_inverts_their_gauss_newton_block():
    """No pixel unknowns (fit_theta and fit_initial off): the covariance is the inverse of the globals'
    Gauss-Newton Hessian in the fit coordinates (no empty pixel blocks to eliminate)."""
    movies, truth = make_movies(n_particles=2, sites=(20, 40), n_frames=5, t_end=40.0, params=TRUTH,
                                scheme="bdf2", n_sub=10, seed=5)
    config = FitConfig(initial=TRUTH, free=["k0", "Omega", "kappa"], fit_theta=False, fit_initial=False, n_sub=10)
    post = laplace(movies, Estimate(config, TRUTH, {m.name: np.zeros(m.shape[1:]) for m in movies}))
    problem = Problem(movies, scheme="bdf2", n_sub=10, sigma=config.sigma, lam_s=config.lam_s)
    lin = problem.linearize(TRUTH, [np.zeros(m.n_sites) for m in movies], None, with_gradient=False)
    names = TRUTH.names()
    coordinates = FitCoordinates(post.free)
    jac = coordinates.jacobian(coordinates.z(TRUTH))
    H = np.zeros((3, 3))
    for i, n in enumerate(post.free):
        raw = np.zeros(len(names))
        raw[names.index(n)] = jac[i]
        g = lin.product(raw, [np.zeros(m.n_sites) for m in movies], [np.zeros(m.n_sites) for m in movies]).globals
        H[:, i] = [g[names.index(m)] * jac[j] for j, m in enumerate(post.free)]
    np.testing.assert_allclose(post.covariance, np.linalg.inv(0.5 * (H + H.T)), rtol=1e-8)
