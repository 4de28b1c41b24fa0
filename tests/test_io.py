"""Movie and results files (MODEL.md section 9). Every defect of a movie file is reported as a ValueError
that names the file, the dataset (or attribute) and what is wrong; results are written atomically and
read back unchanged."""
import os

import h5py
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.files import load_truth, write_movies
from pixelkinetics.kinetics.results import load_results


def test_movies_round_trip_through_hdf5_with_truth(tmp_path, small_movies):
    movies, truth = small_movies
    path = tmp_path / "movies.h5"
    write_movies(path, movies, truth)
    assert os.listdir(tmp_path) == ["movies.h5"]  # no temporary file left behind
    loaded = pk.load_movies(path)
    for a, b in zip(movies, loaded):
        assert a.name == b.name and a.driving == b.driving
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.concentration, b.concentration)
        np.testing.assert_array_equal(a.time, b.time)
        np.testing.assert_array_equal(a.carbon_thickness, b.carbon_thickness)
    with h5py.File(path, "r") as f:
        assert f["truth"].attrs["k0"] == truth.params.k0
        np.testing.assert_array_equal(f[f"truth/theta/{movies[0].name}"][()], truth.theta[movies[0].name])


@pytest.fixture
def good_file(tmp_path, small_movies):
    movies, truth = small_movies
    path = tmp_path / "movies.h5"
    write_movies(path, movies, truth)
    return path, movies[0].name


def edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def replace_dataset(group_path, name, value):
    def fn(f):
        g = f[group_path]
        del g[name]
        g[name] = value
    return fn


def first_group(f, name):
    return f[f"particles/{name}"]


