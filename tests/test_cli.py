"""The command line: synth -> info -> fit -> report -> simulate on a small data set, the demo, clear
errors with exit status 2, and a fit killed mid-run (SIGKILL) that resumes from its checkpoint to the
optimum of an uninterrupted fit without ever leaving a half-written results file."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.cli import main
from pixelkinetics.kinetics.results import load_results

SMALL = ["--particles", "2", "--sites", "50", "70", "--frames", "5", "--seed", "3"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.h5"
    assert main(["synth", "-o", str(path)] + SMALL) == 0
    return path


def test_synth_info_fit_report_simulate(tmp_path, data, capsys):
    assert main(["info", str(data)]) == 0
    assert "2 particle(s)" in capsys.readouterr().out
    with h5py.File(data, "r") as f:
        assert f["truth"].attrs["b1"] == 0.5 and len(f["truth/theta"]) == 2

    results = tmp_path / "results.h5"
    assert main(["--threads", "1", "fit", str(data), "-o", str(results), "--max-iter", "6", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "6 iterations" in out and "reduced chi-square" in out
    assert sorted(os.listdir(tmp_path)) == ["data.h5", "results.h5"]  # no checkpoint or temporary left
    r = load_results(results)
    assert r.fit["n_iter"] == 6 and set(r.particles) == {m.name for m in pk.load_movies(data)}

    assert main(["info", str(results)]) == 0
    assert "results of a fit of 2 particle(s)" in capsys.readouterr().out

    figures = tmp_path / "figures"
    assert main(["report", str(results), "-o", str(figures)]) == 0
    names = os.listdir(figures)
    assert {"residuals.png", "kinetics.png", "history.png", "theta_vs_carbon.png", "summary.txt"} <= set(names)
    assert "theta correlation with the truth" in capsys.readouterr().out

    simulated = tmp_path / "simulated.h5"
    assert main(["simulate", str(data), "-o", str(simulated), "--results", str(results)]) == 0
    for m, s in zip(pk.load_movies(data), pk.load_movies(simulated)):
        np.testing.assert_allclose(s.concentration, r.particles[m.name].fitted, rtol=0, atol=1e-10)


def test_demo_writes_results_and_figures(tmp_path, capsys):
    assert main(["--threads", "1", "demo", "-o", str(tmp_path), "--max-iter", "5", "--quiet"] + SMALL) == 0
    out = capsys.readouterr().out
    assert "theta correlation with the truth" in out and "k0" in out
    assert (tmp_path / "demo_results.h5").exists() and (tmp_path / "demo_data.h5").exists()
    assert any(name.startswith("frames_") for name in os.listdir(tmp_path / "report"))


def test_fit_refuses_degenerate_config_and_bad_files_with_exit_status_2(tmp_path, data, capsys):
    config = tmp_path / "fit.toml"
    config.write_text('[fit]\nfree = ["k0", "b0"]\n')
    assert main(["fit", str(data), "-o", str(tmp_path / "r.h5"), "--config", str(config)]) == 2
    assert "k0 and b0 cannot all be free" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    assert main(["fit", str(bad), "-o", str(tmp_path / "r.h5")]) == 2
    assert "bad.h5: not a readable HDF5 file" in capsys.readouterr().err
    assert main(["report", str(data), "-o", str(tmp_path / "fig")]) == 2
    assert "not a pixelkinetics results file" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


def _fit_command(data, results, config, *extra):
    return [sys.executable, "-m", "pixelkinetics", "--threads", "1", "fit", str(data), "-o", str(results),
            "--config", str(config), "--quiet", *extra]


def test_fit_killed_mid_run_resumes_to_the_uninterrupted_optimum(tmp_path):
    # Six small particles: a fit of a few seconds, long enough to be killed mid-run.
    data = tmp_path / "data.h5"
    assert main(["synth", "-o", str(data), "--particles", "6"] + SMALL[2:]) == 0
    config = tmp_path / "fit.toml"
    # Small particles pin k0 and the maps, not the shape parameters: fit those that are determined.
    config.write_text('[fit]\nfree = ["k0", "kappa"]\ncheckpoint_every = 2\nloss_tol = 0.002\n')
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    straight = tmp_path / "straight.h5"
    subprocess.run(_fit_command(data, straight, config), check=True, env=env, capture_output=True)

    results = tmp_path / "results.h5"
    checkpoint = tmp_path / "results.h5.checkpoint"
    process = subprocess.Popen(_fit_command(data, results, config), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # let it run on past the checkpoint: the kill lands mid-iteration
    assert process.poll() is None, "the fit finished before it could be killed; make it larger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not results.exists()

    run = subprocess.run(_fit_command(data, results, config, "--resume"), env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert not checkpoint.exists()
    a, b = load_results(straight), load_results(results)
    assert b.history["iteration"][0] == 1  # the history continues across the kill
    assert b.fit["loss"] == pytest.approx(a.fit["loss"], abs=0.05)  # chi-square / 2: far inside 1/2
    for name in a.fit["free"]:
        assert b.params.values()[name] == pytest.approx(a.params.values()[name], rel=1e-2), name
    for name, p in a.particles.items():
        np.testing.assert_allclose(b.particles[name].theta, p.theta, atol=0.02)


def test_fit_uq_report_and_identifiability_study(tmp_path, data, capsys):
    results = tmp_path / "results.h5"
    assert main(["--threads", "1", "fit", str(data), "-o", str(results), "--quiet", "--uq"]) == 0
    out = capsys.readouterr().out
    assert "Laplace approximation" in out and "theta sd" in out
    r = load_results(results)
    u = r.uncertainty
    assert u is not None and u.free == r.fit["free"] and np.all(np.isfinite(u.sd)) and u.undetermined == []
    assert np.all(u.lower < u.values) and np.all(u.values < u.upper)
    for name, p in r.particles.items():
        assert np.all(np.isfinite(u.theta_sd[name][p.mask])) and np.all(np.isnan(u.theta_sd[name][~p.mask]))
    assert np.all(u.curves["j0_lower"] < u.curves["j0"]) and np.all(u.curves["j0"] < u.curves["j0_upper"])

    figures = tmp_path / "figures"
    assert main(["report", str(results), "-o", str(figures)]) == 0
    assert "theta_sd.png" in os.listdir(figures)
    summary = (figures / "summary.txt").read_text()
    assert "uncertainty (Laplace approximation" in summary and "truth inside" in summary

    # What if B were free as well? Under rate driving it trades against Omega: named, not an error.
    assert main(["--threads", "1", "uq", str(data), str(results), "--free", "k0,Omega,kappa,B,b1,b2",
                 "--quiet"]) == 0
    assert "0.5 Omega + B is not determined by these data" in capsys.readouterr().out
    assert load_results(results).uncertainty.undetermined
    assert sorted(os.listdir(tmp_path)) == ["data.h5", "figures", "results.h5"]  # no temporary left


def test_compare_writes_a_ranked_table(tmp_path, data, capsys):
    table = tmp_path / "models.csv"
    assert main(["--threads", "1", "compare", str(data), "--bases", "sqrt,asym", "--orders", "2",
                 "-o", str(table), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "preferred: sqrt, Mb = 2" in out  # synth data use the sqrt base
    rows = table.read_text().splitlines()
    assert rows[0].startswith("j0_base,order,log_evidence") and len(rows) == 3
