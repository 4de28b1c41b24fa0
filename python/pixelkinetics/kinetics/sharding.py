"""A fit's particles shared over the ranks of an MPI communicator.

Particles are split over the ranks by estimated cost (sites x time steps). Every rank solves its share with
its own OpenMP threads and keeps a whole copy of the optimiser's state. The per-particle results of a call
travel in one ``Allreduce`` in which every entry has exactly one rank contributing a non-zero value, so the
sum is exact: each rank receives the serial results bit for bit, sums them in particle order as a single
process would, and all ranks follow the same optimiser path.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..floor.parallel import CollectiveError, partition

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
