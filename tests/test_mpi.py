"""MPI: particles shared over ranks give the serial loss, gradient, products and fit bit for bit, and
sweeps balance runs over ranks, record failures and resume after a kill. The multi-rank tests launch
``mpiexec -n 2`` (from the mpich wheel of the ``mpi`` extra) in a subprocess with OMP_NUM_THREADS=1."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import pixelkinetics
from pixelkinetics.cli import main
from pixelkinetics.floor.parallel import launched_by_mpi, partition
from pixelkinetics.kinetics.results import load_results
from pixelkinetics.kinetics.sweep import load_sweep, read_runs

SMALL = ["--particles", "5", "--sites", "30", "60", "--frames", "5", "--seed", "2"]


def _mpiexec():
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec (install the mpi extra: pip install '.[mpi]')")
    return exe


def _env():
    # The ranks import the package this test imported, installed or not.
    where = os.path.dirname(os.path.dirname(os.path.abspath(pixelkinetics.__file__)))
    path = os.pathsep.join([where] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=path)
    env.pop("PIXELKINETICS_MPI", None)
    return env


def _launch(n, args, cwd, timeout=180, **kwargs):
    return subprocess.run([_mpiexec(), "-n", str(n), sys.executable] + list(args), cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.h5"
    assert main(["synth", "-o", str(path)] + SMALL) == 0
    return path


# -- without MPI ---------------------------------------------------------------------------------------
def test_partition_balances_costs_and_is_deterministic():
    costs = np.random.default_rng(0).uniform(1, 10, 40)
    owner = partition(costs, 4)
    load = np.bincount(owner, weights=costs, minlength=4)
    assert np.array_equal(owner, partition(costs, 4))
    assert load.max() <= 4 / 3 * max(costs.sum() / 4, costs.max())  # LPT's bound
    assert load.max() / load.mean() < 1.05
    assert np.array_equal(partition([5.0, 1.0], 3), [0, 1])  # more ranks than items: some stay idle


def test_mpi_is_initialised_only_under_a_launcher(monkeypatch):
    for v in ("PMI_SIZE", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PIXELKINETICS_MPI"):
        monkeypatch.delenv(v, raising=False)
    assert not launched_by_mpi()
    monkeypatch.setenv("PMI_SIZE", "2")
    assert launched_by_mpi()
    monkeypatch.setenv("PIXELKINETICS_MPI", "0")
    assert not launched_by_mpi()


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_sweep_files_are_checked_before_anything_runs(tmp_path, data):
    cases = {
        'data = "data.h5"\n[grid]\n"fit.lam_z" = [1.0]\n': "unknown setting 'fit.lam_z'",
        'data = "data.h5"\n[grid]\n"fit.lam_s" = 2.0\n': "fit.lam_s must be a non-empty list",
        'data = "data.h5"\ntask = "race"\n': "task must be one of",
        '[grid]\n"fit.lam_s" = [1.0]\n': "'data' (the movie file) is missing",
        'data = "data.h5"\n[[runs]]\nname = "a"\n[[runs]]\nname = "a"\n': "run names must be unique",
        'data = "data.h5"\n[[runs]]\n"fit.method" = "newton"\n': "run 'run-1'",
        'data = "data.h5"\ntask = "evaluate"\nreference = "zz"\n': "reference 'zz' is not a run",
        'data = "data.h5"\n[[runs]]\nname = "."\n': "run name '.' is not usable",
        'data = "data.h5"\n[[runs]]\n"data.particles" = "particle_001"\n': "data.particles must be a number",
        'data = "data.h5"\n[[runs]]\n"data.noise" = "big"\n': "data.noise must be a number",
        'data = "data.h5"\nrepeat = "x"\n': "repeat must be an integer",
        'data = "nothing.h5"\n': "data file .*nothing.h5 does not exist",
    }
    for text, message in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_sweep(_write(tmp_path / "bad.toml", text))


def test_serial_sweep_of_solver_variants_reports_accuracy(tmp_path, data, capsys):
    # The solver-benchmark sweep: loss and gradient at one point per variant, compared with a fine reference.
    sweep = _write(tmp_path / "solvers.toml", """
        data = "data.h5"
        task = "evaluate"
        reference = "bdf2-80"
        repeat = 1
        [base]
        fit = { fit_initial = false }
        [[runs]]
        name = "bdf2-80"
        solver = { scheme = "bdf2", n_sub = 80 }
        [grid]
        "solver.scheme" = ["be", "bdf2"]
        "solver.n_sub" = [5, 20]
        """)
    assert main(["sweep", str(sweep), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "loss_error" in out and "grad_error" in out and "adjoint_error" in out
    rows = {r["run"]: r for r in _csv(tmp_path / "solvers.csv")}
    assert set(rows) == {"bdf2-80", "scheme=be,n_sub=5", "scheme=be,n_sub=20", "scheme=bdf2,n_sub=5",
                         "scheme=bdf2,n_sub=20"}
    assert float(rows["bdf2-80"]["loss_error"]) == 0.0
    for r in rows.values():
        assert r["status"] == "ok" and float(r["adjoint_error"]) < 1e-4  # the adjoint is each variant's own gradient
        assert int(r["n_newton"]) > 0
    # First order (BE) against second (BDF2): refining 4x shrinks BE's gradient error ~4x, BDF2's ~16x.
    be = float(rows["scheme=be,n_sub=5"]["grad_error"]) / float(rows["scheme=be,n_sub=20"]["grad_error"])
    bdf2 = float(rows["scheme=bdf2,n_sub=5"]["grad_error"]) / float(rows["scheme=bdf2,n_sub=20"]["grad_error"])
    assert 2.5 < be < 6 and bdf2 > 8, (be, bdf2)
    assert main(["sweep", str(sweep), "--summary"]) == 0
    assert "scheme=bdf2,n_sub=20" in capsys.readouterr().out
    assert main(["sweep", str(sweep), "--quiet"]) == 2  # the results exist: --resume or a new file
    assert "pass --resume" in capsys.readouterr().err


def test_sweep_settings_reach_the_runs(tmp_path, data, capsys):
    # Legendre order, particle subsets and extra noise (the fit's sigma follows it) as sweep settings.
    sweep = _write(tmp_path / "options.toml", """
        data = "data.h5"
        [base]
        fit = { max_iter = 2 }
        [[runs]]
        name = "order-1"
        "model.b_order" = 1
        "data.particles" = 2
        [[runs]]
        name = "noisy"
        "data.noise" = 0.03
        "data.particles" = ["particle_001"]
        """)
    assert main(["sweep", str(sweep), "--quiet", "--csv", str(tmp_path / "t.csv")]) == 0
    runs = read_runs(tmp_path / "options.h5")
    assert all(r["status"] == "ok" for r in runs.values())
    spec = {n: json.loads(r["spec"]) for n, r in runs.items()}
    assert spec["order-1"]["config"]["model"]["b"] == [0.0, 0.0] and "fit.b1" in runs["order-1"]
    assert "fit.b2" not in runs["order-1"] and "fit.b2" in runs["noisy"]
    assert spec["noisy"]["config"]["fit"]["sigma"] == pytest.approx(np.hypot(0.02, 0.03))
    with h5py.File(tmp_path / "options.h5", "r") as f:
        assert set(f["runs/order-1/theta"]) == {"particle_000", "particle_001"}
        assert set(f["runs/noisy/theta"]) == {"particle_001"}
    assert [r["run"] for r in _csv(tmp_path / "t.csv")] == ["order-1", "noisy"]


def _csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


# -- under mpiexec -n 2 --------------------------------------------------------------------------------
EQUALITY = """
import numpy as np
from mpi4py import MPI
import pixelkinetics as pk
from pixelkinetics import load_movies
from pixelkinetics import Params

