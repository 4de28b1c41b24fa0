"""Populations: N homogeneous particles sharing one electrode potential (edge-less sites of one group,
mean weighted by size). A homogeneous population at composition c driven at current I = dc/dt grows
zero-mean perturbations at the rate lambda = dR/dc at fixed V = I (ln j0)'(c) + k0 j0 g'(eta) mu_h'(c);
the solver's own dynamics of a two-particle population must show that rate. Population files are
validated with errors that name the file and the dataset."""
import h5py
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics import Estimate, Movie
from pixelkinetics.kinetics.files import load_populations, write_movies
from pixelkinetics.kinetics.stability import growth_rate, phase_diagram, simulated_growth_rate

#: A layered oxide without a miscibility gap (Omega < 2) and an exchange current that falls with lithium.
NMC = pk.Params(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, D=0.0, b=[0.0], j0_base="logistic", j0_s=12.0,
                j0_c=0.5)


@pytest.mark.parametrize("c, current", [(0.6, -2e-3), (0.45, -2e-3), (0.5, 2e-3), (0.3, -5e-4), (0.8, -5e-3)])
def test_growth_rate_of_the_analysis_is_that_of_the_solver(c, current):
    measured, c_mid = simulated_growth_rate(NMC, c, current)
    predicted = growth_rate(NMC, c_mid, current)
    assert measured == pytest.approx(predicted, rel=0.03, abs=2e-4 * NMC.k0)


def test_instability_boundary_agrees_with_simulations_on_a_10_by_10_grid():
    """Currents of both signs over 1.5 decades, compositions 0.15..0.85: the spread of a simulated
    population grows exactly where the analysis says lambda > 0, and at its rate."""
    currents = np.concatenate([-np.geomspace(5e-4, 2e-2, 5), np.geomspace(5e-4, 2e-2, 5)])
    grid = [(i, c) for i in currents for c in np.linspace(0.15, 0.85, 10)]
    simulated = [simulated_growth_rate(NMC, c, i) for i, c in grid]
    predicted = np.array([growth_rate(NMC, c_mid, i) for (i, _), (_, c_mid) in zip(grid, simulated)])
    measured = np.array([rate for rate, _ in simulated])
    assert 10 <= np.sum(predicted > 0) <= 90          # a real boundary crosses the grid
    np.testing.assert_array_equal(measured > 0, predicted > 0)
    np.testing.assert_allclose(measured, predicted, rtol=1e-2, atol=1e-5)


def test_delithiation_splits_and_lithiation_does_not_for_a_falling_j0():
    currents = np.array([-5e-3, -1e-3, 1e-3, 5e-3])
    lam = phase_diagram(NMC, currents, np.linspace(0.2, 0.8, 7))
    assert (lam[:2] > 0).any() and (lam[2:] < 0).all()


def _write(path, **fields):
    with h5py.File(path, "w") as f:
        g = f.create_group("populations/cells")
        for k, v in fields.items():
            if k == "kind":
                g.attrs["kind"] = v
            else:
                g[k] = v


GOOD = dict(fraction=np.full((3, 4), 0.5), time=[0.0, 1.0, 2.0])


@pytest.mark.parametrize("change, message", [
    (dict(fraction=np.full(4, 0.5)), r"/populations/cells/fraction must be 2-D \(T, N\)"),
    (dict(time=[0.0, 1.0]), r"/populations/cells/time must have shape \(3,\)"),
    (dict(time=[0.0, 2.0, 1.0]), r"/populations/cells/time must be finite and strictly increasing"),
    (dict(fraction=np.full((3, 4), 3.0)), r"/populations/cells/fraction must lie in \[0, 1\]"),
    (dict(fraction=np.vstack([np.full(4, 0.5), np.full(4, np.nan), np.full(4, 0.5)])),
     r"/populations/cells/fraction frame 1 has no measured particle"),
    (dict(size=[1.0, -1.0, 1.0, 1.0]), r"/populations/cells/size must hold 4 positive particle volumes"),
    (dict(current=[1.0, 1.0]), r"/populations/cells/current must be 3 finite values"),
    (dict(current=[1.0] * 3, voltage=[0.0] * 3), r"/populations/cells/give the current or the voltage"),
    (dict(kind="quenched"), r"/populations/cells/kind must be one of"),
    (dict(time=None), r"dataset /populations/cells/time is missing"),
])
def test_bad_population_files_name_file_and_dataset(tmp_path, change, message):
    fields = dict(GOOD, **change)
    fields = {k: v for k, v in fields.items() if v is not None}
    path = tmp_path / "pop.h5"
    _write(path, **fields)
    with pytest.raises(ValueError, match=r"pop\.h5: " + message):
        load_populations(path)


