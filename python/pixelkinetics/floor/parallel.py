"""MPI: the communicator of an ``mpiexec`` launch and the collective patterns every wing uses: work on rank 0
alone (:func:`on_root`), work on every rank that fails together (:func:`agree`), and the split of items over
ranks by cost (:func:`partition`). How a fit's particles travel between ranks is the kinetics wing's
(:mod:`pixelkinetics.kinetics.sharding`).

mpi4py is imported only when the process was started by an MPI launcher (or ``PIXELKINETICS_MPI=1``), so a
plain ``pixelkinetics fit`` never initialises MPI.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

import numpy as np

from .. import _core

#: Environment variables that MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm's PMI) set in every rank.
_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (``PIXELKINETICS_MPI=0/1`` overrides)."""
    forced = os.environ.get("PIXELKINETICS_MPI")
    if forced is not None:
        return forced.strip().lower() not in ("0", "", "false", "no")
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


def world():
    """``MPI.COMM_WORLD`` when started by an MPI launcher, else None. Needs the ``mpi`` extra."""
    if not launched_by_mpi():
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("started by an MPI launcher but mpi4py is not installed: "
                           "pip install 'pixelkinetics[mpi]'") from None
    return MPI.COMM_WORLD


def processes(comm) -> str:
    """The processes of a run, as its first line says them: "2 thread(s)" or "4 MPI ranks x 2 thread(s)"."""
    threads = f"{_core.num_threads()} thread(s)"
    return threads if size_of(comm) == 1 else f"{size_of(comm)} MPI ranks x {threads}"


def rank_of(comm) -> int:
    return 0 if comm is None else comm.Get_rank()


def size_of(comm) -> int:
    return 1 if comm is None else comm.Get_size()


def partition(costs: Sequence[float], n_ranks: int) -> np.ndarray:
    """Owner rank of each item: the largest first, each to the least-loaded rank (LPT; its load is within
    4/3 of the best possible). Deterministic, so every rank computes the same split."""
    costs = np.asarray(costs, float)
    owner = np.empty(costs.size, dtype=int)
    load = np.zeros(n_ranks)
    for i in sorted(range(costs.size), key=lambda i: (-costs[i], i)):
        r = int(np.argmin(load))
        owner[i] = r
        load[r] += costs[i]
    return owner


def fingerprint(*arrays) -> float:
    """A 48-bit hash of the inputs of a call, as a float (exact), to check that all ranks agree."""
    h = hashlib.blake2b(digest_size=6)
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return float(int.from_bytes(h.digest(), "little"))


class CollectiveError(RuntimeError):
    """Raised on every rank when a rank's share of a call failed with anything but a SolverError."""


def on_root(comm, work: Callable[[], object]):
    """Run ``work`` on rank 0 alone (writing a file, say) and return its result on every rank; an
    exception there is raised on every rank (as a ValueError with its message elsewhere), so no rank
    waits for one that failed."""
    if comm is None or comm.Get_size() == 1:
        return work()
    outcome, error = None, None
    if comm.Get_rank() == 0:
        try:
            outcome = work()
        except Exception as exc:  # noqa: BLE001 (raised on every rank below)
            error = exc
    result, message = comm.bcast((outcome, None if error is None else f"{type(error).__name__}: {error}"), root=0)
    if error is not None:
        error.collective = True
        raise error
    if message is not None:
        exc = ValueError(f"rank 0: {message}")
        exc.collective = True
        raise exc
    return result


def agree(comm, work: Callable[[], object]):
    """Run ``work`` on every rank (reading and checking inputs, say); if it fails on any rank, raise the
    first failing rank's error on all of them, so that they end together instead of waiting for each other."""
    if comm is None or comm.Get_size() == 1:
        return work()
    try:
        outcome, error = work(), None
    except Exception as exc:  # noqa: BLE001 (raised on every rank below)
        outcome, error = None, exc
    reports = comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    failed = [(r, m) for r, m in enumerate(reports) if m is not None]
    if failed:
        if error is None:
            error = ValueError(f"rank {failed[0][0]}: {failed[0][1]}")
        error.collective = True
        raise error
    return outcome