comm = MPI.COMM_WORLD
P = Params(k0=0.02, alpha=0.5, Omega=4.5, kappa=2.0, B=1.0, D=0.0, b=[0.0, 0.5, -0.3], j0_base="sqrt")
movies = load_movies("data.h5")
rng = np.random.default_rng(0)
theta = [0.1 * rng.standard_normal(m.n_sites) for m in movies]
c0 = [np.clip(m.concentration[0][m.mask], 0.01, 0.99) for m in movies]
serial = pk.Problem(movies, scheme="bdf2", n_sub=5, fit_initial=True)
shared = pk.Problem(movies, scheme="bdf2", n_sub=5, fit_initial=True, comm=comm)
assert len(shared.shards.local) < len(movies) and shared._batch.n_movies == len(shared.shards.local)

def same(a, b):
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b)) and len(a) == len(b)

a, b = serial.evaluate(P, theta, c0), shared.evaluate(P, theta, c0)
assert a.loss == b.loss and a.misfit == b.misfit and a.stats == b.stats
assert np.array_equal(a.grad_globals, b.grad_globals) and same(a.grad_theta, b.grad_theta)
assert same(a.grad_c0, b.grad_c0)
d = [rng.standard_normal(m.n_sites) for m in movies]
dg = rng.standard_normal(len(P.names()))
pa = serial.linearize(P, theta, c0).product(dg, d, d)
pb = shared.linearize(P, theta, c0).product(dg, d, d)
assert pa.quadratic == pb.quadratic and np.array_equal(pa.globals, pb.globals)
assert same(pa.theta, pb.theta) and same(pa.c0, pb.c0)
sa, sb = serial.solve(P), shared.solve(P)
assert same([sa.concentration[m.name] for m in movies], [sb.concentration[m.name] for m in movies])
# A particle that fails on rank 1 alone fails the call on both ranks, with the solver's message.
budget = pk.Problem(movies, scheme="bdf2", n_sub=5, fit_initial=True, newton_budget=10, comm=comm)
budget.evaluate(P, theta, c0)
bad = int(np.flatnonzero(budget.shards.owner == 1)[0])
fast = [t + (12.0 if i == bad else 0.0) for i, t in enumerate(theta)]
try:
    budget.evaluate(P, fast, c0)
    raise AssertionError("no SolverError")