def test_population_file_round_trip_and_movie(tmp_path):
    rng = np.random.default_rng(0)
    p = Movie.population("cells", rng.uniform(0.2, 0.8, (4, 6)), np.arange(4.0), size=rng.uniform(1, 2, 6),
                   current=np.full(4, -1e-3), kind="snapshot")
    write_movies(tmp_path / "pop.h5", [p])
    q = load_populations(tmp_path / "pop.h5")[0]
    np.testing.assert_array_equal(q.fraction, p.fraction)
    assert q.kind == "snapshot" and q.driving == "rate"
    m = q
    assert m.shape == (4, 1, 6) and not m.connect and m.n_sites == 6
    np.testing.assert_array_equal(m.site_weight[0], p.size)


# -- snapshots: the loss compares distributions -------------------------------------------------------
def _snapshot_movie(seed=0, current=-4e-3):
    from pixelkinetics.kinetics.population import synthetic_population

    pop, _ = synthetic_population(NMC, n_particles=30, n_frames=5, current=current, c_start=0.8, noise=0.01,
                                  kind="snapshot", observed=0.6, n_sub=20, seed=seed, name="snap")
    return pop


def test_snapshot_loss_is_the_squared_wasserstein_distance_of_each_frame():
    """Between each frame's observations and the model's values blurred by the noise: every model value
    stands for R copies plus sigma times the problem's fixed draws, so the spread that noise adds to a
    measured distribution is in the model too. The core's loss is that distance less the spread of each
    site's matched copies (constant while no ranks swap)."""
    movie = _snapshot_movie()
    problem = pk.Problem([movie], scheme="bdf2", n_sub=20, sigma=0.01)
    blur = 0.01 * problem._blur[0]
    assert abs(blur.std() - 0.01) < 0.001
    model = problem.simulate(NMC)["snap"][:, 0, :]
    (T, N), R = model.shape, blur.shape[2]
    expected = 0.0
    for f in range(1, T):  # frame 0 is the initial state, outside the loss
        values = np.sort(movie.concentration[f, 0][np.isfinite(movie.concentration[f, 0])])
        quantiles = np.interp((np.arange(N * R) + 0.5) / (N * R), (np.arange(values.size) + 0.5) / values.size,
                              values)
        copies = (model[f][:, None] + blur[f]).ravel()
        matched = np.empty(N * R)
        matched[np.argsort(copies)] = quantiles
        distance = np.sum((copies - matched) ** 2) / R
        spread = np.sum(np.var((matched - blur[f].ravel()).reshape(N, R), axis=1))
        expected += 0.5 * values.size / N * (distance - spread) / 0.01 ** 2
    assert problem.loss(NMC) == pytest.approx(expected, rel=1e-10)


