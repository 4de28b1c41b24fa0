"""Golden values (MODEL.md section 10): an independent float64 implementation of the contract computed
the concentration at every frame, V at frames >= 1, the loss and its gradient for small cases
(rate and potential driving, NaN pixels, BDF2, a reaction-limited case with the asymmetric j0 base,
a 32-site population). The solver must agree to 1e-9 in concentration and V, and 1e-7 relative in
the loss and every gradient entry."""
import h5py
import numpy as np
import pytest

import pixelkinetics as pk

CASES = ["be_full", "bdf2_full", "be_reaction_limited_asym", "be_one_population"]


def load_case(path, case):
    with h5py.File(path, "r") as f:
        g = f["cases"][case]
        P = dict(g["parameters"].attrs)
        S = dict(g["settings"].attrs)
        theta = {n: g["theta"][n][()] for n in g["theta"]}
        expected = {
            "concentration": {n: g["expected/concentration"][n][()] for n in g["expected/concentration"]},
            "voltage": g["expected/voltage"][()],
            "loss": float(g["expected"].attrs["loss"]),
            "gradient": {k: float(v) for k, v in g["expected/gradient"].attrs.items()},
            "gradient_theta": {n: g["expected/gradient_theta"][n][()] for n in g["expected/gradient_theta"]},
        }
    params = pk.Params(k0=P["k0"], alpha=P["alpha"], Omega=P["Omega"], kappa=P["kappa"], B=P["B"], D=P["D"],
                       a=list(P["a"]), b=list(P["b"]), j0_base=str(P["j0_base"]))
    movies = pk.load_movies(path, group=f"cases/{case}")
    problem = pk.Problem(movies, scheme=str(S["scheme"]), n_sub=int(S["n_sub"]), sigma=float(S["sigma"]),
                         lam_s=float(S["lam_s"]), lam_0=float(S["lam_0"]))
    return problem, params, theta, expected


@pytest.mark.parametrize("case", CASES)
def test_concentration_and_voltage_match_golden(golden_path, case):
    problem, params, theta, expected = load_case(golden_path, case)
    solution = problem.solve(params, theta)
    for name, c in expected["concentration"].items():
        np.testing.assert_allclose(solution.concentration[name], c, rtol=0, atol=1e-9, equal_nan=True)
    voltage = np.array([solution.voltage[m.name][1:] for m in problem.movies])
    np.testing.assert_allclose(voltage, expected["voltage"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_loss_and_gradient_match_golden(golden_path, case):
    problem, params, theta, expected = load_case(golden_path, case)
    loss, g_globals, g_theta = problem.loss_and_gradient(params, theta)
    assert loss == pytest.approx(expected["loss"], rel=1e-7, abs=0)
    assert set(g_globals) == set(expected["gradient"])
    for name, value in expected["gradient"].items():
        # Entries that vanish exactly (kappa and D of an edge-less population) must vanish here too.
        assert g_globals[name] == pytest.approx(value, rel=1e-7, abs=1e-9), name
    for name, g in expected["gradient_theta"].items():
        np.testing.assert_allclose(g_theta[name], g, rtol=1e-7, atol=1e-7 * np.nanmax(np.abs(g)),
                                   equal_nan=True)


@pytest.mark.parametrize("case", CASES)
def test_loss_alone_equals_loss_of_gradient_run(golden_path, case):
    problem, params, theta, expected = load_case(golden_path, case)
    assert problem.loss(params, theta) == pytest.approx(expected["loss"], rel=1e-7, abs=0)


@pytest.mark.parametrize("linear_solver", ["symmetric", "lu"])
def test_linear_solver_variants_agree_on_golden(golden_path, linear_solver):
    problem, params, theta, expected = load_case(golden_path, "be_reaction_limited_asym")
    problem.settings.linear_solver = linear_solver
    loss, g_globals, _ = problem.loss_and_gradient(params, theta)
    assert loss == pytest.approx(expected["loss"], rel=1e-7, abs=0)
    for name, value in expected["gradient"].items():
        assert g_globals[name] == pytest.approx(value, rel=1e-7), name
