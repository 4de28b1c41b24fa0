"""Sweeps: a grid or list of fits (or of solver evaluations) run as tasks, over MPI ranks when there are any.

A sweep file (TOML)::

    data = "movies.h5"          # relative to the sweep file
    task = "fit"                # or "evaluate": loss and gradient at one point, per solver variant
    output = "sweep.h5"         # default: the sweep file's name with .h5
    reference = "bdf2-fine"     # evaluate: the run the others' loss and gradient are compared with
                                # (default: the first run)

    [base]                      # what every run starts from: the tables of a fit config
    fit = { max_iter = 40 }

    [grid]                      # every combination of these values (a Cartesian product) ...
    "fit.lam_s" = [0.5, 2.0, 8.0]
    "model.j0_base" = ["one", "sqrt"]

    [[runs]]                    # ... and/or runs listed one by one
    name = "bdf2-fine"
    "solver.scheme" = "bdf2"
    "solver.n_sub" = 80

A run's settings are dotted keys: ``model.<parameter>``, ``fit.<option>``, ``solver.<option>`` (the tables
of a fit config), ``model.b_order`` (ln j0 Legendre order: b1..b_order free), and for the data
``data.particles`` (a list of names, or N for the first N), ``data.noise`` (Gaussian noise of this sd
added to the observations, seed ``data.seed``; the fit's sigma grows to match unless ``fit.sigma`` is set)
and ``data.file``.

Tasks go to the ranks of an ``mpiexec`` launch with dynamic load balancing (mpi4py.futures: rank 0 hands
out runs and stores results, the others compute), or one after another without MPI. Each finished run is
written into the sweep results file at once (by rank 0, in a copy renamed over it); a failing run is
stored with its error and the others go on; ``resume`` skips the runs already stored.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import h5py
import numpy as np

from ..floor.hdf5 import atomic_file, atomic_h5, attributes
from ..floor.parallel import agree, on_root, processes, rank_of, size_of
from ..floor.progress import progress as progress_bar
from ..floor.toml import read_toml
from .comparison import model_config
from .config import FitConfig
from .files import load_movies, load_truth
from .fit import fit
from .params import Params
from .results import as_estimate
from .truth import parameter_error, theta_correlation, true_value

logger = logging.getLogger(__name__)

TASKS = ("fit", "evaluate")
_DATA_KEYS = ("particles", "noise", "seed", "file")
_SWEEP_KEYS = {"data", "task", "output", "reference", "point", "repeat", "base", "grid", "runs"}


@dataclass
class Task:
    """One run of a sweep: everything a worker needs (picklable)."""

    name: str
    kind: str                          #: "fit" or "evaluate"
    data: str                          #: the movie file (absolute path)
    settings: Dict[str, Any]           #: the run's own dotted keys
    config: Dict[str, Any]             #: the fit config tables with the settings applied
    point: Optional[str] = None        #: evaluate: a results file giving the point (default: the config's)
    repeat: int = 3                    #: evaluate: timed evaluations (the median is reported)

    @property
    def spec(self) -> str:
        """What identifies the run's outcome: kind, data, configuration and data options."""
        return json.dumps(dict(kind=self.kind, data=self.data, config=self.config, point=self.point,
                               data_options={k: v for k, v in self.settings.items() if k.startswith("data.")}),
                          sort_keys=True, default=str)


@dataclass
class Sweep:
    path: str
    kind: str
    output: str
    tasks: List[Task]
    reference: Optional[str] = None    #: evaluate: the run the others are compared with
    varied: List[str] = field(default_factory=list)  #: the dotted keys that differ between runs


def _flatten(table: Mapping, prefix: str = "") -> Dict[str, Any]:
    """{"fit": {"lam_s": 1}} and {"fit.lam_s": 1} both become {"fit.lam_s": 1}."""
    out: Dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_key(key: str, where: str) -> None:
    section, _, name = key.partition(".")
    known = {"model": {f.name for f in dataclasses.fields(Params)} | {"b_order"},
             "fit": {f.name for f in dataclasses.fields(FitConfig)} - {"initial"},
             "data": set(_DATA_KEYS)}
    known["solver"] = known["fit"]
    if section not in known or name not in known[section]:
        hint = sorted(known[section]) if section in known else ["model.*", "fit.*", "solver.*", "data.*"]
        raise ValueError(f"{where}: unknown setting {key!r}; expected one of {hint}")


