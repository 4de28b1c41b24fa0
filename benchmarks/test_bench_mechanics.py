"""Speed of the strain fit (issue: a 256 x 256 particle fitted in under 2 s on 2 cores), with references in
the same run: one factorisation of the particle's stiffness matrix (the floor of any elastic fit) and the
naive pixel regression (no elasticity at all).

Run: OMP_WAIT_POLICY=PASSIVE python -m pytest benchmarks/test_bench_mechanics.py --benchmark-only
"""
import numpy as np
import pytest

from pixelkinetics import _core
from pixelkinetics.mechanics import LFP_AC, LFP_MISFIT, fit_vegard, naive_regression, synthetic_particle


@pytest.fixture(scope="module")
def particle_256():
    """An elliptical particle of 30.8k pixels in a 256 x 256 image, composition in blobs."""
    return synthetic_particle("blobs", n=256, noise=1e-3, seed=0)


@pytest.fixture(scope="module")
def square_256():
    """Every pixel of a 256 x 256 image on the particle (132k unknowns): the issue's worst case."""
    from scipy.ndimage import gaussian_filter

    from pixelkinetics.mechanics import ElasticModel, StrainParticle

    rng = np.random.default_rng(0)
    field = gaussian_filter(rng.standard_normal((256, 256)), 25.6)
    c = 0.5 * (1 + np.tanh(field / field.std() / 0.5))
    particle = StrainParticle("square", np.ones((256, 256), bool), np.zeros((4, 256, 256)), c)
    r = ElasticModel([particle]).responses([c.ravel()], 1)[0]
    clean = LFP_MISFIT[0] * r[0] + LFP_MISFIT[1] * r[1]
    particle.strain[:, particle.mask] = (clean + 1e-3 * rng.standard_normal(clean.shape)).T
    return particle


@pytest.mark.benchmark(group="strain fit 256x256")
@pytest.mark.parametrize("shape", ["ellipse", "square"])
def test_fit_vegard_256(benchmark, shape, particle_256, square_256):
    """Mesh, ordering, factorisation, the basis solves and the least squares with its covariance."""
    particle = particle_256 if shape == "ellipse" else square_256
    fit = benchmark.pedantic(fit_vegard, args=([particle],), kwargs=dict(sigma=1e-3), rounds=3, iterations=1)
    benchmark.extra_info.update(pixels=int(particle.mask.sum()))
    assert np.all(np.abs(fit.beta[0] / np.array(LFP_MISFIT) - 1) < 0.01)


@pytest.mark.benchmark(group="strain fit 256x256")
def test_factorize_only_reference(benchmark, particle_256):
    batch = _core.ElasticBatch([particle_256.mask.astype(np.uint8)], [1.0])
    benchmark.pedantic(batch.factorize, args=(LFP_AC,), rounds=3, iterations=1)
    benchmark.extra_info.update(unknowns=batch.n_free(0))


@pytest.mark.benchmark(group="strain fit 256x256")
def test_naive_regression_reference(benchmark, particle_256):
    benchmark(naive_regression, particle_256)


@pytest.mark.benchmark(group="stiffness ratios 96x96 x 3")
def test_fit_stiffness_ratios(benchmark):
    """L-BFGS on three stiffness ratios from 35-50% off, with the Hessian for their covariance."""
    from pixelkinetics.mechanics import stiffness_from_parameters, stiffness_parameters

    particles = [synthetic_particle(p, n=96, seed=s, name=p)
                 for s, p in enumerate(["two-phase", "core-shell", "blobs"])]
    start = stiffness_from_parameters(stiffness_parameters(LFP_AC) + np.array([0.3, -0.3, 0.4]), LFP_AC[0, 0])[0]
    fit = benchmark.pedantic(fit_vegard, args=(particles,),
                             kwargs=dict(stiffness=start, sigma=1e-3, fit_stiffness=True), rounds=1, iterations=1)
    benchmark.extra_info.update(factorisations=fit.stiffness_fit.evaluations, iterations=fit.stiffness_fit.iterations)
    assert fit.stiffness_fit.converged
