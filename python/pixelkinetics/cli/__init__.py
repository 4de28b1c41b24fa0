"""The command line (``pixelkinetics``): it parses arguments, calls the workflows of the package and prints
what they return; no command holds workflow logic of its own.

- :mod:`.arguments`: argument types;
- :mod:`.commands`: one function per command;
- :mod:`.parser`: the parser;
- :func:`main`: MPI ranks, logging, errors and exit statuses (0 done, 2 bad input or a solver failure,
  130 interrupted).
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import List, Optional

from .._core import SolverError, set_num_threads
from ..floor.parallel import CollectiveError, rank_of, size_of, world
from .parser import build_parser

#: Commands that share their work over the ranks of an ``mpiexec`` launch.
MPI_COMMANDS = ("fit", "uq", "sweep")


class _Console(logging.Handler):
    """The package's log on the terminal: notes to standard output (indented under the command's first line),
    warnings to standard error; the streams are looked up at each message, as they may be replaced."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            print(f"  warning: {record.getMessage()}", file=sys.stderr)
        else:
            print(f"  {record.getMessage()}", file=sys.stdout)


@contextmanager
def _log_to_console(speaks: bool):
    """The package's log on the terminal while a command runs (one rank speaks for an MPI job); the logger
    is left as it was found, for the Python session around an in-process call."""
    logger = logging.getLogger("pixelkinetics")
    handler, before = _Console(), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO if speaks else logging.ERROR)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    comm = world()
    if size_of(comm) > 1 and args.command not in MPI_COMMANDS:
        if rank_of(comm) == 0:
            print(f"pixelkinetics: error: {args.command} does not run under MPI (only {', '.join(MPI_COMMANDS)} "
                  "do); start it without mpiexec", file=sys.stderr)
        return 2
    args.comm = comm
    quiet_rank = rank_of(comm) != 0
    stdout = sys.stdout
    if quiet_rank:  # rank 0 speaks for the job
        sys.stdout = open(os.devnull, "w")
    try:
        if args.threads is not None:
            set_num_threads(args.threads)
        elif size_of(comm) > 1 and "OMP_NUM_THREADS" not in os.environ:
            set_num_threads(_threads_per_rank())
        with _log_to_console(not quiet_rank):
            return args.run(args)
    except (ValueError, FileNotFoundError, SolverError, CollectiveError) as exc:
        if not quiet_rank:
            print(f"pixelkinetics: error: {exc}", file=sys.stderr)
        elif not getattr(exc, "collective", False):  # perhaps this rank's alone: say it before the abort
            print(f"pixelkinetics: rank {rank_of(comm)}: error: {exc}", file=sys.stderr)
        _abort_unless_collective(comm, exc, 2)
        return 2
    except KeyboardInterrupt:
        print("pixelkinetics: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if size_of(comm) == 1:
            raise
        print(f"pixelkinetics: rank {rank_of(comm)}: unexpected error", file=sys.stderr)
        traceback.print_exc()
        _abort_unless_collective(comm, exc, 1)
        return 1
    finally:
        if quiet_rank:
            sys.stdout.close()
            sys.stdout = stdout


def _threads_per_rank() -> int:
    """Without OMP_NUM_THREADS, the ranks on one node share its cores instead of each taking all of them."""
    local = next((int(os.environ[v]) for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
                  if os.environ.get(v, "").isdigit()), 1)
    return max(1, (os.cpu_count() or 1) // max(local, 1))


def _abort_unless_collective(comm, exc: BaseException, code: int) -> None:
    """End the whole MPI job when an error may have struck one rank alone: the others would wait for it in
    their next collective call for ever. Errors that every rank raised together end normally."""
    if size_of(comm) > 1 and not getattr(exc, "collective", False):
        sys.stderr.flush()
        if rank_of(comm) != 0:
            time.sleep(2.0)  # let rank 0 report first, should it have failed too
        comm.Abort(code)
