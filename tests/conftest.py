"""Shared fixtures: the golden file, small synthetic problems, thread control."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics.kinetics.synthetic import make_movies

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PIXELKINETICS_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden" / "chr_golden.h5"


def pytest_report_header(config):
    import h5py
    import scipy

    return (f"pixelkinetics {pk.__version__} (OpenMP: {pk.has_openmp()}, threads: {pk.num_threads()}), "
            f"numpy {np.__version__}, scipy {scipy.__version__}, h5py {h5py.__version__}")


@pytest.fixture
def golden_path() -> Path:
    # A missing golden file is a failure, not a skip: the solver is unverified without it.
    assert GOLDEN.is_file(), f"golden file not found at {GOLDEN} (set PIXELKINETICS_SHARED)"
    return GOLDEN


@pytest.fixture(scope="session")
def small_movies():
    """Three small rate-driven particles with noise and a few missing pixels."""
    movies, truth = make_movies(n_particles=3, sites=(30, 60), n_frames=5, t_end=40.0, noise=0.02,
                                missing=0.05, n_sub=8, seed=7)
    return movies, truth


@pytest.fixture
def restore_threads():
    n = pk.num_threads()
    yield
    pk.set_num_threads(n)


@pytest.fixture
def cli(tmp_path):
    """``cli(*args)`` runs ``python -m pixelkinetics ARGS`` in ``tmp_path`` with one OpenMP thread and
    returns the CompletedProcess (text output)."""
    def run(*args):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        return subprocess.run([sys.executable, "-m", "pixelkinetics", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    return run
