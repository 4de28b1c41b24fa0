"""The spectral step: STXM stacks of Poisson counts N_e(x) ~ Poisson(I0_e exp(-OD_e(x))) with
OD_e(x) = a(x) mu_Li(E_e) + b(x) mu_FP(E_e), to the lithium fraction c = a / (a + b) with its propagated
standard deviation.

Truths are generated in code (pixelkinetics.spectra.synthetic): composition and thickness maps, model
Fe L3 reference spectra, sample drift, Poisson counts. Checked: the composition error is distributed as
its sigma says (chi-square 1 +- 0.1) and never negative, where the unconstrained pseudo-inverse goes
negative; sub-pixel registration; the two-energy map equals the two-phase fit on noise-free data; the
whole pipeline feeds `fit`, which recovers the rate map; readers, masking and errors.
"""
import os

import h5py
import numpy as np
import pytest
from scipy import ndimage

from pixelkinetics.spectra import (
    SpectraOptions,
    cluster,
    estimate_shifts,
    fraction,
    log_intensity,
    optical_density,
    particle_movies,
    pca,
    pseudo_inverse,
    read_references,
    read_stacks,
    reduce_stacks,
    segment,
    shift_images,
    thickness,
    two_energy_fraction,
    unmix,
)
from pixelkinetics.spectra.readers import parse_sdf_header
from pixelkinetics.spectra.synthetic import (
    REFERENCE_NAMES,
    default_energies,
    dome,
    drift_shifts,
    fe_l3_references,
    movie_stacks,
    synthetic_stack,
)


def _discs(shape, discs):
    """(amount map, mask) of dome-shaped discs (row, col, radius, peak amount)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    amount = np.zeros(shape)
    for cy, cx, r, peak in discs:
        amount += peak * dome((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2, edge=0.1)
    return amount, amount > 0


def _pattern(rng, shape, mean=0.5, spread=0.3):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), 4)
    return np.clip(mean + spread * f / f.std(), 0.05, 0.95)


def _od(stack, i0="auto"):
    log_i, var, _ = log_intensity(stack.counts, stack.dwell, stack.dark)
    return optical_density(log_i, var, stack.dwell, i0)


# -- 1. composition within its sigma, never negative -------------------------------------------
def test_composition_error_matches_propagated_sigma_and_is_never_negative():
    rng = np.random.default_rng(3)
    # Three solid particles and one thin one (peak amount 0.06: OD ~ 0.06, as thin as the noise).
    amount, mask = _discs((96, 96), [(25, 25, 16, 1.2), (65, 30, 18, 0.6), (40, 70, 20, 1.0), (75, 75, 12, 0.06)])
    c_true = _pattern(rng, amount.shape)
    energy = default_energies(50)
    refs = fe_l3_references(energy)
    od = _od(synthetic_stack(c_true, amount, energy, rng=rng))
    u = unmix(od.od, od.variance, refs)
    c, sigma = fraction(u)
    total, total_sd = thickness(u)

    fitted = u.amounts[np.isfinite(u.amounts)]
    assert fitted.min() >= 0.0                                     # no negative phase amount, anywhere
    assert np.nanmin(c) >= 0.0 and np.nanmax(c) <= 1.0
    # First-order propagation holds where the amount a + b is well determined (SNR > 5; 90% of the
    # particle pixels here); the thin rim and thin particle have ratio-of-noise errors.
    solid = mask & (total > 5 * total_sd)
    assert solid.sum() > 0.85 * mask.sum()
    chi2 = np.mean(((c - c_true) / sigma)[solid] ** 2)
    assert abs(chi2 - 1.0) < 0.1, chi2
    assert np.isfinite(c[solid]).all()          # NaN only where both amounts are 0 (thin pixels)
    # The spectral fits themselves are consistent with counting noise.
    assert abs(np.nanmedian(u.reduced_chi2[mask]) - 1.0) < 0.1

    # What the standard tools do: unconstrained, unweighted. Negative fractions appear on thin pixels.
    pinv = pseudo_inverse(od.od, refs)
    negative = mask & ((pinv[0] < 0) | (pinv[1] < 0))
    assert negative.sum() >= 10
    assert np.median(amount[negative]) < 0.2 * np.median(amount[mask])   # they are the thin ones
    with np.errstate(invalid="ignore", divide="ignore"):
        c_pinv = pinv[0] / (pinv[0] + pinv[1])
    assert np.nanmin(c_pinv[mask]) < 0


def test_nonnegative_fit_matches_scipy_nnls_pixel_by_pixel():
    from scipy.optimize import nnls

    rng = np.random.default_rng(8)
    amount, _ = _discs((20, 20), [(10, 10, 8, 0.3)])
    energy = default_energies(30)
    refs = fe_l3_references(energy)
    od = _od(synthetic_stack(_pattern(rng, amount.shape, 0.5, 0.45), amount, energy, rng=rng), i0=np.full(30, 2e6))
    u = unmix(od.od, od.variance, refs, background=True)
    E = energy.size
    A = np.hstack([refs.T, np.ones((E, 1)), -np.ones((E, 1))])   # background = difference of two bounded terms
    y, sd = od.od.reshape(E, -1).T, np.sqrt(od.variance.reshape(E, -1).T)
    x = np.array([nnls(A / s[:, None], b / s)[0] for b, s in zip(y, sd)])
    np.testing.assert_allclose(x[:, :2].T.reshape(u.amounts.shape), u.amounts, atol=1e-8)
    np.testing.assert_allclose((x[:, 2] - x[:, 3]).reshape(u.background.shape), u.background, atol=1e-8)


# -- 2. alignment -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_recovers_subpixel_drift(seed):
    """A random walk of 0.3 pixel per energy over a patterned particle field, 20000 counts per pixel:
    every energy's shift to 0.05 pixel (relative shifts; the mean is the frame)."""
    rng = np.random.default_rng(seed)
    amount, _ = _discs((96, 96), [(30, 30, 16, 1.0), (65, 35, 15, 0.7), (50, 72, 17, 1.0)])
    energy = default_energies(40)
    drift = drift_shifts(rng, energy.size, 0.3)
    stack = synthetic_stack(_pattern(rng, amount.shape), amount, energy, drift=drift, psf=0.5, i0_rate=1e7,
                            rng=rng, time=0.0)
    result = reduce_stacks([stack], fe_l3_references(energy))
    error = result.shifts[0] + (drift - drift.mean(axis=0))
    assert np.ptp(drift, axis=0).max() > 2.0
    assert np.abs(error).max() < 0.05, np.abs(error).max()