def _short_names(keys: Sequence[str]) -> Dict[str, str]:
    """The last part of each dotted key, or the whole key where two would share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _label(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)
    return text.replace("/", "|")  # HDF5 group names cannot hold a path separator


def _check_data_options(settings: Mapping[str, Any], where: str) -> None:
    particles = settings.get("data.particles")
    if particles is not None and not (
            (isinstance(particles, int) and not isinstance(particles, bool) and particles > 0)
            or (isinstance(particles, list) and particles and all(isinstance(n, str) for n in particles))):
        raise ValueError(f"{where}: data.particles must be a number N > 0 (the first N particles) or a list of "
                         f"particle names, got {particles!r}")
    noise = settings.get("data.noise")
    if noise is not None and (isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0):
        raise ValueError(f"{where}: data.noise must be a number >= 0 (a standard deviation), got {noise!r}")
    seed = settings.get("data.seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{where}: data.seed must be an integer, got {seed!r}")
    file = settings.get("data.file")
    if file is not None and not isinstance(file, str):
        raise ValueError(f"{where}: data.file must be a path, got {file!r}")


def _check_name(name: str, where: str) -> None:
    if not name or name in (".", "..") or "/" in name or any(ord(ch) < 32 for ch in name):
        raise ValueError(f"{where}: run name {name!r} is not usable (it must be non-empty, not '.' or '..', "
                         "and hold no '/' or control characters)")


def _config_tables(base: Mapping[str, Any], settings: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """The fit config tables of a run: the base tables with its settings applied, validated."""
    flat = {**_flatten(base), **{k: v for k, v in settings.items() if not k.startswith("data.")}}
    order = flat.pop("model.b_order", None)
    if "data.noise" in settings and "fit.sigma" not in flat and "solver.sigma" not in flat:
        sigma = flat.get("fit.sigma", FitConfig().sigma)
        flat["fit.sigma"] = float(np.hypot(sigma, float(settings["data.noise"])))
    tables: Dict[str, Dict[str, Any]] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        tables.setdefault(section, {})[name] = value
    config = FitConfig.from_dict(tables, where=where)
    if order is not None:
        if not isinstance(order, int) or order < 0:
            raise ValueError(f"{where}: model.b_order must be an integer >= 0, got {order!r}")
        config = model_config(config, config.initial.j0_base, order)
    return config.to_dict()


def load_sweep(path: "str | os.PathLike", output: Optional[str] = None) -> Sweep:
    """Read and check a sweep file; every run's configuration is validated here, before anything runs."""
    path = os.fspath(path)
    doc = read_toml(path)
    unknown = set(doc) - _SWEEP_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected {sorted(_SWEEP_KEYS)}")
    here = os.path.dirname(os.path.abspath(path))

    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(here, p)

    if "data" not in doc:
        raise ValueError(f"{path}: 'data' (the movie file) is missing")
    kind = doc.get("task", "fit")
    if kind not in TASKS:
        raise ValueError(f"{path}: task must be one of {TASKS}, got {kind!r}")
    base = doc.get("base", {})
    if not isinstance(base, Mapping):
        raise ValueError(f"{path}: [base] must be a table")

    rows: List[tuple] = []  # (name or None, settings)
    grid = _flatten(doc.get("grid", {}))
    for key, values in grid.items():
        _check_key(key, f"{path} [grid]")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path} [grid]: {key} must be a non-empty list of values")
    if grid:
        short = _short_names(list(grid))
        for combo in itertools.product(*grid.values()):
            settings = dict(zip(grid, combo))
            rows.append((",".join(f"{short[k]}={_label(v)}" for k, v in settings.items()), settings))
    listed = doc.get("runs", [])
    if not isinstance(listed, list):
        raise ValueError(f"{path}: runs must be an array of tables ([[runs]])")
    for i, run in enumerate(listed):
        settings = _flatten({k: v for k, v in run.items() if k != "name"})
        for key in settings:
            _check_key(key, f"{path} runs[{i}]")
        rows.append((str(run.get("name", f"run-{i + 1}")), settings))
    if not rows:
        rows.append(("base", {}))

    names = [n for n, _ in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: run names must be unique, repeated: {duplicates}")
    for name in names:
        _check_name(name, path)
    for key in ("data", "output", "point", "reference"):
        if key in doc and not isinstance(doc[key], str):
            raise ValueError(f"{path}: {key} must be a string, got {doc[key]!r}")
    repeat = doc.get("repeat", 3)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"{path}: repeat must be an integer >= 1, got {repeat!r}")
    point = resolve(doc["point"]) if "point" in doc else None
    if point is not None and not os.path.exists(point):
        raise ValueError(f"{path}: point file {point} does not exist")
    tasks = []
    for name, settings in rows:
        where = f"{path} run {name!r}"
        _check_data_options(settings, where)
        config = _config_tables(base, settings, where)
        data = resolve(str(settings.get("data.file", doc["data"])))
        if not os.path.exists(data):
            raise ValueError(f"{where}: data file {data} does not exist")
        tasks.append(Task(name, kind, data, settings, config, point, repeat))
    reference = doc.get("reference", names[0] if kind == "evaluate" else None)
    if reference is not None and reference not in names:
        raise ValueError(f"{path}: reference {reference!r} is not a run; runs: {names}")
    varied = list(dict.fromkeys(k for _, s in rows for k in s))
    if output is None:
        output = resolve(doc["output"]) if "output" in doc else os.path.splitext(path)[0] + ".h5"
    return Sweep(path, kind, os.fspath(output), tasks, reference, varied)