except pk.SolverError as exc:
    assert movies[bad].name in str(exc), str(exc)
print(f"rank {comm.rank} equal", flush=True)
"""


def test_distributed_loss_gradient_and_products_equal_serial(tmp_path, data):
    _write(tmp_path / "equality.py", EQUALITY)
    run = _launch(2, ["equality.py"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rank 0 equal" in run.stdout and "rank 1 equal" in run.stdout


def test_two_rank_fit_reaches_the_serial_optimum(tmp_path, data):
    args = ["fit", str(data), "--max-iter", "8", "--quiet", "--config"]
    config = _write(tmp_path / "fit.toml", "[fit]\nloss_tol = 0.01\n")
    assert main(["--threads", "1"] + args + [str(config), "-o", str(tmp_path / "serial.h5")]) == 0
    run = _launch(2, ["-m", "pixelkinetics"] + args + [str(config), "-o", str(tmp_path / "mpi.h5")], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 MPI ranks" in run.stdout and run.stdout.count("reduced chi-square") == 1  # rank 0 speaks
    serial, shared = load_results(tmp_path / "serial.h5"), load_results(tmp_path / "mpi.h5")
    assert shared.fit["loss"] == serial.fit["loss"] and shared.params == serial.params
    for name, p in serial.particles.items():
        assert np.array_equal(p.theta, shared.particles[name].theta, equal_nan=True)
    assert sorted(os.listdir(tmp_path)) == ["data.h5", "fit.toml", "mpi.h5", "serial.h5"]  # nothing half-written


def test_commands_that_do_not_share_work_refuse_mpi(tmp_path, data):
    run = _launch(2, ["-m", "pixelkinetics", "info", str(data)], tmp_path)
    assert run.returncode != 0 and "does not run under MPI" in run.stderr
    run = _launch(2, ["-m", "pixelkinetics", "fit", str(tmp_path / "missing.h5"), "-o", "x.h5"], tmp_path)
    assert run.returncode == 2 and run.stderr.count("missing.h5") == 1, run.stderr  # one report, no hang


SWEEP = """
data = "data.h5"
[base]
fit = {{ max_iter = {max_iter}, loss_tol = 0.01 }}
[grid]
"fit.lam_s" = [0.5, 1.0, 2.0, 4.0]
[[runs]]
name = "broken"
"data.particles" = ["no-such-particle"]
"""


def test_sweep_over_ranks_records_a_failure_and_finishes_the_others(tmp_path, data):
    _write(tmp_path / "sweep.toml", SWEEP.format(max_iter=4))
    run = _launch(3, ["-m", "pixelkinetics", "sweep", "sweep.toml", "--quiet"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    runs = read_runs(tmp_path / "sweep.h5")
    assert set(runs) == {"lam_s=0.5", "lam_s=1.0", "lam_s=2.0", "lam_s=4.0", "broken"}
    assert runs["broken"]["status"] == "failed" and "no-such-particle" in runs["broken"]["error"]
    assert all(r["status"] == "ok" and r["n_iter"] == 4 for n, r in runs.items() if n != "broken")
    assert len({r["pid"] for n, r in runs.items() if n != "broken"}) == 2  # both workers took runs
    assert "broken: ValueError" in run.stdout and "1 run(s) failed" in run.stdout
    with h5py.File(tmp_path / "sweep.h5", "r") as f:
        assert set(f["runs/lam_s=2.0/theta"]) == {f"particle_{i:03d}" for i in range(5)}
    rows = _csv(tmp_path / "sweep.csv")
    assert [r["run"] for r in rows] == ["lam_s=0.5", "lam_s=1.0", "lam_s=2.0", "lam_s=4.0", "broken"]


def test_killed_sweep_resumes_without_rerunning_finished_runs(tmp_path, data):
    _write(tmp_path / "sweep.toml", SWEEP.format(max_iter=12))
    proc = subprocess.Popen([_mpiexec(), "-n", "2", sys.executable, "-m", "pixelkinetics", "sweep", "sweep.toml",
                             "--quiet"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    before = {}
    while time.time() < deadline and proc.poll() is None:
        if (tmp_path / "sweep.h5").exists():
            before = read_runs(tmp_path / "sweep.h5")
            if len(before) >= 1:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert (tmp_path / "sweep.h5").exists(), f"no run was stored before the kill: {out!r} {err!r}"
    before = read_runs(tmp_path / "sweep.h5")
    assert 1 <= len(before) < 5, "the sweep finished before it could be killed"

    run = _launch(2, ["-m", "pixelkinetics", "sweep", "sweep.toml", "--resume", "--quiet"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"skipped {len(before)} run(s) already stored" in run.stdout
    after = read_runs(tmp_path / "sweep.h5")
    assert len(after) == 5
    for name, r in before.items():  # stored once, never run again
        assert after[name]["finished"] == r["finished"] and after[name]["pid"] == r["pid"]


def test_bootstrap_over_ranks_gives_the_serial_replicates(tmp_path):
    """Replicate b draws from the seed [seed, b] whichever rank refits it: two ranks give the serial
    bootstrap exactly, and only rank 0 writes."""
    from pixelkinetics.kinetics.files import write_movies
    from pixelkinetics.kinetics.population import synthetic_population

    params = pixelkinetics.Params(k0=0.05, alpha=0.5, Omega=1.0, kappa=0.0, B=0.0, D=0.0, b=[0.0],
                                  j0_base="logistic", j0_s=12.0, j0_c=0.5)
    pops = [synthetic_population(params, n_particles=20, n_frames=5, current=current, c_start=c_start,
                                 theta_std=0.0, seed=k, name=f"cells{k}")[0]
            for k, (current, c_start) in enumerate([(-3e-3, 0.85), (3e-3, 0.2)])]
    write_movies(tmp_path / "pop.h5", pops)
    config = _write(tmp_path / "fit.toml", '[model]\nk0 = 0.04\nOmega = 1.0\nkappa = 0.0\nB = 0.0\nb = [0.0]\n'
                    'j0_base = "logistic"\nj0_s = 10.0\nj0_c = 0.45\n[fit]\nfree = ["k0", "j0_s", "j0_c"]\n'
                    'fit_theta = false\nlam_s = 0.0\nsigma = 0.01\n')
    assert main(["--threads", "1", "fit", str(tmp_path / "pop.h5"), "--config",
                 str(config), "-o", str(tmp_path / "serial.h5"), "--quiet"]) == 0
    shutil.copy(tmp_path / "serial.h5", tmp_path / "mpi.h5")
    boot = ["uq", str(tmp_path / "pop.h5"), "--bootstrap", "3", "--seed", "4", "--quiet"]
    assert main(["--threads", "1"] + boot[:2] + [str(tmp_path / "serial.h5")] + boot[2:]) == 0
    run = _launch(2, ["-m", "pixelkinetics"] + boot[:2] + [str(tmp_path / "mpi.h5")] + boot[2:], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("parametric bootstrap") == 1
    serial, shared = load_results(tmp_path / "serial.h5").bootstrap, load_results(tmp_path / "mpi.h5").bootstrap
    np.testing.assert_array_equal(shared.extra["replicates"], serial.extra["replicates"])
    np.testing.assert_array_equal(shared.lower, serial.lower)
    assert not any(name.endswith("checkpoint") for name in os.listdir(tmp_path))