def test_batched_registration_agrees_with_scikit_image():
    from skimage.registration import phase_cross_correlation

    rng = np.random.default_rng(2)
    amount, _ = _discs((64, 64), [(30, 30, 14, 1.0), (45, 20, 8, 0.5)])
    energy = np.linspace(712.0, 730.0, 8)    # above the edge: every image shows the particles clearly
    drift = rng.uniform(-2, 2, (8, 2))
    stack = synthetic_stack(np.full(amount.shape, 0.4), amount, energy, drift=drift, psf=0.7, i0_rate=1e7, rng=rng)
    images = np.log(stack.counts)
    ours = estimate_shifts(images, images[0])
    theirs = np.array([phase_cross_correlation(images[0], im, upsample_factor=100, normalization=None)[0]
                       for im in images])
    np.testing.assert_allclose(ours, theirs, atol=0.011)  # both sample the peak on a 0.01 pixel grid
    np.testing.assert_allclose(ours, -(drift - drift[0]), atol=0.1)


def test_resampling_carries_the_variance_of_independent_noise():
    """The propagated variance against the exact one of the resampling operator K (built column by
    column): var(out_x) = sum_y K_xy^2 var(in_y) for independent inputs."""
    rng = np.random.default_rng(0)
    H, W = 14, 11
    variance = rng.uniform(0.5, 3.0, (H, W))
    image = rng.standard_normal((H, W))
    shift = np.array([[0.37, -0.61]])
    out, out_var = shift_images(image[None], shift, variance[None])
    K = np.empty((H * W, H * W))
    for j in range(H * W):
        probe = image.ravel().copy()
        probe[j] += 1.0
        K[:, j] = (shift_images(probe.reshape(1, H, W), shift)[0][0] - out[0]).ravel()
    ratio = (out_var[0].ravel() / (K ** 2 @ variance.ravel())).reshape(H, W)
    # Rows and columns whose source lies outside the image are NaN; the common crop drops one more.
    assert np.isnan(ratio[0]).all() and np.isnan(ratio[:, -1]).all()
    kept = ratio[2:-1, 1:-2]
    # The padding is a smoothed copy of the border taken as noise-free: 3% at the crop's edge, 0.5% inside.
    assert np.abs(kept - 1).max() < 0.03
    assert np.abs(ratio[3:-3, 3:-3] - 1).max() < 5e-3


