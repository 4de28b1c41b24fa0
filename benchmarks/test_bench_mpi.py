"""Strong scaling of one loss-and-gradient evaluation of 256 particles over MPI ranks, against its
reference in the same run: one rank (the serial code path). Each variant launches
benchmarks/mpi_scaling.py under mpiexec; the benchmark times the whole launch, and ``extra_info`` holds
the evaluation's own seconds (startup excluded) and the parallel efficiency t1 / (N tN).

    python -m pytest benchmarks/test_bench_mpi.py --benchmark-group-by=group --benchmark-columns=min,rounds
    PK_SCALING_RANKS=1,2,4,8,16 python -m pytest benchmarks/test_bench_mpi.py   # on a 16-core node
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "mpi_scaling.py")
RANKS = [int(n) for n in os.environ.get("PK_SCALING_RANKS", "1,2").split(",")]
SIZE = ["--particles", "256", "--sites", "100", "200", "--repeat", "3"]
_seconds = {}


@pytest.mark.parametrize("ranks", RANKS)
def test_strong_scaling(benchmark, ranks):
    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec: pip install '.[mpi]'")
    benchmark.group = "one evaluation of 256 particles of 100-200 sites, 1 OpenMP thread per rank"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")

    def launch():
        out = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, SCRIPT] + SIZE, env=env, check=True,
                             capture_output=True, text=True, timeout=1800)
        return json.loads(out.stdout.strip().splitlines()[-1])

    result = benchmark.pedantic(launch, rounds=1, iterations=1)
    _seconds[ranks] = result["seconds"]
    benchmark.extra_info.update(result)
    if 1 in _seconds:
        benchmark.extra_info["efficiency"] = _seconds[1] / (ranks * result["seconds"])
