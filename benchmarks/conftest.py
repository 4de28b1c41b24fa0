"""Benchmark fixtures. OpenMP's spinning wait makes 2 threads slower than 1 on a busy 2-core machine,
so the passive policy is set before the runtime starts; NumPy's OpenBLAS threads would otherwise spin
beside a single-threaded measurement."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

from pixelkinetics.kinetics.synthetic import make_movies  # noqa: E402


@pytest.fixture(scope="session")
def batch_62():
    """62 particles of 300-700 sites (about 30,000 sites), 8 frames: the batch of the solver issue."""
    movies, truth = make_movies(n_particles=62, sites=(300, 700), n_frames=8, noise=0.02, seed=1)
    return movies, truth
