"""Every command of the README is a library function: run through the Python API and through the command
line on the same small inputs, each leaves the same files (HDF5 datasets and attributes equal, timings and
host details aside; tables and figure lists equal) and the API returns what the command prints."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.cli import main

#: Attributes that record when, where and how fast something ran, not what it computed.
CIRCUMSTANCES = {"wall_time", "time_fev", "time_hessp", "started", "finished", "host", "pid", "time", "time_min"}
SWEEP = """data = "data.h5"
[base]
fit = { max_iter = 2 }
[grid]
"fit.lam_s" = [1.0, 4.0]
"""
CONFIG = "[fit]\nmax_iter = 3\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The inputs the commands read, made once: movies, a fit of them, stacks, strain maps, TOML files."""
    here = tmp_path_factory.mktemp("inputs")
    pk.synth(here / "data.h5", particles=2, sites=(50, 70), frames=5, seed=3)
    pk.fit(here / "data.h5", output=here / "results.h5", max_iter=4, progress=False)
    pk.synth_stacks(here / "stacks.h5", particles=2, frames=3, energies=12)
    pk.synth_strain(here / "strain.h5", size=32, angle_deg=20)
    (here / "sweep.toml").write_text(SWEEP)
    (here / "fit.toml").write_text(CONFIG)
    return here


def _same_h5(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        def visit(ga, gb):
            assert sorted(ga) == sorted(gb), (ga.name, sorted(ga), sorted(gb))
            attrs = set(ga.attrs) | set(gb.attrs)
            assert set(ga.attrs) == set(gb.attrs), ga.name
            for key in attrs - CIRCUMSTANCES:
                assert np.array_equal(np.asarray(ga.attrs[key]), np.asarray(gb.attrs[key])), (ga.name, key)
            for key in ga:
                if isinstance(ga[key], h5py.Group):
                    visit(ga[key], gb[key])
                elif key not in CIRCUMSTANCES:
                    x, y = ga[key][()], gb[key][()]
                    equal_nan = np.asarray(x).dtype.kind == "f"
                    assert np.array_equal(x, y, equal_nan=equal_nan), f"{a.name}: {ga[key].name} differs"

        visit(fa, fb)


def _same_text(a: Path, b: Path, skip_column: str = "") -> None:
    def rows(path):
        lines = [line.split(",") for line in path.read_text().splitlines()]
        drop = lines[0].index(skip_column) if skip_column in lines[0] else None
        return [[c for i, c in enumerate(line) if i != drop] for line in lines]

    assert rows(a) == rows(b), a.name


def _same(a: Path, b: Path) -> None:
    """Files or folders of the two runs hold the same."""
    if a.is_dir():
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir()), a
        for p in a.iterdir():
            if p.suffix in (".h5", ".csv", ".txt"):
                _same(p, b / p.name)
    elif a.suffix == ".h5":
        _same_h5(a, b)
    elif a.suffix == ".csv":
        _same_text(a, b, skip_column="wall_time")
    else:
        assert a.read_text() == b.read_text(), a