# -- one run -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _movies(path: str, mtime: float):
    return load_movies(path)


def _task_movies(task: Task):
    """The run's movies: its particles, with its extra noise."""
    movies = list(_movies(task.data, os.path.getmtime(task.data)))
    wanted = task.settings.get("data.particles")
    if wanted is not None:
        if isinstance(wanted, int):
            if not 0 < wanted <= len(movies):
                raise ValueError(f"data.particles = {wanted}, but {task.data} has {len(movies)} particles")
            movies = movies[:wanted]
        else:
            by_name = {m.name: m for m in movies}
            missing = [n for n in wanted if n not in by_name]
            if missing:
                raise ValueError(f"data.particles names {missing} not in {task.data}; it has {sorted(by_name)}")
            movies = [by_name[n] for n in wanted]
    noise = float(task.settings.get("data.noise", 0.0))
    if noise > 0:
        rng = np.random.default_rng(int(task.settings.get("data.seed", 0)))
        movies = [dataclasses.replace(m, concentration=m.concentration + noise * rng.standard_normal(m.shape))
                  for m in movies]
    return movies


def _fit_record(task: Task, movies) -> Dict[str, Any]:
    config = FitConfig.from_dict(task.config, where=f"run {task.name!r}")
    result = fit(movies, config, progress=False)
    values = result.params.values()
    record: Dict[str, Any] = dict(
        loss=result.loss, misfit=result.misfit, reduced_chi2=result.reduced_chi2, n_iter=result.n_iter,
        n_fev=result.n_fev, n_hessp=result.n_hessp, converged=bool(result.success), message=result.message,
        params=json.dumps(values), theta=dict(result.theta))
    for name in config.free:
        record[f"fit.{name}"] = values[name]
    truth = load_truth(task.data)
    if truth is not None:
        true_params, true_theta = truth
        masks = {m.name: m.mask for m in movies if m.name in true_theta}
        if masks:
            record["theta_corr"] = theta_correlation(result.theta, true_theta, masks, remove_mean=True)
        for name in config.free:
            record[f"error.{name}"] = parameter_error(values[name], true_value(true_params, name))[0]
    return record


