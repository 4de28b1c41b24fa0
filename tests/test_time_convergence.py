"""Time-step convergence. A smooth case (no phase separation: Omega = 1.5, potential driven by a
linear voltage ramp over one frame interval, D > 0) is integrated with n_sub steps and compared at
the final frame with a BDF2 solution on 5120 steps. Backward Euler must converge at order 0.9-1.1,
BDF2 at order >= 1.8."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.synthetic import particle_mask, smooth_field
from pixelkinetics.verification import convergence_orders

PARAMS = pk.Params(k0=0.05, alpha=0.5, Omega=1.5, kappa=1.0, B=0.5, D=0.2, b=[0.0], j0_base="sqrt")


@pytest.fixture(scope="module")
def smooth_movie():
    rng = np.random.default_rng(2)
    mask = particle_mask(rng, 60)
    c0 = np.where(mask, 0.3 + 0.1 * smooth_field(rng, mask.shape, 2.0), np.nan)
    conc = np.stack([c0, np.where(mask, 0.5, np.nan)])
    return pk.Movie("smooth", mask, conc, np.array([0.0, 20.0]), driving="potential",
                    voltage=np.array([-0.5, -2.0]))


def final_state(movie, scheme, n_sub):
    c = pk.Problem([movie], scheme=scheme, n_sub=n_sub).simulate(PARAMS)["smooth"][-1]
    return c[movie.mask]


@pytest.mark.parametrize("scheme,lo,hi", [("be", 0.9, 1.1), ("bdf2", 1.8, 2.3)])
def test_time_stepping_converges_at_its_order(smooth_movie, scheme, lo, hi):
    reference = final_state(smooth_movie, "bdf2", 5120)
    n_subs = [20, 40, 80, 160]
    errors = [np.abs(final_state(smooth_movie, scheme, n) - reference).max() for n in n_subs]
    orders = convergence_orders([1.0 / n for n in n_subs], errors)
    assert np.all((orders > lo) & (orders < hi)), (errors, orders)
