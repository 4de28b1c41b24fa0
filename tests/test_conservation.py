"""Conservation. With k0 = 0 there is no reaction and the Cahn-Hilliard flux only moves lithium
inside a particle: each particle's mean stays at its initial value to round-off (1e-12), for both
schemes. Under rate driving the algebraic constraint mean(c(t_f)) = target(t_f) holds to 1e-12."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.observations import initial_condition
from pixelkinetics.kinetics.synthetic import make_movies


@pytest.mark.parametrize("scheme", ["be", "bdf2"])
def test_cahn_hilliard_without_reaction_conserves_each_particle_mean(scheme):
    movies, _ = make_movies(n_particles=3, sites=(40, 80), n_frames=4, driving="potential", seed=4,
                            params=pk.Params(k0=0.02, D=0.5, Omega=4.5))
    params = pk.Params(k0=0.0, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.5)
    conc = pk.Problem(movies, scheme=scheme, n_sub=10).simulate(params)
    for m in movies:
        c0_mean = initial_condition(m).mean()
        means = np.array([frame[m.mask].mean() for frame in conc[m.name]])
        np.testing.assert_allclose(means, c0_mean, rtol=0, atol=1e-12)
        # The flux did move lithium around: the field is not frozen.
        assert np.abs(conc[m.name][-1] - conc[m.name][0])[m.mask].max() > 1e-3


@pytest.mark.parametrize("D", [0.0, 0.4])
def test_rate_driving_holds_the_mean_on_its_target(D):
    movies, _ = make_movies(n_particles=3, sites=(40, 80), n_frames=5, seed=5, params=pk.Params(D=D))
    conc = pk.Problem(movies, n_sub=10).simulate(pk.Params(D=D))
    for m in movies:
        targets = [np.nanmean(m.concentration[f][m.mask]) for f in range(1, m.shape[0])]
        means = [conc[m.name][f][m.mask].mean() for f in range(1, m.shape[0])]
        np.testing.assert_allclose(means, targets, rtol=0, atol=1e-12)
