"""HDF5 access for every wing: reads whose errors name the file and the dataset, trees of arrays and
scalars, and atomic writes (a temporary name in the target's folder, renamed over it when complete, so
an interrupted run never leaves a half-written file)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import h5py
import numpy as np


def open_file(path: "str | os.PathLike") -> h5py.File:
    """Open an HDF5 file for reading; anything but a missing file becomes a ValueError naming it."""
    path = os.fspath(path)
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None


def read_dataset(group: h5py.Group, name: str, path: str, required: bool = True) -> Optional[np.ndarray]:
    """The dataset ``group/name`` as an array; a missing one is None unless ``required`` (then an error
    naming the file and the dataset path)."""
    if name not in group:
        if required:
            raise ValueError(f"{path}: dataset {group.name}/{name} is missing")
        return None
    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{path}: {obj.name} must be a dataset, found a group")
    return obj[()]


def read_members(parent: h5py.Group, path: str, build: Callable[[str, h5py.Group], Any], label: str) -> list:
    """``build(name, group)`` for every member of ``parent``, each of which must be a group. The objects name
    the field first ("<label> 'name': time must ..."); such an error becomes one naming the file and the
    dataset path, and so does non-numeric data."""
    out = []
    for name, g in parent.items():
        if not isinstance(g, h5py.Group):
            raise ValueError(f"{path}: {g.name} must be a group of datasets")
        try:
            out.append(build(name, g))
        except ValueError as exc:
            what = str(exc).removeprefix(f"{label} {name!r}: ")
            raise ValueError(f"{path}: {g.name}/{what}") from None
        except TypeError as exc:
            raise ValueError(f"{path}: {g.name}: datasets must be numeric ({exc})") from None
    return out


def text(value) -> str:
    """An HDF5 string (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def attr_str(group: h5py.Group, name: str, default: str) -> str:
    """A string attribute, or ``default`` when absent."""
    return text(group.attrs.get(name, default))


def strings(values) -> List[str]:
    """An HDF5 string array (or one string) as a list; empty entries (placeholders of empty lists) dropped."""
    return [text(v) for v in np.atleast_1d(values) if v]


def string_array(values: Sequence[str]) -> np.ndarray:
    """An HDF5 string array; an empty list is stored as one empty placeholder (:func:`strings` drops it)."""
    return np.array(list(values) or [""], dtype=h5py.string_dtype())


def replace_dataset(group: h5py.Group, name: str, data, **options) -> None:
    """Create ``group/name``, replacing what stood there."""
    if name in group:
        del group[name]
    group.create_dataset(name, data=data, **options)


def _scalar(value):
    """An attribute's value: a NumPy scalar as a Python one, bytes decoded, arrays as they are."""
    if isinstance(value, bytes):
        return text(value)
    return value.item() if isinstance(value, np.generic) else value


def attributes(obj: "h5py.Group | h5py.Dataset") -> Dict[str, Any]:
    """All attributes, scalars as Python scalars, strings decoded."""
    return {k: _scalar(v) for k, v in obj.attrs.items()}


# -- trees ------------------------------------------------------------------------------------------------
def write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """A nested mapping into ``group``: mappings become groups, arrays and lists datasets (lists of
    strings string datasets), scalars and strings attributes."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            write_tree(group.require_group(key), value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            replace_dataset(group, key, string_array(value))
        elif isinstance(value, (np.ndarray, list, tuple)):
            replace_dataset(group, key, np.asarray(value))
        else:
            group.attrs[key] = value


def read_tree(group: h5py.Group) -> Dict[str, Any]:
    """The nested mapping :func:`write_tree` wrote: groups as dicts, datasets as arrays (string datasets as
    lists of str), attributes as Python scalars."""
    out: Dict[str, Any] = attributes(group)
    for key, obj in group.items():
        if isinstance(obj, h5py.Group):
            out[key] = read_tree(obj)
        elif h5py.check_string_dtype(obj.dtype) is not None:
            out[key] = [text(v) for v in np.atleast_1d(obj[()])]
        else:
            out[key] = obj[()]
    return out


# -- atomic writes ------------------------------------------------------------------------------------------
@contextmanager
def atomic_file(path: "str | os.PathLike", update: bool = False):
    """A temporary name in the same directory as ``path`` (with a copy of ``path`` when ``update``) that
    is renamed to ``path`` when the block completes, so an interrupted run never leaves a half-written file."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if update:
            shutil.copyfile(path, tmp)
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_h5(path: "str | os.PathLike", update: bool = False):
    """An HDF5 file written (or, with ``update``, changed in a copy) under a temporary name and renamed to
    ``path`` when the block completes (:func:`atomic_file`)."""
    with atomic_file(path, update) as tmp, h5py.File(tmp, "r+" if update else "w") as f:
        yield f
