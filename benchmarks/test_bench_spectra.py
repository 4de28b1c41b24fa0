"""Speed of the spectral step (issue: 100 stacks of 50 energies x 128 x 128 pixels to composition maps in
under a minute on 2 cores), with references in the same run: SciPy's per-pixel NNLS against the batched
bounded least squares, scikit-image's per-image phase correlation against the batched one.

Run: OMP_WAIT_POLICY=PASSIVE python -m pytest benchmarks/test_bench_spectra.py --benchmark-only
"""
import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import nnls

from pixelkinetics.spectra import estimate_shifts, log_intensity, optical_density, reduce_stacks, unmix
from pixelkinetics.spectra.synthetic import default_energies, dome, drift_shifts, fe_l3_references, synthetic_stack

N_STACKS, N_ENERGIES, SIDE = 100, 50, 128


def _scene(rng):
    yy, xx = np.mgrid[:SIDE, :SIDE]
    amount = np.zeros((SIDE, SIDE))
    for cy, cx, r, amp in [(35, 35, 16, 1.2), (85, 40, 20, 0.6), (60, 95, 22, 1.0), (105, 100, 12, 0.8)]:
        amount += amp * dome((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2, edge=0.3)
    pattern = ndimage.gaussian_filter(rng.standard_normal((SIDE, SIDE)), 4)
    return amount, pattern / pattern.std()


@pytest.fixture(scope="module")
def movie():
    rng = np.random.default_rng(0)
    amount, pattern = _scene(rng)
    energy = default_energies(N_ENERGIES)
    stacks, truth = [], []
    for t in range(N_STACKS):
        c = np.clip(0.1 + 0.8 * t / (N_STACKS - 1) + 0.1 * pattern, 0.02, 0.98)
        drift = drift_shifts(rng, energy.size, 0.1, (0.0, 0.0) if t == 0 else rng.uniform(-3, 3, 2))
        stacks.append(synthetic_stack(c, amount, energy, drift=drift, psf=0.5, time=10.0 * t, rng=rng))
        truth.append(c)
    return stacks, np.stack(truth), amount, fe_l3_references(energy)


def test_reduce_100_stacks(benchmark, movie):
    stacks, truth, amount, refs = movie
    result = benchmark.pedantic(reduce_stacks, args=(stacks, refs), rounds=1, iterations=1)
    r0, r1, c0, c1 = result.crop
    core = ndimage.binary_erosion(amount[r0:r1, c0:c1] > 0, iterations=3)
    z = (result.composition - truth[:, r0:r1, c0:c1]) / result.sigma
    chi2 = float(np.nanmean(z[:, core] ** 2))
    benchmark.extra_info.update(stacks=len(stacks), chi2=chi2)
    assert np.nanmin(result.composition) >= 0 and np.nanmax(result.composition) <= 1
    assert abs(chi2 - 1) < 0.15


@pytest.fixture(scope="module")
def one_stack_od(movie):
    stacks, _, _, refs = movie
    s = stacks[N_STACKS // 2]
    log_i, var, _ = log_intensity(s.counts, s.dwell, s.dark)
    od = optical_density(log_i, var, s.dwell)
    return od, refs


@pytest.mark.benchmark(group="unmix one stack")
def test_unmix_batched(benchmark, one_stack_od):
    od, refs = one_stack_od
    u = benchmark(unmix, od.od, od.variance, refs)
    assert np.all(u.amounts[np.isfinite(u.amounts)] >= 0)


@pytest.mark.benchmark(group="unmix one stack")
def test_unmix_scipy_nnls_reference(benchmark, one_stack_od):
    """SciPy's NNLS pixel by pixel (weighted, with the background as the difference of two bounded terms)."""
    od, refs = one_stack_od
    E = od.od.shape[0]
    A = np.hstack([refs.T, np.ones((E, 1)), -np.ones((E, 1))])
    y = od.od.reshape(E, -1).T
    sd = np.sqrt(od.variance.reshape(E, -1).T)

    def loop():
        return np.array([nnls(A / s[:, None], b / s)[0] for b, s in zip(y, sd)])

    x = benchmark.pedantic(loop, rounds=1, iterations=1)
    u = unmix(od.od, od.variance, refs)
    assert np.allclose(x[:, :2].T.reshape(u.amounts.shape), u.amounts, atol=1e-6)


@pytest.mark.benchmark(group="register 50 images")
def test_registration_batched(benchmark, movie):
    images = np.log(movie[0][1].counts)
    benchmark(estimate_shifts, images, images.mean(axis=0))


@pytest.mark.benchmark(group="register 50 images")
def test_registration_skimage_reference(benchmark, movie):
    from skimage.registration import phase_cross_correlation

    images = np.log(movie[0][1].counts)
    ref = images.mean(axis=0)
    shifts = benchmark(lambda: np.array([phase_cross_correlation(ref, im, upsample_factor=100,
                                                                 normalization=None)[0] for im in images]))
    assert np.allclose(shifts, estimate_shifts(images, ref), atol=0.011)
