"""Before and after a change: the same work, on the same data, timed in two installations of the package,
alternately (A B A B ...) so that both see the same machine. Prints the median times, their ratio and
whether both computed the same numbers.

    python benchmarks/before_after.py --before /path/to/old/venv/bin/python --after python [--rounds 3]

Each step runs in a fresh interpreter of each installation and times only its own work. The snippets reach
the package through the names both versions have (the model contract; the fit and Laplace functions under
their old and new homes), so that a redesign can be measured against the code it replaced.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# Resolves the fit, FitConfig and Laplace of either version.
SHIM = """
import json, time, numpy as np, pixelkinetics as pk
try:
    from pixelkinetics.kinetics.config import FitConfig
    from pixelkinetics.kinetics.estimate import Estimate
    from pixelkinetics.kinetics.fit import fit as _fit
    from pixelkinetics.kinetics.objective import FitObjective
    from pixelkinetics.kinetics.observations import count_observations
    from pixelkinetics.kinetics.space import ParameterSpace
    from pixelkinetics.kinetics.uncertainty import laplace as _laplace
    def fit(movies, config): return _fit(movies, config, progress=False)
    def laplace(movies, result): return _laplace(movies, result)
except ImportError:
    from pixelkinetics.fit import FitConfig, FitObjective, ParameterSpace, count_observations, fit as _fit
    from pixelkinetics.uncertainty import from_fit
    def fit(movies, config): return _fit(movies, config, progress=False)
    def laplace(movies, result): return from_fit(movies, result)
movies = pk.load_movies(DATA)
"""

STEPS = {
    "fit (Gauss-Newton, 15 iterations)": """
t = time.perf_counter(); r = fit(movies, FitConfig(max_iter=15)); seconds = time.perf_counter() - t
value = r.loss
""",
    "Laplace at the fit": """
r = fit(movies, FitConfig(max_iter=3))
t = time.perf_counter(); post = laplace(movies, r); seconds = time.perf_counter() - t
value = float(np.sum(post.sd))
""",
    "fit objective (loss / n_obs, gradient in u)": """
config = FitConfig()
problem = config.problem(movies)
space = ParameterSpace(config, problem, count_observations(movies, True))
space.precondition()
objective = FitObjective(space, problem)
u = 0.01 * np.random.default_rng(0).standard_normal(space.size)
objective(u)
seconds = np.inf
for _ in range(10):  # the fastest of ten: the cost, without the machine's noise
    t = time.perf_counter()
    f, g = objective(u)
    seconds = min(seconds, time.perf_counter() - t)
value = f
""",
    "loss and gradient (core)": """
p = pk.Params(k0=0.02, Omega=4.5, kappa=2.0, b=[0.0, 0.5, -0.3])
prob = pk.Problem(movies, scheme="bdf2", n_sub=20, sigma=0.02, lam_s=2.0)
theta = {m.name: np.where(m.mask, 0.0, np.nan) for m in movies}
prob.loss_and_gradient(p, theta)
seconds = np.inf
for _ in range(10):
    t = time.perf_counter()
    loss, g, _ = prob.loss_and_gradient(p, theta)
    seconds = min(seconds, time.perf_counter() - t)
value = loss
""",
}


def _run(python: str, data: str, body: str) -> dict:
    code = f"DATA = {data!r}\n{SHIM}\n{body}\nprint(json.dumps(dict(seconds=seconds, value=float(value))))"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _startup(python: str, data: str) -> dict:
    """Seconds of `pixelkinetics info DATA`, the command line's start-up and one file read."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t = time.perf_counter()
    subprocess.run([python, "-m", "pixelkinetics", "info", data], capture_output=True, env=env, check=True)
    return dict(seconds=time.perf_counter() - t, value=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="python of the installation before the change")
    parser.add_argument("--after", default=sys.executable, help="python of the installation after it")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--only", default="", help="run the steps whose names contain this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.h5")
        subprocess.run([args.after, "-m", "pixelkinetics", "synth", "-o", data, "--particles", str(args.particles),
                        "--sites", "150", "300", "--seed", "0"], check=True, capture_output=True)
        steps = {name: (lambda python, body=body: _run(python, data, body)) for name, body in STEPS.items()}
        steps["command-line start-up (info)"] = lambda python: _startup(python, data)
        print(f"{'step':40s} {'before [s]':>11s} {'after [s]':>10s} {'after/before':>13s}  same numbers")
        for name, step in steps.items():
            if args.only not in name:
                continue
            times = {"before": [], "after": []}
            values = {}
            for _ in range(args.rounds):
                for which in ("before", "after"):
                    outcome = step(getattr(args, which))
                    times[which].append(outcome["seconds"])
                    values[which] = outcome["value"]
            before, after = statistics.median(times["before"]), statistics.median(times["after"])
            same = "yes" if values["before"] == values["after"] else f"no ({values['before']!r} vs {values['after']!r})"
            print(f"{name:40s} {before:11.3f} {after:10.3f} {after / before:13.3f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
