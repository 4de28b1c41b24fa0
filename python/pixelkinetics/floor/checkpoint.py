"""Checkpoints: the state of a long run (a fit, a bootstrap), saved every so often so that a killed run
resumes where it stopped.

A checkpoint file holds one tree of arrays and scalars (:func:`pixelkinetics.floor.hdf5.write_tree`) and
the fingerprint of what made it: the data, the configuration and whatever else fixes the outcome. A
checkpoint of anything else is refused, so a run never resumes on other inputs. As in SUNDIALS'
adjoint module, where to checkpoint is the run's own policy; this object only keeps the state. Under MPI
rank 0 reads and writes, and a failure there fails every rank together.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Dict, Mapping, Optional

import h5py
import numpy as np

from .hdf5 import atomic_h5, read_tree, write_tree
from .parallel import on_root

logger = logging.getLogger(__name__)


def digest(*parts: Any) -> str:
    """A hex digest of JSON-able parts and arrays (arrays hashed by their bytes, NaN included)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype.str, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpoint:
    """One checkpoint file (``path`` None: checkpoints are not kept).

    ``what`` names the run in messages ("fit", "bootstrap"); ``comm``: rank 0 reads and writes, every rank
    receives what it read.
    """

    def __init__(self, path: "Optional[str | os.PathLike]", fingerprint: str, what: str = "fit", comm=None):
        self.path = None if path is None else os.fspath(path)
        self.fingerprint = fingerprint
        self.what = what
        self.comm = comm

    def exists(self) -> bool:
        return self.path is not None and os.path.exists(self.path)

    def begin(self, resume: bool) -> Optional[Dict[str, Any]]:
        """The saved tree to continue from when ``resume`` (None: start afresh), after telling the user of an
        old checkpoint that will be overwritten or of a resume without one."""
        if self.path is not None and self.exists() != resume:
            logger.info(f"{self.path} exists from an earlier run; starting afresh (pass --resume to continue it)"
                        if not resume else f"no checkpoint {self.path}: starting afresh")
        return self.load() if resume else None

    def load(self) -> Optional[Dict[str, Any]]:
        """The saved tree, or None when there is no checkpoint; a checkpoint of other inputs or an
        unreadable file is a ValueError naming it."""
        return on_root(self.comm, self._read)

    def _read(self) -> Optional[Dict[str, Any]]:
        if not self.exists():
            return None
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("fingerprint") != self.fingerprint:
                    raise ValueError(f"{self.path}: {self.what} checkpoint belongs to another data set or "
                                     "configuration; delete it or run without --resume")
                tree = read_tree(f)
        except (OSError, KeyError) as exc:
            raise ValueError(f"{self.path}: unreadable {self.what} checkpoint ({exc})") from None
        tree.pop("fingerprint")
        return tree

    def save(self, tree: Mapping[str, Any]) -> None:
        """Replace the checkpoint by ``tree`` (atomically; rank 0 writes, a failed write fails every rank)."""
        if self.path is None:
            return

        def write():
            with atomic_h5(self.path) as f:
                f.attrs["fingerprint"] = self.fingerprint
                write_tree(f, tree)

        on_root(self.comm, write)

    def discard(self) -> None:
        """Remove the file: call it once the run's results are stored (rank 0 removes it)."""
        def remove():
            if self.exists():
                os.remove(self.path)

        on_root(self.comm, remove)
