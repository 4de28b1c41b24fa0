"""MPI: the communicator of an ``mpiexec`` launch, and a fit's particles shared over its ranks.

Particles are split over the ranks by estimated cost (sites x time steps). Every rank solves its share with
its own OpenMP threads and keeps a whole copy of the optimiser's state. The per-particle results of a call
travel in one ``Allreduce`` in which every entry has exactly one rank contributing a non-zero value, so the
sum is exact: each rank receives the serial results bit for bit, sums them in particle order as a single
process would, and all ranks follow the same optimiser path.

mpi4py is imported only when the process was started by an MPI launcher (or ``PIXELKINETICS_MPI=1``), so a
plain ``pixelkinetics fit`` never initialises MPI.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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


#: Shape of each per-particle result field, from (n_sites, n_frames, n_globals).
_FIELD_SHAPES: Dict[str, Callable[[int, int, int], Tuple[int, ...]]] = {
    "loss": lambda n, T, g: (),
    "misfit": lambda n, T, g: (),
    "stats": lambda n, T, g: (len(_core.SOLVER_STATS),),
    "grad_globals": lambda n, T, g: (g,),
    "grad_theta": lambda n, T, g: (n,),
    "grad_c0": lambda n, T, g: (n,),
    "concentration": lambda n, T, g: (T, n),
    "voltage": lambda n, T, g: (T,),
}


class Shards:
    """The particles of one problem shared over the ranks of ``comm``.

    sizes, frames: sites and frames of every particle; costs: their estimated solve costs.
    """

    def __init__(self, comm, sizes: Sequence[int], frames: Sequence[int], costs: Sequence[float]):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.sizes, self.frames = list(sizes), list(frames)
        self.owner = partition(costs, self.size)
        #: the particles this rank solves, in particle order
        self.local = [int(i) for i in np.flatnonzero(self.owner == self.rank)]
        self.load = np.bincount(self.owner, weights=np.asarray(costs, float), minlength=self.size)
        self._layouts: Dict[tuple, tuple] = {}

    def select(self, items: Sequence) -> list:
        """This rank's entries of a per-particle list (an empty list stays empty)."""
        return [items[i] for i in self.local] if len(items) else []

    def _layout(self, fields: Sequence[str], n_globals: int):
        """(per particle [(field, slice of the buffer, shape)], buffer length), after a header of two slots
        per rank; made once per kind of call, since calls of one kind repeat many times in a fit."""
        key = (tuple(fields), n_globals)
        if key not in self._layouts:
            offset = 2 * self.size
            out = []
            for n, T in zip(self.sizes, self.frames):
                entries = []
                for f in fields:
                    shape = _FIELD_SHAPES[f](n, T, n_globals)
                    size = int(np.prod(shape, dtype=int))
                    entries.append((f, slice(offset, offset + size), shape))
                    offset += size
                out.append(entries)
            self._layouts[key] = (out, offset)
        return self._layouts[key]

    def run(self, work: Callable[[], list], fields: Sequence[str], n_globals: int, inputs: float = 0.0
            ) -> List[dict]:
        """Call ``work`` (this rank's per-particle result dicts, in the order of :attr:`local`) and return
        every particle's results on every rank; ``inputs``: :func:`fingerprint` of what the call solves.

        A failure on any rank is raised on all of them after the exchange (a SolverError as a SolverError
        with its message, anything else as :class:`CollectiveError`), so no rank is left waiting."""
        from mpi4py import MPI

        layout, total = self._layout(fields, n_globals)
        buf = np.zeros(total)
        error: Optional[BaseException] = None
        try:
            results = work()
            for i, r in zip(self.local, results):
                for f, where, _ in layout[i]:
                    value = [r["stats"][k] for k in _core.SOLVER_STATS] if f == "stats" else r[f]
                    buf[where] = np.ravel(value)
        except Exception as exc:  # noqa: BLE001 (re-raised on every rank below)
            error = exc
            buf[2 * self.rank] = 1.0
        buf[2 * self.rank + 1] = inputs
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

        failed = np.flatnonzero(buf[0:2 * self.size:2])
        if failed.size:
            reports = self.comm.allgather(None if error is None else (type(error).__name__, str(error),
                                                                      isinstance(error, _core.SolverError)))
            r = int(failed[0])
            name, message, solver = reports[r]
            if solver:
                exc = _core.SolverError(message)
            else:
                exc = CollectiveError(f"rank {r}: {name}: {message}")
            exc.collective = True  # every rank raises it: no need to abort the job
            raise exc from error
        seen = buf[1:2 * self.size:2]
        if np.any(seen != seen[0]):
            exc = CollectiveError(f"the ranks solved different points (input fingerprints {seen.tolist()}): their "
                                  "optimiser copies diverged, which needs identical floating-point arithmetic on "
                                  "every node")
            exc.collective = True
            raise exc

        out = []
        for entries in layout:
            r: dict = {}
            for f, where, shape in entries:
                value = buf[where].reshape(shape)
                if f == "stats":
                    r[f] = {k: int(v) for k, v in zip(_core.SOLVER_STATS, value)}
                elif shape == ():
                    r[f] = float(value)
                else:
                    r[f] = value
            out.append(r)
        return out


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