def test_snapshot_gradient_passes_taylor_test():
    from pixelkinetics.verification import taylor_test

    movie = _snapshot_movie(seed=2)
    problem = pk.Problem([movie], scheme="bdf2", n_sub=20, sigma=0.01, lam_0=1.0)
    names = NMC.names()
    rng = np.random.default_rng(3)
    x0 = np.concatenate([list(NMC.values().values()), 0.2 * rng.standard_normal(movie.n_sites)])

    def split(x):
        return NMC.replace(**dict(zip(names, x[:len(names)]))), [x[len(names):]]

    def loss(x):
        p, theta = split(x)
        return problem.evaluate(p, theta).loss

    def gradient(x):
        p, theta = split(x)
        e = problem.evaluate(p, theta)
        return np.concatenate([e.grad_globals] + e.grad_theta)

    direction = 1e-2 * rng.standard_normal(x0.size)
    for fixed in ("alpha", "B", "D", "kappa"):  # B = D = kappa = 0 hold for a population
        direction[names.index(fixed)] = 0.0
    # Small steps: the matching is smooth while no two model values of a frame swap ranks (from 2.5e-4
    # one pair does here, and the remainders above it do not fall at second order).
    rates = taylor_test(loss, x0, gradient(x0), direction, eps0=6e-5, n_halvings=4)
    assert rates.min() > 1.9, rates


@pytest.mark.slow
def test_tracked_populations_recover_the_logistic_exchange_current():
    """Three tracked populations of 80 particles (two delithiated at different currents, one lithiated),
    noise 0.01, per-particle rates theta ~ N(0, 0.3^2): k0, Omega, j0_s, j0_c and the theta of every
    particle are fitted through the movie code; s and c* within 10%, every 95% interval holds the truth."""
    from pixelkinetics import FitConfig, fit
    from pixelkinetics.kinetics.population import synthetic_population
    from pixelkinetics.kinetics.uncertainty import laplace

    movies = [synthetic_population(NMC, n_particles=80, n_frames=10, current=current, c_start=c_start, noise=0.01,
                                   seed=k, name=f"run{k}")[0]
              for k, (current, c_start) in enumerate([(-2e-3, 0.85), (-6e-3, 0.85), (2e-3, 0.2)])]
    start = NMC.replace(k0=0.03, Omega=0.5, j0_s=6.0, j0_c=0.4)
    config = FitConfig(initial=start, free=["k0", "Omega", "j0_s", "j0_c"], lam_s=0.0, lam_0=1 / 0.3 ** 2,
                       sigma=0.01, n_sub=40)
    result = fit(movies, config, progress=False)
    assert abs(result.params.j0_s / NMC.j0_s - 1) < 0.1 and abs(result.params.j0_c / NMC.j0_c - 1) < 0.1
    posterior = laplace(movies, result, progress=False)
    truth = NMC.values()
    for name, low, high in zip(posterior.free, posterior.lower, posterior.upper):
        assert low <= truth[name] <= high, (name, low, high)


@pytest.mark.slow
@pytest.mark.parametrize("start", [dict(k0=0.03, Omega=0.5, j0_s=9.0, j0_c=0.4),
                                   dict(k0=0.07, Omega=1.5, j0_s=15.0, j0_c=0.6)])
def test_snapshot_populations_recover_the_logistic_exchange_current(start):
    """Four populations of 100 particles seen as snapshots (each frame's fractions shuffled: no particle
    is followed), two delithiated and two lithiated, noise 0.01, theta ~ N(0, 0.3^2): from starts 25% off
    in s and 20% in c* on either side, the distribution-matched fit recovers s and c* within 10%. The
    model's particles keep the prior's quantiles of theta and the deblurred frame-0 quantiles (with 400
    free rates and initial states the starts had ended at s = 11.70 and 12.65 with the same chi-square).
    The rank matching still leaves local minima: the starts end at s = 11.43 (loss 3268.9) and 11.92
    (3260.7), about one bootstrap sd apart. Error bars that hold the truth come from the bootstrap
    (tests/test_bootstrap.py)."""
    from pixelkinetics import FitConfig, fit
    from pixelkinetics.kinetics.population import synthetic_population

    design = [(-2e-3, 0.85), (-6e-3, 0.85), (2e-3, 0.2), (6e-3, 0.2)]
    movies = [synthetic_population(NMC, n_particles=100, n_frames=12, current=current, c_start=c_start,
                                   noise=0.01, kind="snapshot", observed=1.0, seed=k, name=f"run{k}")[0]
              for k, (current, c_start) in enumerate(design)]
    assert all(m.kind == "snapshot" for m in movies)
    config = FitConfig(initial=NMC.replace(**start), free=["k0", "Omega", "j0_s", "j0_c"], lam_s=0.0,
                       lam_0=1 / 0.3 ** 2, sigma=0.01, n_sub=40, fit_theta=False, fit_initial=False)
    result = fit(movies, config, progress=False)
    assert abs(result.params.j0_s / NMC.j0_s - 1) < 0.1 and abs(result.params.j0_c / NMC.j0_c - 1) < 0.1