def test_integer_mode_moves_values_untouched():
    values = np.arange(2 * 6 * 5, dtype=float).reshape(2, 6, 5)
    moved, _ = shift_images(values, np.array([[1.4, -2.2], [0.0, 0.6]]), integer=True)
    np.testing.assert_array_equal(moved[0, 1:, :3], values[0, :5, 2:])
    np.testing.assert_array_equal(moved[1, :, 1:], values[1, :, :4])
    assert np.isnan(moved[0, 0]).all() and np.isnan(moved[1, :, 0]).all()


# -- 3. two-energy map ------------------------------------------------------------------------------
def test_two_energy_fraction_equals_two_phase_fit_on_noise_free_data():
    rng = np.random.default_rng(1)
    amount, mask = _discs((32, 32), [(16, 16, 13, 1.0)])
    c_true = _pattern(rng, amount.shape)
    energy = default_energies(50)
    refs = fe_l3_references(energy)
    od = np.einsum("ke,khw->ehw", refs, np.stack([amount * c_true, amount * (1 - c_true)]))
    c_two = two_energy_fraction(od, energy, refs, 708.0, 710.0)
    c_fit, _ = fraction(unmix(od, np.ones_like(od), refs, background=False))
    np.testing.assert_allclose(c_two[mask], c_fit[mask], atol=1e-10)
    np.testing.assert_allclose(c_fit[mask], c_true[mask], atol=1e-10)


# -- PCA and clusters ---------------------------------------------------------------------------
def test_pca_finds_two_components_of_a_two_phase_sample_and_none_in_noise():
    rng = np.random.default_rng(4)
    amount, _ = _discs((64, 64), [(20, 20, 14, 1.0), (44, 40, 16, 0.8)])
    energy = default_energies(40)
    od = _od(synthetic_stack(_pattern(rng, amount.shape), amount, energy, rng=rng))
    rows, var = od.od.reshape(40, -1).T, od.variance.reshape(40, -1).T
    assert pca(rows, var).n_components == 2
    noise = rng.standard_normal(rows.shape) * np.sqrt(var)
    assert pca(noise, var).n_components == 0


def test_kmeans_clusters_separate_lithium_rich_and_poor_halves():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(5)
    amount, mask = _discs((64, 64), [(32, 32, 26, 1.0)])
    c_true = np.where(np.arange(64)[None, :] < 32, 0.15, 0.85) * np.ones((64, 1))
    energy = default_energies(40)
    od = _od(synthetic_stack(c_true, amount, energy, rng=rng))
    rows, var = od.od.reshape(40, -1).T, od.variance.reshape(40, -1).T
    model = cluster(rows, var, pca(rows, var), n_clusters=2)
    labels = model.predict(rows, var).reshape(64, 64)
    solid = mask & (labels > 0)
    assert solid.sum() > 0.8 * mask.sum()
    assert adjusted_rand_score(labels[solid], c_true[solid] > 0.5) > 0.95


# -- optical density: masking, never altering -------------------------------------------------------
def test_unusable_counts_are_masked_and_counted_not_altered():
    rng = np.random.default_rng(6)
    amount, _ = _discs((32, 32), [(16, 16, 10, 1.0)])
    stack = synthetic_stack(np.full(amount.shape, 0.5), amount, default_energies(10), rng=rng, dark_rate=500.0)
    counts = stack.counts.copy()
    counts[0, 3, 3] = 0.0          # below the dark counts: no signal
    counts[1, 4, 4] = -2.0         # a detector glitch
    counts[2, 5, 5] = np.nan
    counts[3, 6, 6] = 6.5e4
    log_i, var, reasons = log_intensity(counts, stack.dwell, stack.dark, saturation=6.5e4)
    assert reasons == {"not finite": 1, "negative counts": 1, "saturated": 1, "no signal above dark": 1}
    od = optical_density(log_i, var, stack.dwell)
    assert np.isnan(od.od[[0, 1, 2, 3], [3, 4, 5, 6], [3, 4, 5, 6]]).all()
    assert np.isfinite(od.od).sum() == od.od.size - 4
    # every other value is exactly ln(I0 / (n - dark))
    n = counts[5, 16, 16] - stack.dark * stack.dwell[5]
    assert od.od[5, 16, 16] == pytest.approx(np.log(od.i0[5] / n), rel=1e-12)