# (command line, the same through the API, inputs it reads, outputs to compare)
CASES = {
    "synth": (["synth", "-o", "data.h5", "--particles", "2", "--sites", "50", "70", "--frames", "5", "--seed", "3"],
              lambda: pk.synth("data.h5", particles=2, sites=(50, 70), frames=5, seed=3), [], ["data.h5"]),
    "fit": (["fit", "data.h5", "-o", "fitted.h5", "--max-iter", "4", "--quiet"],
            lambda: pk.fit("data.h5", output="fitted.h5", max_iter=4, progress=False), ["data.h5"], ["fitted.h5"]),
    "fit-config": (["fit", "data.h5", "-o", "fitted.h5", "--config", "fit.toml", "--quiet"],
                   lambda: pk.fit("data.h5", "fit.toml", output="fitted.h5", progress=False),
                   ["data.h5", "fit.toml"], ["fitted.h5"]),
    "report": (["report", "results.h5", "-o", "figures"], lambda: pk.report("results.h5", "figures"),
               ["results.h5"], ["figures"]),
    "simulate": (["simulate", "data.h5", "-o", "model.h5", "--results", "results.h5"],
                 lambda: pk.simulate("data.h5", "results.h5", output="model.h5"), ["data.h5", "results.h5"],
                 ["model.h5"]),
    "uq": (["uq", "data.h5", "results.h5", "--quiet"],
           lambda: pk.uq("data.h5", "results.h5", output="results.h5", progress=False), ["data.h5", "results.h5"],
           ["results.h5"]),
    "uq-bootstrap": (["uq", "data.h5", "results.h5", "--bootstrap", "2", "--seed", "1", "--quiet"],
                     lambda: pk.bootstrap("data.h5", "results.h5", 2, seed=1, output="results.h5", progress=False),
                     ["data.h5", "results.h5"], ["results.h5"]),
    "compare": (["compare", "data.h5", "--config", "fit.toml", "--bases", "sqrt,one", "--orders", "1", "-o",
                 "table.csv", "--quiet"],
                lambda: pk.compare("data.h5", "fit.toml", bases=["sqrt", "one"], orders=[1], output="table.csv",
                                   progress=False), ["data.h5", "fit.toml"], ["table.csv"]),
    "sweep": (["sweep", "sweep.toml", "--quiet"], lambda: pk.sweep("sweep.toml", progress=False),
              ["data.h5", "sweep.toml"], ["sweep.h5", "sweep.csv"]),
    "synth-stacks": (["synth-stacks", "-o", "stacks.h5", "--particles", "2", "--frames", "3", "--energies", "12"],
                     lambda: pk.synth_stacks("stacks.h5", particles=2, frames=3, energies=12), [],
                     ["stacks.h5", "stacks_references.txt"]),
    "spectra": (["spectra", "stacks.h5", "--references", "stacks_references.txt", "-o", "movie.h5", "--report",
                 "spectra_report", "--quiet"],
                lambda: pk.composition_movie(["stacks.h5"], "stacks_references.txt", "movie.h5",
                                             report="spectra_report", progress=False),
                ["stacks.h5", "stacks_references.txt"], ["movie.h5", "spectra_report"]),
    "synth-strain": (["synth-strain", "-o", "strain.h5", "--size", "32", "--angle-deg", "20"],
                     lambda: pk.synth_strain("strain.h5", size=32, angle_deg=20), [], ["strain.h5"]),
    "strain": (["strain", "strain.h5", "-o", "strain_fit.h5", "--hold-out", "linear-3", "--fit-stiffness",
                "--report", "strain_report", "--quiet"],
               lambda: pk.strain("strain.h5", "strain_fit.h5", hold_out=["linear-3"], fit_stiffness=True,
                                 report="strain_report", progress=False),
               ["strain.h5"], ["strain_fit.h5", "strain_report"]),
    "stability": (["stability", "-o", "stability.png", "--grid", "2", "--particles", "8"],
                  lambda: pk.stability("stability.png", grid=2, particles=8), [], []),
    "demo": (["demo", "-o", "demo", "--particles", "2", "--sites", "50", "70", "--frames", "5", "--max-iter", "3",
              "--quiet"],
             lambda: pk.demo("demo", particles=2, sites=(50, 70), frames=5, max_iter=3, progress=False), [],
             ["demo"]),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_the_api_and_the_command_line_leave_the_same_files(case, inputs, tmp_path, monkeypatch, capsys,
                                                            restore_threads):
    command, api, reads, outputs = CASES[case]
    here = tmp_path / "work"  # both run here, on fresh copies of the inputs, so that paths are the same
    here.mkdir()
    monkeypatch.chdir(here)
    for way in ("cli", "api"):
        for name in reads:
            shutil.copy(inputs / name, here / name)
        if way == "cli":
            assert main(["--threads", "1"] + command) == 0
        else:
            api()
        capsys.readouterr()
        (tmp_path / way).mkdir()
        for name in outputs:
            shutil.move(here / name, tmp_path / way / name)
    for name in outputs:
        _same(tmp_path / "cli" / name, tmp_path / "api" / name)


@pytest.mark.parametrize("command, api", [
    (["info", "data.h5"], lambda: pk.info("data.h5")),
    (["info", "results.h5"], lambda: pk.info("results.h5")),
    (["stability", "-o", "stability.png", "--grid", "2", "--particles", "8"],
     lambda: pk.stability("stability.png", grid=2, particles=8).summary()),
], ids=["info-movies", "info-results", "stability"])
def test_the_command_prints_what_the_api_returns(command, api, inputs, tmp_path, monkeypatch, capsys):
    for name in ("data.h5", "results.h5"):
        shutil.copy(inputs / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(command) == 0
    printed = capsys.readouterr().out
    for line in api():
        assert line.strip() in printed, line