def _evaluate_record(task: Task, movies) -> Dict[str, Any]:
    """Loss and gradient of one solver variant at the point: time, Newton iterations, and the adjoint
    gradient checked against a central difference of the same variant's loss."""
    config = FitConfig.from_dict(task.config, where=f"run {task.name!r}")
    problem = config.problem(movies, newton_budget=0.0)  # no work limit: every variant runs to the end
    params, theta, c0 = config.initial, None, None
    if task.point is not None:
        point = as_estimate(task.point)
        point.covers(movies, where=task.point)  # its particles; the run may have picked some or added noise
        params = point.params
        theta = {m.name: point.theta[m.name] for m in movies}
        c0 = {m.name: point.c0[m.name] for m in movies}
    thetas = problem.theta_vectors(theta)
    c0s = problem.c0_vectors(c0) if c0 is not None else problem.initial_states()
    times, e = [], None
    for _ in range(max(task.repeat, 1)):
        t = time.perf_counter()
        e = problem.evaluate(params, thetas, c0s)
        times.append(time.perf_counter() - t)

    # The adjoint directional derivative against a central difference, along the free globals (relative
    # steps) and theta at once.
    rng = np.random.default_rng(0)
    names, values = params.names(), params.values()
    d_globals = np.array([0.1 * rng.standard_normal() * (abs(values[n]) or 1.0) if n in config.free else 0.0
                          for n in names])
    d_theta = [0.1 * rng.standard_normal(t.size) for t in thetas]
    slope = float(e.grad_globals @ d_globals + sum(g @ d for g, d in zip(e.grad_theta, d_theta)))
    eps = 1e-4

    def loss_at(s: float) -> float:
        p = params.replace(**{n: values[n] + s * d for n, d in zip(names, d_globals)})
        return problem.evaluate(p, [t + s * d for t, d in zip(thetas, d_theta)], c0s).loss

    fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    return dict(loss=e.loss, misfit=e.misfit, time=float(np.median(times)), time_min=float(np.min(times)),
                n_newton=e.stats["n_newton"], n_steps=e.stats["n_steps"],
                n_factorizations=e.stats["n_factorizations"], adjoint_error=abs(fd - slope) / max(abs(slope), 1e-300),
                grad=np.concatenate([e.grad_globals] + list(e.grad_theta)))