CASES = {
    "missing concentration": (lambda f, n: first_group(f, n).__delitem__("concentration"),
                              r"dataset /particles/{n}/concentration is missing"),
    "missing mask": (lambda f, n: first_group(f, n).__delitem__("mask"), r"dataset /particles/{n}/mask is missing"),
    "missing time": (lambda f, n: first_group(f, n).__delitem__("time"), r"dataset /particles/{n}/time is missing"),
    "2-D concentration": (lambda f, n: replace_dataset(f"particles/{n}", "concentration",
                                                       first_group(f, n)["concentration"][0])(f),
                          r"/particles/{n}/concentration must be \(T, H, W\)"),
    "mask of another shape": (lambda f, n: replace_dataset(f"particles/{n}", "mask",
                                                           np.ones((3, 4), np.uint8))(f),
                              r"/particles/{n}/concentration must be \(T, H, W\) with \(H, W\) = mask shape \(3, 4\)"),
    "empty mask": (lambda f, n: replace_dataset(f"particles/{n}", "mask",
                                                np.zeros_like(first_group(f, n)["mask"][()]))(f),
                   r"/particles/{n}/mask is empty"),
    "time of wrong length": (lambda f, n: replace_dataset(f"particles/{n}", "time", np.arange(3.0))(f),
                             r"/particles/{n}/time must have shape \(5,\)"),
    "time not increasing": (lambda f, n: replace_dataset(f"particles/{n}", "time",
                                                         np.array([0.0, 10.0, 10.0, 20.0, 30.0]))(f),
                            r"/particles/{n}/time must increase strictly, but time\[2\] = 10.0 <= time\[1\] = 10.0"),
    "concentration above 1": (lambda f, n: first_group(f, n)["concentration"].__setitem__(
        (2, slice(None), slice(None)), 1.7), r"/particles/{n}/concentration must lie in \[0, 1\]"),
    "frame without data": (lambda f, n: first_group(f, n)["concentration"].__setitem__(
        (3, slice(None), slice(None)), np.nan),
        r"/particles/{n}/concentration frame 3 has no observed pixel inside the mask"),
    "sigma of wrong shape": (lambda f, n: first_group(f, n).__setitem__("sigma", np.ones((5, 2, 2))),
                             r"/particles/{n}/sigma must have the shape of concentration"),
    "non-positive sigma": (lambda f, n: first_group(f, n).__setitem__(
        "sigma", np.zeros(first_group(f, n)["concentration"].shape)), r"/particles/{n}/sigma must be positive"),
    "unknown driving": (lambda f, n: first_group(f, n).attrs.__setitem__("driving", "current"),
                        r"/particles/{n}/driving must be 'rate' or 'potential', got 'current'"),
    "potential driving without voltage": (lambda f, n: first_group(f, n).attrs.__setitem__("driving", "potential"),
                                          r"/particles/{n}/voltage \(T,\) is required for potential driving"),
    "dataset that is a group": (lambda f, n: (first_group(f, n).__delitem__("time"),
                                              first_group(f, n).create_group("time")),
                                r"/particles/{n}/time must be a dataset, found a group"),
    "no particles group": (lambda f, n: f.__delitem__("particles"), r"group /particles is missing"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_movie_file_names_file_dataset_and_problem(good_file, case):
    path, name = good_file
    damage, message = CASES[case]
    edit(path, lambda f: damage(f, name))
    with pytest.raises(ValueError, match=r"movies\.h5: .*" + message.format(n=name)):
        pk.load_movies(path)


def test_truncated_file_is_refused_with_its_name(good_file):
    path, _ = good_file
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError, match=r"movies\.h5: not a readable HDF5 file"):
        pk.load_movies(path)


def test_text_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("frame,pixel,value\n")
    with pytest.raises(ValueError, match=r"notes\.h5: not a readable HDF5 file"):
        pk.load_movies(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        pk.load_movies(tmp_path / "absent.h5")


def test_sigma_dataset_weights_the_loss(tmp_path, small_movies):
    # w = (sigma_fit / sigma)^2: doubling sigma everywhere divides the misfit by four.
    movies, truth = small_movies
    doubled = [pk.Movie(m.name, m.mask, m.concentration, m.time, sigma=np.full(m.shape, 0.04)) for m in movies]
    path = tmp_path / "sigma.h5"
    write_movies(path, doubled)
    plain = pk.Problem(movies, n_sub=8, sigma=0.02).loss(truth.params, truth.theta)
    weighted = pk.Problem(pk.load_movies(path), n_sub=8, sigma=0.02).loss(truth.params, truth.theta)
    assert weighted == pytest.approx(plain / 4, rel=1e-12)


def test_truth_round_trip(good_file, small_movies):
    path, _ = good_file
    _, truth = small_movies
    params, theta = load_truth(path)
    assert params == truth.params
    for name, t in truth.theta.items():
        np.testing.assert_array_equal(theta[name], t)


def test_results_file_round_trip_and_atomic_write(tmp_path, small_movies, monkeypatch):
    from pixelkinetics import FitConfig, fit
    from pixelkinetics.kinetics import results as results_file

    movies, truth = small_movies
    result = fit(movies, FitConfig(n_sub=8, free=["k0"]), progress=False, max_iter=3)
    path = tmp_path / "results.h5"
    results_file.write_results(path, results_file.Results.of_fit(result, movies, data_path="data.h5", truth=truth))
    r = load_results(path)
    assert r.params == result.params
    assert r.fit["free"] == ["k0"] and r.fit["n_iter"] == result.n_iter and r.fit["data"] == "data.h5"
    assert r.fit["reduced_chi2"] == pytest.approx(result.reduced_chi2, rel=1e-12)
    for m in movies:
        p = r.particles[m.name]
        np.testing.assert_array_equal(p.theta, result.theta[m.name])
        np.testing.assert_array_equal(p.fitted, result.fitted[m.name])
        np.testing.assert_array_equal(p.observed, m.concentration)
        np.testing.assert_array_equal(p.mask, m.mask)
    np.testing.assert_array_equal(r.history["loss"], result.history["loss"])
    assert r.truth[0] == truth.params

    # A failure while writing leaves neither a half-written file nor the temporary one.
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(results_file, "write_params", fail)
    target = tmp_path / "broken.h5"
    with pytest.raises(OSError, match="disk full"):
        results_file.write_results(target, results_file.Results.of_fit(result, movies))
    assert not target.exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


def test_results_reader_refuses_a_movie_file(good_file):
    path, _ = good_file
    with pytest.raises(ValueError, match=r"movies\.h5: /parameters is missing: not a pixelkinetics results file"):
        load_results(path)
