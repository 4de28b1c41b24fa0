"""The model's curves come from the core alone (MODEL.md sections 2-3).

mu_h(c), j0(c) and the reaction rate R(c, eta) = k0 j0(c) (exp(-alpha eta) - exp((1 - alpha) eta)) are
evaluated by the solver's own site functions and bound vectorised; Params, the report, the uncertainty bands
and the stability analysis use them. Proved here: one site integrated by the solver (backward Euler, one
step, potential held) moves at exactly the bound rate at its new state, so the bound curves are the
solver's; their slopes are the derivatives of their values; and the report draws these values to round-off.
"""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics import _core
from pixelkinetics.kinetics.params import CURVE_GRID
from pixelkinetics.kinetics.report import C_GRID, _kinetics_figure
from pixelkinetics.kinetics.results import Results

PARAMS = {
    "sqrt": pk.Params(k0=0.03, alpha=0.4, Omega=3.5, kappa=2.0, B=0.0, a=[0.3, -0.2], b=[0.1, 0.4, -0.2]),
    "one": pk.Params(k0=0.01, alpha=0.6, Omega=1.0, kappa=0.0, B=0.0, a=[], b=[0.0, -0.5], j0_base="one"),
    "asym": pk.Params(k0=0.05, alpha=0.5, Omega=4.5, kappa=1.0, B=0.0, a=[0.1], b=[0.2], j0_base="asym"),
    "logistic": pk.Params(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, b=[0.0, 0.3], j0_base="logistic",
                          j0_s=12.0, j0_c=0.45),
}


@pytest.mark.parametrize("base", list(PARAMS))
@pytest.mark.parametrize("c0, V", [(0.2, -1.5), (0.6, 0.8), (0.9, 2.0)], ids=["c0.2", "c0.6", "c0.9"])
def test_one_site_of_the_solver_moves_at_the_bound_rate(base, c0, V):
    """dc/dt = R(c1, mu_h(c1) + V) over one backward-Euler step of a lone site (no neighbours, B = 0)."""
    p = PARAMS[base]
    dt = 0.2 / p.k0
    site = pk.Movie.population("site", [[c0], [c0]], [0.0, dt], voltage=[V, V])
    c1 = pk.Problem([site], scheme="be", n_sub=1, newton_tol=1e-14).simulate(p)["site"][1, 0, 0]
    rate = p.rate(c1, p.mu_h(c1) + V)
    assert abs(c1 - c0) > 1e-3  # the step moved the site
    assert (c1 - c0) / dt == pytest.approx(rate, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("base", list(PARAMS))
def test_the_bound_slopes_are_the_derivatives_of_the_values(base):
    g = PARAMS[base].to_core()
    c = np.linspace(0.05, 0.95, 19)
    eta = np.linspace(-2.0, 2.0, 19)
    h = 1e-6
    for function, args, log in ((_core.homogeneous_potential, (), False), (_core.exchange_current, (), True)):
        value, slope = function(g, c, *args)
        up, down = function(g, c + h, *args)[0], function(g, c - h, *args)[0]
        difference = (np.log(up) - np.log(down)) / (2 * h) if log else (up - down) / (2 * h)
        np.testing.assert_allclose(slope, difference, rtol=1e-6, atol=1e-6)  # central differences: O(h^2)
    value, slope = _core.reaction_rate(g, c, eta)
    difference = (_core.reaction_rate(g, c, eta + h)[0] - _core.reaction_rate(g, c, eta - h)[0]) / (2 * h)
    np.testing.assert_allclose(slope, difference, rtol=1e-6, atol=1e-12)


def test_the_report_draws_the_cores_curves_to_round_off():
    p = PARAMS["sqrt"]
    results = Results(params=p, particles={}, history={}, fit={"sigma": 0.02})
    j0_axis, mu_axis = _kinetics_figure(results).axes[:2]
    (j0_line,), (mu_line,) = j0_axis.get_lines(), mu_axis.get_lines()
    np.testing.assert_array_equal(j0_line.get_xdata(), C_GRID)
    np.testing.assert_allclose(j0_line.get_ydata(), p.k0 * _core.exchange_current(p.to_core(), C_GRID)[0],
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(mu_line.get_ydata(), _core.homogeneous_potential(p.to_core(), C_GRID)[0],
                               rtol=1e-15, atol=1e-15)


def test_curves_outside_the_unit_interval_are_refused():
    with pytest.raises(ValueError, match=r"concentration c\[1\] = 1.5.* outside \[0, 1\]"):
        PARAMS["sqrt"].mu_h([0.5, 1.5])
    assert CURVE_GRID.min() > 0 and CURVE_GRID.max() < 1