def execute(task: Task) -> Dict[str, Any]:
    """Run one task; never raises: a failure is a record with status "failed" and the error."""
    record: Dict[str, Any] = dict(name=task.name, kind=task.kind, spec=task.spec, host=socket.gethostname(),
                                  pid=os.getpid(), started=time.time())
    t = time.perf_counter()
    try:
        movies = _task_movies(task)
        record.update(_fit_record(task, movies) if task.kind == "fit" else _evaluate_record(task, movies))
        record["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 (recorded; the sweep goes on)
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    record["wall_time"] = time.perf_counter() - t
    record["finished"] = time.time()
    return record


# -- the results file ----------------------------------------------------------------------------------
def _store(path: str, sweep: Sweep, record: Mapping[str, Any]) -> None:
    """Add one run to the sweep results file, in a copy renamed over it. The file is the sweep's checkpoint:
    each run is stored as it finishes, with the ``spec`` that identifies its outcome, and a resumed sweep
    skips the runs stored with the same spec."""
    fresh = not os.path.exists(path)
    with atomic_h5(path, update=not fresh) as f:
        if fresh:
            f.attrs["sweep"] = os.path.abspath(sweep.path)
            f.attrs["task"] = sweep.kind
            f.attrs["varied"] = json.dumps(sweep.varied)
            if sweep.reference is not None:
                f.attrs["reference"] = sweep.reference
        runs = f.require_group("runs")
        if record["name"] in runs:
            del runs[record["name"]]
        g = runs.create_group(record["name"])
        for key, value in record.items():
            if key == "theta":
                for particle, t in value.items():
                    g.create_dataset(f"theta/{particle}", data=t, compression="gzip")
            elif isinstance(value, np.ndarray):
                g.create_dataset(key, data=value)
            else:
                g.attrs[key] = int(value) if isinstance(value, (bool, np.bool_)) else value


def read_runs(path: "str | os.PathLike") -> Dict[str, Dict[str, Any]]:
    """{run name: its stored scalars (and ``grad`` for evaluate runs)} of a sweep results file."""
    path = os.fspath(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable sweep results file ({exc})") from None
    with f:
        runs = f["runs"].items() if "runs" in f else []
        return {name: {**attributes(g), **({"grad": g["grad"][()]} if "grad" in g else {})} for name, g in runs}


# -- running -------------------------------------------------------------------------------------------
@dataclass
class SweepOutcome:
    records: Dict[str, Dict[str, Any]]  #: every stored run, by name
    ran: List[str]                      #: the runs this call ran
    skipped: List[str]                  #: the runs found stored and not run again
    rows: List[Dict[str, Any]] = field(default_factory=list)  #: the summary table (:func:`summary_rows`)
    output: Optional[str] = None        #: the sweep results file
    csv: Optional[str] = None           #: where the summary table was written

    @property
    def n_failed(self) -> int:
        return sum(r["status"] != "ok" for r in self.rows)

    def table(self) -> List[str]:
        """The summary table as aligned text lines (:func:`format_table`)."""
        return format_table(self.rows)


def _plan(sweep: Sweep, resume: bool, retry_failed: bool):
    """(the tasks to run, the names of the stored runs to skip), from the results file."""
    if os.path.exists(sweep.output) and not resume:
        raise ValueError(f"{sweep.output} exists: pass --resume to continue that sweep, or remove it")
    stored = read_runs(sweep.output) if os.path.exists(sweep.output) else {}
    todo, skipped = [], []
    for task in sweep.tasks:
        done = stored.get(task.name)
        if done is None or (retry_failed and done.get("status") != "ok"):
            todo.append(task)
            continue
        if done.get("spec") != task.spec:
            raise ValueError(f"{sweep.output}: run {task.name!r} is stored with other settings than "
                             f"{sweep.path} gives it now; write to a new output file")
        skipped.append(task.name)
    return todo, skipped


def run_sweep(sweep: Sweep, *, resume: bool = False, retry_failed: bool = False, comm=None,
              progress: bool = True) -> SweepOutcome:
    """Run the sweep's tasks, each stored as it finishes; under MPI (``comm`` of size > 1) rank 0 hands
    out tasks to the other ranks through mpi4py.futures and returns the outcome, the other ranks return
    None. ``resume`` skips runs already stored with the same settings (failed ones too, unless
    ``retry_failed``)."""
    root = rank_of(comm) == 0
    todo, skipped = on_root(comm, lambda: _plan(sweep, resume, retry_failed))
    bar = progress_bar(len(todo), "sweep", "run", show=root and progress)
    failed = 0

    def finished(record):
        nonlocal failed
        _store(sweep.output, sweep, record)
        failed += record["status"] != "ok"
        bar.update(1)
        bar.set_postfix(last=record["name"], failed=failed, refresh=False)

    try:
        if size_of(comm) > 1:
            from mpi4py.futures import MPICommExecutor, as_completed

            with MPICommExecutor(comm, root=0) as executor:
                if executor is not None:
                    futures = {executor.submit(execute, task): task for task in todo}
                    try:
                        for future in as_completed(futures):
                            try:
                                record = future.result()
                            except Exception as exc:  # noqa: BLE001 (a task that could not be sent or returned)
                                task = futures[future]
                                record = dict(name=task.name, kind=task.kind, spec=task.spec, status="failed",
                                              error=f"{type(exc).__name__}: {exc}", wall_time=0.0)
                            finished(record)
                    except BaseException:
                        for future in futures:  # the results can no longer be stored: stop handing out runs
                            future.cancel()
                        raise
        else:
            for task in todo:
                finished(execute(task))
    finally:
        bar.close()
    if not root:
        return None
    records = read_runs(sweep.output)
    return SweepOutcome(records, [t.name for t in todo], skipped,
                        summary_rows(records, sweep.kind, sweep.reference, [t.name for t in sweep.tasks]))


# -- the summary ---------------------------------------------------------------------------------------
def summary_rows(records: Mapping[str, Mapping[str, Any]], kind: str, reference: Optional[str] = None,
                 order: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
    """One dict per run: the columns of the summary table (and CSV). Evaluate runs gain loss_error and
    grad_error, relative to the reference run."""
    names = [n for n in (order or []) if n in records] + sorted(set(records) - set(order or []))
    ref = records.get(reference) if reference else None
    rows = []
    for name in names:
        r = records[name]
        row: Dict[str, Any] = dict(run=name, status=r.get("status", "?"))
        if kind == "fit":
            for key in ("loss", "reduced_chi2", "n_iter", "converged", "theta_corr"):
                row[key] = r.get(key)
            if row["converged"] is not None:
                row["converged"] = "yes" if row["converged"] else "no"
            for prefix in ("fit.", "error."):  # fitted globals, then their errors against a truth
                row.update({k: r[k] for k in sorted(r) if k.startswith(prefix)})
        else:
            for key in ("time", "n_newton", "n_steps", "loss"):
                row[key] = r.get(key)
            ok = ref is not None and ref.get("status") == "ok" and r.get("status") == "ok"
            row["loss_error"] = abs(r["loss"] - ref["loss"]) / abs(ref["loss"]) if ok else None
            row["grad_error"] = (float(np.linalg.norm(r["grad"] - ref["grad"]) / np.linalg.norm(ref["grad"]))
                                 if ok and r["grad"].shape == ref["grad"].shape else None)
            row["adjoint_error"] = r.get("adjoint_error")
        row["wall_time"] = r.get("wall_time")
        row["error"] = r.get("error", "")
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Aligned text lines of the summary rows (errors of failed runs below the table)."""
    if not rows:
        return ["no runs"]
    columns = [c for c in dict.fromkeys(k for r in rows for k in r) if c != "error"]
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines += [f"{r['run']}: {r['error']}" for r in rows if r.get("error")]
    return lines


def write_csv(path: "str | os.PathLike", rows: Sequence[Mapping[str, Any]]) -> None:
    """The summary rows as a CSV table (atomically)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})


# -- the workflow ----------------------------------------------------------------------------------------
def sweep(path: "str | os.PathLike", *, output: "Optional[str | os.PathLike]" = None, resume: bool = False,
          retry_failed: bool = False, csv_path: "Optional[str | os.PathLike]" = None, progress: bool = True,
          comm=None) -> Optional[SweepOutcome]:
    """Run a sweep file (``pixelkinetics sweep``): every run stored in the sweep results file as it finishes
    (``output``, default: the file's own ``output`` or its name with .h5), then the summary table written as
    CSV (``csv_path``, default: the output's name with .csv). Under MPI (``comm`` of size > 1) rank 0 hands
    out the runs and returns the outcome; the other ranks compute and return None."""
    plan = agree(comm, lambda: load_sweep(path, None if output is None else os.fspath(output)))
    workers = processes(comm) if size_of(comm) == 1 else f"{size_of(comm) - 1} worker ranks"
    logger.info(f"{plan.path} -> {plan.output}: {len(plan.tasks)} {plan.kind} runs ({workers})")
    outcome = run_sweep(plan, resume=resume, retry_failed=retry_failed, comm=comm, progress=progress)
    if outcome is None:  # a worker rank
        return None
    outcome.output = plan.output
    outcome.csv = os.fspath(csv_path) if csv_path is not None else os.path.splitext(plan.output)[0] + ".csv"
    write_csv(outcome.csv, outcome.rows)
    return outcome


def sweep_summary(path: "str | os.PathLike", output: "Optional[str | os.PathLike]" = None) -> SweepOutcome:
    """What a sweep has stored so far (``pixelkinetics sweep --summary``), running nothing."""
    plan = load_sweep(path, None if output is None else os.fspath(output))
    records = read_runs(plan.output) if os.path.exists(plan.output) else {}
    return SweepOutcome(records, [], [],
                        summary_rows(records, plan.kind, plan.reference, [t.name for t in plan.tasks]), plan.output)
