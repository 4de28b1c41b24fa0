"""Strain files and the `strain` command: py4DSTEM-convention input, the fit with a held-out particle,
results and report, and clear errors for bad files."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from pixelkinetics.cli import main
from pixelkinetics.mechanics import read_strain, read_strain_results, synthetic_particle, write_strain

MISFIT = np.array([0.05, -0.019])


@pytest.mark.parametrize("convention", ["real", "py4dstem"])
def test_strain_file_round_trip(tmp_path, convention):
    particle = synthetic_particle("blobs", n=24, seed=2, composition_noise=0.01, pixel_size_nm=7.5)
    path = tmp_path / "strain.h5"
    write_strain(path, [particle], angle=0.4, convention=convention, strain_sigma=1e-3)
    data = read_strain(path)
    back = data.particles[0]
    assert data.angle == pytest.approx(0.4) and data.strain_sigma == 1e-3 and back.pixel_size_nm == 7.5
    np.testing.assert_array_equal(back.mask, particle.mask)
    np.testing.assert_allclose(back.strain, particle.strain, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(back.composition_sigma[back.mask], 0.01)


def test_strain_command_fits_predicts_and_reports(tmp_path, capsys):
    data = tmp_path / "strain.h5"
    assert main(["synth-strain", "-o", str(data), "--size", "40", "--angle-deg", "25"]) == 0
    with h5py.File(data, "r") as f:
        assert f["strain/two-phase-0"].attrs["convention"] == "py4dstem" and "theta" in f["strain/two-phase-0"]
    results, report = tmp_path / "fit.h5", tmp_path / "report"
    assert main(["strain", str(data), "-o", str(results), "--hold-out", "linear-3", "--fit-stiffness",
                 "--report", str(report), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "held out" in out and "stiffness ratios (converged" in out
    r = read_strain_results(results)
    beta, sd = r["vegard"]["beta"][0], r["vegard"]["beta_sd"][0]
    assert np.all(np.abs(beta / MISFIT - 1) < 0.01) and np.all(np.abs(beta - MISFIT) < 4 * sd)
    assert sorted(k for k in r["particles"] if k != "attrs") == ["blobs-2", "core-shell-1", "two-phase-0"]
    held = r["held_out"]["linear-3"]
    assert held["attrs"]["rms"] < 1.1e-3 and held["predicted"].shape == (4, 40, 40)
    naive = r["particles"]["core-shell-1"]["naive_slope"]
    assert np.abs(naive / MISFIT - 1).max() > 0.05  # the naive regression stands beside the fit, biased
    names = sorted(p.name for p in report.iterdir())
    assert names == ["stiffness.png", "strain_blobs-2.png", "strain_core-shell-1.png", "strain_linear-3.png",
                     "strain_two-phase-0.png", "summary.txt", "vegard.png"]
    assert "truth +0.050000" in (report / "summary.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.h5", "report", "strain.h5"]  # no temporaries
    assert main(["report", str(results), "-o", str(tmp_path / "again")]) == 0


def _good(tmp_path):
    path = tmp_path / "bad.h5"
    write_strain(path, [synthetic_particle("two-phase", n=16, name="p")])
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda f: f["strain/p"].attrs.__delitem__("pixel_size_nm"), "/strain/p: attribute pixel_size_nm is missing"),
    (lambda f: f["strain/p"].attrs.__setitem__("convention", "k-space"), "convention must be one of"),
    (lambda f: (f["strain/p"].__delitem__("e_xy"), f["strain/p"].create_dataset("e_xy", data=np.zeros((3, 3)))),
     "/strain/p/e_xy has shape"),
    (lambda f: f["strain/p"].__delitem__("composition"), "dataset /strain/p/composition is missing"),
    (lambda f: f["strain/p/composition"].__setitem__((8, 8), np.nan), "composition must be finite"),
    (lambda f: f["strain"].attrs.__setitem__("stiffness", np.eye(2)), "/strain attribute stiffness must be a finite 3"),
    (lambda f: f["strain"].attrs.__setitem__("stiffness", -np.eye(3)), "stiffness must be a symmetric positive"),
    (lambda f: f["strain"].attrs.__setitem__("strain_sigma", -1.0), "strain_sigma must be positive"),
    (lambda f: f["strain"].attrs.__setitem__("strain_sigma", "small"), "strain_sigma must be a finite number"),
    (lambda f: f["strain"].attrs.__setitem__("angle_deg", "twenty"), "angle_deg must be a finite number"),
    (lambda f: f["strain"].attrs.__setitem__("angle_deg", [1.0, 2.0]), "angle_deg must be a finite number"),
    (lambda f: f["strain/p"].attrs.__setitem__("pixel_size_nm", np.nan), "pixel_size_nm must be a finite number"),
    (lambda f: f["strain/p/composition"].__setitem__((8, 8), 55.0), "must be a lithium fraction in \\[0, 1\\]"),
    (lambda f: (f["strain/p"].__delitem__("mask"),
                f["strain/p"].create_dataset("mask", data=np.full((16, 16), np.nan))),
     "mask must be 0 off and nonzero on the particle"),
    (lambda f: f.__delitem__("strain"), "no /strain group"),
    (lambda f: f["strain/p"].__delitem__("mask"), "dataset /strain/p/mask is missing"),
])
def test_bad_strain_files_name_file_dataset_and_problem(tmp_path, damage, message):
    path = _good(tmp_path)
    with h5py.File(path, "r+") as f:
        damage(f)
    with pytest.raises(ValueError, match=message) as info:
        read_strain(path)
    assert str(path) in str(info.value)


def test_strain_command_errors_exit_with_status_2(tmp_path, capsys):
    path = _good(tmp_path)
    assert main(["strain", str(path), "-o", str(tmp_path / "r.h5"), "--hold-out", "nobody"]) == 2
    assert "--hold-out names no particle" in capsys.readouterr().err
    assert main(["strain", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "r.h5")]) == 2
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("strain")
    assert main(["strain", str(not_h5), "-o", str(tmp_path / "r.h5")]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


def test_missing_components_and_uniform_particles(tmp_path, capsys):
    """A particle without e_xy still fits (its axes at angle 0 need only e_xx, e_yy); a uniformly lithiated
    particle cannot identify a law and says so."""
    missing = synthetic_particle("two-phase", n=32, name="no-shear", seed=1)
    missing.strain[2] = np.nan
    path = tmp_path / "strain.h5"
    write_strain(path, [missing])
    assert main(["strain", str(path), "-o", str(tmp_path / "r.h5"), "--quiet"]) == 0
    beta = read_strain_results(tmp_path / "r.h5")["vegard"]["beta"][0]
    assert np.all(np.abs(beta / MISFIT - 1) < 0.01)
    uniform = synthetic_particle("two-phase", n=32, name="uniform")
    uniform.composition = np.where(uniform.mask, 0.4, np.nan)
    write_strain(path, [uniform])
    assert main(["strain", str(path), "-o", str(tmp_path / "u.h5")]) == 2
    assert "vary too little to identify a law" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["strain", str(path), "-o", str(tmp_path / "u.h5"), "--sigma", "0"])