def test_i0_from_a_region_and_from_a_spectrum_agree():
    rng = np.random.default_rng(7)
    amount, _ = _discs((48, 48), [(24, 24, 12, 1.0)])
    stack = synthetic_stack(np.full(amount.shape, 0.3), amount, default_energies(12), i0_rate=3e6, rng=rng)
    region = np.zeros((48, 48), dtype=bool)
    region[:8] = True
    a = _od(stack, region)
    b = _od(stack, np.full(12, 3e6))
    auto = _od(stack, "auto")
    np.testing.assert_allclose(a.i0, b.i0, rtol=3e-3)             # 384 pixels of 6000 counts: 0.07% noise
    np.testing.assert_allclose(auto.i0, b.i0, rtol=3e-3)
    assert not (auto.i0_region & (amount > 0)).any()


# -- 4. the whole pipeline into fit -------------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_movie_feeds_fit_which_recovers_the_rate_map(tmp_path):
    from pixelkinetics import FitConfig, Params, fit, load_movies
    from pixelkinetics.kinetics.synthetic import SYNTH_TRUTH, make_movies
    from pixelkinetics.spectra import write_spectral_movie

    truth_params = Params(**SYNTH_TRUTH)
    movies, truth = make_movies(n_particles=3, sites=(120, 200), n_frames=8, noise=0.0, params=truth_params,
                                scheme="bdf2", n_sub=40, seed=1)
    stacks, labels, corners, _, _ = movie_stacks([m.mask for m in movies],
                                                 [truth.concentration[m.name] for m in movies],
                                                 movies[0].time, n_energies=40, rng=0)
    spectral = reduce_stacks(stacks, fe_l3_references(stacks[0].energy), list(REFERENCE_NAMES))
    found = segment(spectral)
    path = tmp_path / "movie.h5"
    write_spectral_movie(path, spectral, particle_movies(spectral, found), found)
    data = load_movies(path)                                      # what `pixelkinetics fit` reads
    assert sorted(m.n_sites for m in data) == sorted(m.n_sites for m in movies)
    assert all(m.sigma is not None for m in data)

    # k0, the theta maps and the initial states are learned; the other globals are held at the truth.
    result = fit(data, FitConfig(initial=truth_params.replace(k0=0.01), free=["k0"]), progress=False)
    r0, _, c0, _ = spectral.crop
    fitted = np.full(labels.shape, np.nan)
    for m, box in zip(data, ndimage.find_objects(found)):
        r, q = max(box[0].start - 1, 0) + r0, max(box[1].start - 1, 0) + c0
        h, w = m.mask.shape
        fitted[r:r + h, q:q + w][m.mask] = result.theta[m.name][m.mask]
    true_map = np.full(labels.shape, np.nan)
    for m, (r, q) in zip(movies, corners):
        h, w = m.mask.shape
        true_map[r:r + h, q:q + w][m.mask] = truth.theta[m.name][m.mask]
    both = np.isfinite(fitted) & np.isfinite(true_map)
    assert both.sum() == labels.astype(bool).sum()
    a, b = fitted.copy(), true_map.copy()
    for k in range(1, labels.max() + 1):   # theta's mean per particle is k0's (theta_mean = "zero")
        sel = (labels == k) & both
        a[sel] -= a[sel].mean()
        b[sel] -= b[sel].mean()
    corr = np.corrcoef(a[both], b[both])[0, 1]
    assert corr >= 0.9, corr
    assert result.params.k0 == pytest.approx(truth_params.k0, rel=0.2)


# -- readers --------------------------------------------------------------------------------------------
def _stack(rng, E=6, shape=(8, 10)):
    return rng.poisson(1000.0, (E,) + shape).astype(float), np.linspace(705.0, 712.0, E)


