"""The public Python surface of MODEL.md section 11: load_movies, Params, Problem with loss,
loss_and_gradient and simulate, with theta and gradients as (H, W) maps that are NaN off the mask."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.files import write_movies
from pixelkinetics.kinetics.observations import EPS


def test_section_11_workflow(tmp_path, small_movies):
    movies, truth = small_movies
    write_movies(tmp_path / "data.h5", movies)
    loaded = pk.load_movies(tmp_path / "data.h5")
    assert [m.name for m in loaded] == [m.name for m in movies]
    p = pk.Params(k0=1e-2, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, a=[], b=[0.0], j0_base="sqrt")
    prob = pk.Problem(loaded, scheme="be", n_sub=20, sigma=0.02, lam_s=0.0, lam_0=0.0)
    theta = {m.name: np.where(m.mask, 0.1, np.nan) for m in loaded}
    loss = prob.loss(p, theta)
    loss2, g_globals, g_theta = prob.loss_and_gradient(p, theta)
    assert loss == pytest.approx(loss2, rel=1e-12)
    assert list(g_globals) == ["k0", "alpha", "Omega", "kappa", "B", "D", "b0"]
    fitted = prob.simulate(p, theta)
    for m in loaded:
        assert fitted[m.name].shape == m.shape
        assert np.isnan(fitted[m.name][:, ~m.mask]).all()
        assert np.isfinite(fitted[m.name][:, m.mask]).all()
        assert g_theta[m.name].shape == m.mask.shape
        assert np.isnan(g_theta[m.name][~m.mask]).all()


def test_missing_theta_means_zero(small_movies):
    movies, _ = small_movies
    prob = pk.Problem(movies, n_sub=6)
    zeros = {m.name: np.where(m.mask, 0.0, np.nan) for m in movies}
    assert prob.loss(pk.Params()) == prob.loss(pk.Params(), zeros)


def test_first_frame_is_the_filled_and_clipped_initial_condition(small_movies):
    movies, _ = small_movies
    m = movies[0]
    frame0 = pk.Problem([m], n_sub=4).simulate(pk.Params())[m.name][0][m.mask]
    observed = m.concentration[0][m.mask]
    expected = np.where(np.isfinite(observed), observed, np.nanmean(observed))
    np.testing.assert_allclose(frame0, np.clip(expected, EPS, 1 - EPS), rtol=0, atol=0)


def test_sites_are_numbered_row_major(small_movies):
    movies, _ = small_movies
    m = movies[0]
    core = pk.Problem([m], n_sub=4)._batch
    particle = pk._core.Movie(m.name, m.mask.astype(np.uint8), 1.0, True, np.ones(m.n_sites),
                                 np.full(m.n_sites, 0.5), m.time, "rate", np.full(m.shape[0], 0.5),
                                 np.zeros((m.shape[0], m.n_sites)), np.ones((m.shape[0], m.n_sites)))
    assert core.n_movies == 1
    np.testing.assert_array_equal(particle.pixel, np.flatnonzero(m.mask))
    i, j = map(np.asarray, particle.edges)
    # Every edge joins 4-neighbours: pixel distance 1 (same row) or W (next row).
    distance = np.flatnonzero(m.mask)[j] - np.flatnonzero(m.mask)[i]
    assert set(np.unique(distance)) <= {1, m.mask.shape[1]}


def test_params_replace_and_names():
    p = pk.Params(a=[0.1, 0.2], b=[0.0, 0.3])
    assert p.names() == ["k0", "alpha", "Omega", "kappa", "B", "D", "a1", "a2", "b0", "b1"]
    q = p.replace(a2=-1.0, b0=0.5, k0=3.0)
    assert (q.a, q.b, q.k0) == ([0.1, -1.0], [0.5, 0.3], 3.0)
    with pytest.raises(KeyError, match="a3 is not a parameter"):
        p.replace(a3=1.0)


def test_linear_solver_variants_give_the_same_gradient(small_movies):
    movies, truth = small_movies
    out = {}
    for kind in ["auto", "symmetric", "lu"]:
        prob = pk.Problem(movies, n_sub=8, linear_solver=kind)
        out[kind] = prob.loss_and_gradient_vectors(truth.params, prob.theta_vectors(truth.theta))
    for kind in ["symmetric", "lu"]:
        assert out[kind][0] == pytest.approx(out["auto"][0], rel=1e-10)
        np.testing.assert_allclose(out[kind][1], out["auto"][1], rtol=1e-8)
    assert out["lu"][3]["n_symmetric"] == 0 and out["auto"][3]["n_symmetric"] > 0


def test_params_curves_follow_model_section_2_and_3():
    # mu_h(c) = ln(c/(1-c)) + Omega (1 - 2c) + sum a_m P_m(2c - 1); j0 = base(c) exp(sum b_m P_m(2c - 1)).
    p = pk.Params(Omega=4.5, a=[0.1, -0.2], b=[0.3, 0.5, -0.3], j0_base="sqrt")
    c = np.array([0.2, 0.5, 0.9])
    x = 2 * c - 1
    p2 = 0.5 * (3 * x ** 2 - 1)
    np.testing.assert_allclose(p.mu_h(c), np.log(c / (1 - c)) + 4.5 * (1 - 2 * c) + 0.1 * x - 0.2 * p2, rtol=1e-14)
    np.testing.assert_allclose(p.j0(c), np.sqrt(c * (1 - c)) * np.exp(0.3 + 0.5 * x - 0.3 * p2), rtol=1e-14)
    asym = p.replace(j0_base="asym", b=[0.0])
    np.testing.assert_allclose(asym.j0(c), (1 - c) * np.sqrt(c * (1 - c)), rtol=1e-14)