def test_snapshot_particles_take_the_prior_quantiles_of_theta_unless_fitted():
    """Snapshot particles cannot be told apart from frame to frame: by default the model's particles
    spread over the prior N(0, 1/lam_0) at its quantiles (a fixed order), tracked particles start at 0,
    and a fit with fit_theta off keeps them."""
    from pixelkinetics import FitConfig, fit
    from pixelkinetics.kinetics.population import synthetic_population

    snap = synthetic_population(NMC, n_particles=50, n_frames=4, current=-3e-3, c_start=0.8, noise=0.01,
                                kind="snapshot", seed=1, name="snap")[0]
    tracked = synthetic_population(NMC, n_particles=50, n_frames=4, current=-3e-3, c_start=0.8, noise=0.01,
                                   seed=1, name="tracked")[0]
    config = FitConfig(initial=NMC, free=["k0"], fit_theta=False, lam_s=0.0, lam_0=1 / 0.3 ** 2, sigma=0.01)
    problem = config.problem([snap, tracked])
    theta_snap, theta_tracked = problem.theta_vectors(None)
    assert abs(theta_snap.mean()) < 1e-12 and abs(theta_snap.std() - 0.3) < 0.02
    assert not np.all(np.diff(theta_snap) > 0)  # shuffled, not sorted against the particles' order
    np.testing.assert_array_equal(theta_tracked, 0.0)
    result = fit([snap, tracked], config, progress=False, max_iter=2)
    np.testing.assert_allclose(result.theta["snap"][snap.mask], theta_snap)


def test_snapshot_initial_states_lose_the_noise_broadening():
    """Frame-0 quantiles of a snapshot are the particles' distribution broadened by the noise: the model's
    initial states keep their mean and lose sigma^2 of their variance."""
    from pixelkinetics.kinetics.observations import initial_condition
    from pixelkinetics.kinetics.population import synthetic_population

    snap = synthetic_population(NMC, n_particles=400, n_frames=3, current=-3e-3, c_start=0.6, spread=0.02,
                                noise=0.01, kind="snapshot", seed=5, name="snap")[0]
    raw, deblurred = initial_condition(snap), initial_condition(snap, sigma=0.01)
    assert deblurred.mean() == pytest.approx(raw.mean(), abs=1e-12)
    assert deblurred.var() == pytest.approx(raw.var() - 0.01 ** 2, rel=1e-9)
    assert abs(deblurred.std() - 0.02) < 0.003  # the particles' own spread