def test_nxstxm_entries_are_read_as_stacks(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        for k, stamp in enumerate(["2024-05-01T10:00:00", "2024-05-01T10:02:30"]):
            counts, energy = _stack(rng)
            e = f.create_group(f"entry{k + 1}")
            e.attrs["NX_class"] = "NXentry"
            e["start_time"] = stamp
            d = e.create_group("counter0")
            d.attrs["NX_class"] = "NXdata"
            d["data"] = counts
            d["energy"] = energy
            d["sample_y"] = np.linspace(0, 0.35, 8)
            d["sample_x"] = np.linspace(0, 0.45, 10)
            d["count_time"] = np.full(6, 1.5e-3)
    stacks = read_stacks(path)
    assert [s.shape for s in stacks] == [(6, 8, 10)] * 2
    assert stacks[1].time - stacks[0].time == pytest.approx(150.0)
    assert stacks[0].pixel_size_nm == pytest.approx(50.0)
    np.testing.assert_allclose(stacks[0].dwell, 1.5e-3)


def _write_sdf(tmp_path, counts, energy, drop_one=False):
    E, H, W = counts.shape
    pts = lambda v: f"({len(v)}, " + ", ".join(f"{x:.4f}" for x in v) + ")"  # noqa: E731
    header = (f'ScanDefinition = {{ Label = "s.hdr"; Type = "Image Scan"; Flags = "Image"; Dwell = 2;\n'
              f'\tRegions = (1,\n{{\n\t\t\tPAxis = {{ Name = "Sample X"; Unit = "um"; Min = 0; Max = 1; Dir = 1;\n'
              f'\t\t\t\tPoints = {pts(np.linspace(0, 0.36, W))};\n}};\n'
              f'\t\t\tQAxis = {{ Name = "Sample Y"; Unit = "um"; Min = 0; Max = 1; Dir = 1;\n'
              f'\t\t\t\tPoints = {pts(np.linspace(0, 0.28, H))};\n}};\n}});\n'
              f'\tStackAxis = {{ Name = "Energy"; Unit = "eV"; Min = 705; Max = 712; Dir = 1;\n'
              f'\t\tPoints = {pts(energy)};\n}};\n'
              f'\tChannels = (1, {{ Name = "Counter0"; Unit = "counts";}});\n}};\n'
              f'Time = "2013 November 21 10:11:12"; BeamFeedback = false;\n')
    (tmp_path / "s.hdr").write_text(header)
    for e in range(E - (1 if drop_one else 0)):
        np.savetxt(tmp_path / f"s_a{e:03d}.xim", counts[e], fmt="%d", delimiter="\t")
    return tmp_path / "s.hdr"


def test_sdf_header_and_xim_images_are_read(tmp_path):
    counts, energy = _stack(np.random.default_rng(1))
    stack = read_stacks(_write_sdf(tmp_path, counts, energy))[0]
    np.testing.assert_array_equal(stack.counts, counts)
    np.testing.assert_allclose(stack.energy, energy, atol=1e-4)
    np.testing.assert_allclose(stack.dwell, 2e-3)                 # SDF dwell is in milliseconds
    assert stack.pixel_size_nm == pytest.approx(40.0)
    assert parse_sdf_header('A = { B = (2, 1, 2); C = "x y"; D = word;};')["A"] == {"B": [1.0, 2.0], "C": "x y",
                                                                                   "D": "word"}


def test_plain_hdf5_and_npz_stacks_agree(tmp_path):
    rng = np.random.default_rng(2)
    counts = np.stack([_stack(rng)[0] for _ in range(3)])
    energy = np.linspace(705.0, 712.0, 6)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["counts"] = counts
        f["energy"] = energy
        f["time"] = [0.0, 10.0, 20.0]
        f["dwell"] = 1e-3
    np.savez(tmp_path / "m.npz", counts=counts, energy=energy, time=[0.0, 10.0, 20.0], dwell=1e-3)
    a, b = read_stacks(tmp_path / "m.h5"), read_stacks(tmp_path / "m.npz")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.counts, y.counts)
        assert x.time == y.time


@pytest.mark.parametrize("case, message", [
    ("no_energy", r"m\.h5: energy is missing"),
    ("energy_length", r"m\.h5: 6 images but 5 energies"),
    ("time_length", r"m\.h5: time must hold 1 value"),
    ("decreasing", r"m\.h5: energies must be finite and strictly increasing"),
    ("not_hdf5", r"m\.h5: not a readable HDF5 file"),
])
def test_malformed_stack_files_name_file_and_field(tmp_path, case, message):
    counts, energy = _stack(np.random.default_rng(3))
    path = tmp_path / "m.h5"
    if case == "not_hdf5":
        path.write_text("not hdf5")
    else:
        with h5py.File(path, "w") as f:
            f["counts"] = counts
            if case != "no_energy":
                f["energy"] = {"energy_length": energy[:5], "decreasing": energy[::-1]}.get(case, energy)
            if case == "time_length":
                f["time"] = [0.0, 1.0]
    with pytest.raises(ValueError, match=message):
        read_stacks(path)


