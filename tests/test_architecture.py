"""The package's architecture, read from its source (docs/architecture.md).

Modules form a directed acyclic graph of imports; the floor imports no wing, the wings import only the
floor and kinetics' data types (spectra makes kinetics' movies), and nothing below the command line imports
it; functions import only optional dependencies (mpi4py, matplotlib) locally. Every module imports on its
own in a fresh interpreter. The command line holds no workflow logic: its commands import the package's
workflows and argument types, and prints what the workflows' objects say of themselves.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import pixelkinetics

PACKAGE = Path(pixelkinetics.__file__).resolve().parent
#: Packages that may be imported inside a function: the optional ones, and the costly one a script may not need.
LOCAL_IMPORTS = ("mpi4py", "matplotlib")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str):
    """(imported pixelkinetics module, line, inside a function) of every import statement of a module."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    local = {id(node) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = (package.rsplit(".", node.level - 1)[0] if node.level > 1 else package) if node.level else ""
            if node.module is None:  # from . import submodule
                for alias in node.names:
                    yield f"{base}.{alias.name}", node.lineno, id(node) in local
            else:
                yield f"{base}.{node.module}" if base else node.module, node.lineno, id(node) in local
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in local


def _internal(target: str):
    """The package module an import names (a module of ours, or the package holding the name imported)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _graph():
    return {name: {_internal(t) for t, _, _ in _imports(name)} - {None, name} for name in MODULES}


def test_the_imports_of_the_package_have_no_cycle():
    try:
        order = list(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert set(order) == set(MODULES)


@pytest.mark.parametrize("layer, forbidden", [
    ("pixelkinetics.floor", ("kinetics", "spectra", "mechanics", "cli", "workflows")),
    ("pixelkinetics.kinetics", ("spectra", "mechanics", "cli", "workflows")),
    ("pixelkinetics.mechanics", ("kinetics", "spectra", "cli", "workflows")),
    ("pixelkinetics.spectra", ("mechanics", "cli", "workflows")),
    ("pixelkinetics.workflows", ("cli",)),
], ids=["floor", "kinetics", "mechanics", "spectra", "workflows"])
def test_each_layer_imports_only_what_lies_below_it(layer, forbidden):
    found = [(name, target) for name, targets in _graph().items() if name.startswith(layer)
             for target in targets if any(target.startswith(f"pixelkinetics.{f}") for f in forbidden)]
    assert not found, f"{layer} imports above itself: {found}"


def test_spectra_takes_from_kinetics_its_data_types_alone():
    """The spectral step makes kinetics' movies and writes their file; it runs none of kinetics' solver."""
    taken = {target for name, targets in _graph().items() if name.startswith("pixelkinetics.spectra")
             for target in targets if target.startswith("pixelkinetics.kinetics")}
    assert taken <= {"pixelkinetics.kinetics.movie", "pixelkinetics.kinetics.files"}, taken


def test_functions_import_only_optional_dependencies():
    local = [(name, line, target) for name in MODULES for target, line, inside in _imports(name)
             if inside and not target.startswith(LOCAL_IMPORTS)]
    assert not local, f"imports inside functions: {local}"


def test_the_commands_hold_no_workflow_logic():
    """cli/commands.py reaches the package through its top-level workflows and the argument types; the
    command line's other modules import nothing of the wings."""
    allowed = {"pixelkinetics", "pixelkinetics.cli.arguments"}
    for name in MODULES:
        if name.startswith("pixelkinetics.cli"):
            inside = {t for t, _, _ in _imports(name) if t.startswith("pixelkinetics")}
            wings = {t for t in inside if t.startswith(("pixelkinetics.kinetics", "pixelkinetics.spectra",
                                                        "pixelkinetics.mechanics", "pixelkinetics.workflows"))}
            if name == "pixelkinetics.cli.commands":
                assert inside <= allowed, inside - allowed
            else:
                assert not wings, (name, wings)
    tree = ast.parse(MODULES["pixelkinetics.cli.commands"].read_text())
    sizes = {f.name: f.end_lineno - f.lineno + 1 for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert max(sizes.values()) <= 15, sizes  # each command's body is a few lines


def _import_alone(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120)


def test_every_module_imports_on_its_own():
    """Each module first in a fresh interpreter: an import cycle or an import-order dependency fails here
    (``__main__`` runs the command line when imported, so it is left out)."""
    names = [name for name in MODULES if name != "pixelkinetics.__main__"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(names, pool.map(_import_alone, names)))
    failed = {name: run.stderr.strip().splitlines()[-1] for name, run in runs.items() if run.returncode}
    assert not failed, failed


def test_importing_the_package_loads_no_wing():
    """The workflows are attached lazily: `import pixelkinetics` stays light, and every name resolves."""
    code = ("import sys, pixelkinetics as pk\n"
            "loaded = [m for m in sys.modules if m.startswith('pixelkinetics.')]\n"
            "assert loaded == ['pixelkinetics._core'], loaded\n"
            "missing = [n for n in pk.__all__ if not hasattr(pk, n)]\n"
            "assert not missing, missing\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
