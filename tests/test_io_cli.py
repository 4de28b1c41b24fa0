"""Movie files round-trip through write_movies / load_movies (written atomically, with the synthetic
truth), and the command line runs its demo and summarises a file."""
import os

import h5py
import numpy as np

import pixelkinetics as pk
from pixelkinetics.cli import main
from pixelkinetics.io import write_movies


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


def test_cli_demo_and_info_run(tmp_path, capsys):
    assert main(["--threads", "1", "demo", "-o", str(tmp_path), "--particles", "2"]) == 0
    out = capsys.readouterr().out
    assert "loss and gradient" in out and "Newton iterations" in out
    assert main(["info", str(tmp_path / "demo_data.h5")]) == 0
    assert "2 particle(s)" in capsys.readouterr().out


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    assert main(["info", str(bad)]) == 2
    assert "bad.h5: not a readable HDF5 file" in capsys.readouterr().err