def test_population_files_go_through_fit_and_simulate_commands(tmp_path, cli):
    from pixelkinetics.kinetics.population import synthetic_population

    pop, _ = synthetic_population(NMC, n_particles=20, n_frames=5, current=-3e-3, c_start=0.8, seed=4, name="cells")
    write_movies(tmp_path / "pop.h5", [pop])
    (tmp_path / "fit.toml").write_text(
        '[model]\nk0 = 0.03\nalpha = 0.5\nOmega = 1.0\nkappa = 0.0\nB = 0.0\nb = [0.0]\nj0_base = "logistic"\n'
        'j0_s = 8.0\nj0_c = 0.45\n[fit]\nfree = ["k0", "j0_s", "j0_c"]\nlam_s = 0.0\nlam_0 = 10.0\nsigma = 0.01\n')

    r = cli("fit", "pop.h5", "-o", "res.h5", "--config", "fit.toml", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "j0_s" in r.stdout
    r = cli("simulate", "pop.h5", "-o", "model.h5", "--results", "res.h5")
    assert r.returncode == 0, r.stderr
    back = load_populations(tmp_path / "model.h5")[0]
    assert back.shape == pop.shape and back.kind == "tracked"


def test_populations_split_where_the_analysis_says_and_stay_unimodal_elsewhere():
    """10 x 10 populations of 100 particles (spread 0.005), each driven while its mean moves by 0.1
    through c, with a steep logistic j0 (s = 40). Split = bimodal (Sarle's coefficient > 5/9) with a
    grown spread. Where the analysis grows a small spread more than 20-fold over the window (ln A > 3),
    every population splits; where it does not grow it (ln A < 0.5), none does; in between either."""
    from pixelkinetics.kinetics.stability import stability_map

    steep = NMC.replace(j0_s=40.0)
    currents = np.concatenate([-np.geomspace(5e-2, 5e-4, 5), np.geomspace(5e-4, 5e-2, 5)])
    result = stability_map(steep, currents, np.linspace(0.15, 0.85, 10), travel=0.1)
    assert not np.isnan(result.bimodality).any()
    grows, stays = result.log_growth > 3.0, result.log_growth < 0.5
    assert grows.sum() >= 15 and stays.sum() >= 50
    assert result.split[grows].all() and not result.split[stays].any()
    assert np.mean(result.split == (result.predicted > 0)) >= 0.95   # the boundary lambda = 0 itself
    assert result.agreement() == 1.0


def test_stability_command_draws_the_diagram(tmp_path, cli):
    r = cli("stability", "-o", "stability.png", "--grid", "4", "--particles", "40")
    assert r.returncode == 0, r.stderr
    assert "16 points (I, c)" in r.stdout and (tmp_path / "stability.png").stat().st_size > 10_000
    (tmp_path / "bad.toml").write_text("[model]\nB = 1.0\n")
    r = cli("stability", "-o", "x.png", "--config", "bad.toml")
    assert r.returncode == 2 and "a population has B = 0" in r.stderr


def test_laplace_bands_of_j0_count_the_logistic_globals():
    """The band on ln(k0 j0(c)) propagates every free global: d ln j0 / d j0_s = -(c - c*) sigma(s (c - c*))
    and d / d j0_c = s sigma(s (c - c*)), sigma the logistic function (they had been left out)."""
    from pixelkinetics import FitConfig
    from pixelkinetics.kinetics.population import synthetic_population
    from pixelkinetics.kinetics.uncertainty import laplace

    movie = synthetic_population(NMC, n_particles=20, n_frames=5, current=-3e-3, c_start=0.8, seed=1,
                                 theta_std=0.0, name="cells")[0]
    config = FitConfig(initial=NMC, free=["k0", "j0_s", "j0_c"], fit_theta=False, fit_initial=False, lam_s=0.0,
                       sigma=0.01, n_sub=20)
    post = laplace([movie], Estimate(config, NMC, {}))
    c = np.linspace(0.1, 0.9, 9)
    g = post._gradient(c, "ln_j0")
    switch = 1 / (1 + np.exp(-NMC.j0_s * (c - NMC.j0_c)))
    np.testing.assert_allclose(g[:, post.free.index("k0")], 1.0, rtol=1e-7)
    np.testing.assert_allclose(g[:, post.free.index("j0_s")], -(c - NMC.j0_c) * switch, atol=1e-7)
    np.testing.assert_allclose(g[:, post.free.index("j0_c")], NMC.j0_s * switch, rtol=1e-6)
    curves = post.curves(c)
    assert np.all(curves["j0_upper"] > curves["j0"] * 1.001)