@pytest.mark.parametrize("case, message", [
    ("axis_length", r"scan\.nxs: /entry1: /entry1/counter0/sample_x has shape \(9,\); data \(6, 8, 10\) needs \(10,\)"),
    ("data_group", r"scan\.nxs: /entry1: /entry1/counter0/data must be a dataset"),
    ("line_scan", r"scan\.nxs: /entry1: /entry1/counter0/data must be an image stack"),
])
def test_malformed_nxstxm_entries_name_the_field(tmp_path, case, message):
    counts, energy = _stack(np.random.default_rng(6))
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        d = f.create_group("entry1/counter0")
        f["entry1"].attrs["NX_class"] = "NXentry"
        d.attrs["NX_class"] = "NXdata"
        if case == "data_group":
            d.create_group("data")
        else:
            d["data"] = counts[:, 0] if case == "line_scan" else counts
        d["energy"] = energy
        d["sample_y"] = np.linspace(0, 0.35, 8)
        d["sample_x"] = np.linspace(0, 0.45, 9 if case == "axis_length" else 10)
    with pytest.raises(ValueError, match=message):
        read_stacks(path)


def test_sdf_with_a_missing_image_is_refused(tmp_path):
    counts, energy = _stack(np.random.default_rng(4))
    with pytest.raises(ValueError, match=r"s\.hdr: the header lists 6 energies but 5 image files"):
        read_stacks(_write_sdf(tmp_path, counts, energy, drop_one=True))


def test_reference_file_names_and_range_are_checked(tmp_path):
    path = tmp_path / "refs.txt"
    energy = np.linspace(700, 730, 31)
    np.savetxt(path, np.column_stack([energy, fe_l3_references(energy).T]), header="energy LiFePO4 FePO4",
               comments="")
    e, spectra, names = read_references(path)
    assert names == ["LiFePO4", "FePO4"] and spectra.shape == (2, 31)
    with pytest.raises(ValueError, match=r"refs\.txt: reference spectra \['LiFePO3'\] not found"):
        read_references(path, ["LiFePO3"])


def test_stacks_without_times_or_on_other_grids_are_refused():
    rng = np.random.default_rng(5)
    amount, _ = _discs((24, 24), [(12, 12, 8, 1.0)])
    e = default_energies(8)
    a = synthetic_stack(np.full(amount.shape, 0.5), amount, e, rng=rng)
    b = synthetic_stack(np.full(amount.shape, 0.5), amount, e + 0.5, rng=rng, time=1.0)
    with pytest.raises(ValueError, match="no time stamp"):
        reduce_stacks([a], fe_l3_references(e))
    with pytest.raises(ValueError, match="energies differ"):
        reduce_stacks([a, b], fe_l3_references(e), times=[0.0, 1.0])
    with pytest.raises(ValueError, match="align must be"):
        SpectraOptions(align="bilinear")
    a.dwell = None
    with pytest.raises(ValueError, match="synthetic stack: no dwell time"):
        reduce_stacks([a], fe_l3_references(e), times=[0.0], options=SpectraOptions(i0=np.full(8, 2e6)))


# -- command line ---------------------------------------------------------------------------------------
def test_spectra_command_writes_a_movie_file_and_report(tmp_path, cli):
    r = cli("synth-stacks", "-o", "stacks.h5", "--particles", "2", "--frames", "3", "--energies", "20")
    assert r.returncode == 0, r.stderr
    r = cli("spectra", "stacks.h5", "--references", "stacks_references.txt", "-o", "movie.h5", "--report", "rep",
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert "2 particle(s)" in r.stdout
    assert sorted(os.listdir(tmp_path / "rep")) == ["alignment.png", "clusters.png", "composition.png",
                                                   "spectra.png", "summary.txt"]
    r = cli("info", "movie.h5")
    assert r.returncode == 0 and "particle_001: 3 frames" in r.stdout
    r = cli("report", "movie.h5", "-o", "rep2")
    assert r.returncode == 0 and "spectral step" in r.stdout
    r = cli("spectra", "stacks.h5", "--references", "stacks_references.txt", "-o", "x.h5", "--i0", "1:2")
    assert r.returncode == 2 and "--i0 '1:2'" in r.stderr
    r = cli("spectra", "stacks.h5", "--references", "stacks_references.txt", "-o", "x.h5", "--lithiated", "LFP")
    assert r.returncode == 2 and "no reference spectrum named 'LFP'" in r.stderr
    assert not (tmp_path / "x.h5").exists()
