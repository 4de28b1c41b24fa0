"""Movie files (MODEL.md section 9): particles under ``/particles/<name>``, populations under
``/populations/<name>``, and the ground truth of synthetic data under ``/truth``.

Every error names the file and the dataset; files are written atomically
(:func:`pixelkinetics.floor.hdf5.atomic_h5`).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from ..floor.hdf5 import atomic_h5, attr_str, attributes, open_file, read_dataset, read_members
from ..floor.parallel import agree
from .movie import Movie
from .params import Params

#: The ground truth of synthetic data: the parameters and the theta maps {name: (H, W)}.
Truth = Tuple[Params, Dict[str, np.ndarray]]


def load_movies(path: "str | os.PathLike", group: str = "/") -> List[Movie]:
    """Read every particle under ``<group>/particles`` of an HDF5 movie file, and every population under
    ``/populations`` as a movie of its kind.

    Raises ValueError naming the file and the dataset for anything that is missing or malformed.
    """
    path = os.fspath(path)
    with open_file(path) as f:
        if group not in f:
            raise ValueError(f"{path}: group {group} not found")
        root = f[group]
        populations = _read_populations(f, path) if group == "/" and "populations" in f else []
        if "particles" not in root or not isinstance(root["particles"], h5py.Group):
            if populations:
                return populations
            raise ValueError(f"{path}: group {root.name.rstrip('/')}/particles is missing")
        movies = read_members(root["particles"], path, lambda name, g: Movie(
            name=name,
            mask=read_dataset(g, "mask", path),
            concentration=read_dataset(g, "concentration", path),
            time=read_dataset(g, "time", path),
            sigma=read_dataset(g, "sigma", path, required=False),
            voltage=read_dataset(g, "voltage", path, required=False),
            carbon_thickness=read_dataset(g, "carbon_thickness", path, required=False),
            driving=attr_str(g, "driving", "rate"),
            pixel_size_nm=g.attrs.get("pixel_size_nm"),
        ), "movie")
        if not movies:
            raise ValueError(f"{path}: {root.name.rstrip('/')}/particles holds no particle")
    names = [m.name for m in movies + populations]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{path}: {twice} name both a particle and a population")
    return movies + populations


def load_populations(path: "str | os.PathLike") -> List[Movie]:
    """Every population under ``/populations`` of an HDF5 file; errors name the file and the dataset."""
    path = os.fspath(path)
    with open_file(path) as f:
        return _read_populations(f, path)


def _read_populations(f: h5py.File, path: str) -> List[Movie]:
    if "populations" not in f or not isinstance(f["populations"], h5py.Group):
        raise ValueError(f"{path}: group /populations is missing")
    out = read_members(f["populations"], path, lambda name, g: Movie.population(
        name, fraction=read_dataset(g, "fraction", path), time=read_dataset(g, "time", path),
        size=read_dataset(g, "size", path, required=False), current=read_dataset(g, "current", path, required=False),
        voltage=read_dataset(g, "voltage", path, required=False), kind=attr_str(g, "kind", "tracked")),
        "population")
    if not out:
        raise ValueError(f"{path}: /populations holds no population")
    return out


def read_data(data, comm=None) -> Tuple[List[Movie], Optional[str]]:
    """(movies, path) of a workflow's data: a list of movies (path None) or the path of a movie file, read
    on every rank of ``comm`` (which fail together)."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        return agree(comm, lambda: load_movies(path)), path
    movies = [data] if isinstance(data, Movie) else list(data)
    if not movies or not all(isinstance(m, Movie) for m in movies):
        raise ValueError("data must be the path of a movie file or a non-empty list of Movie objects")
    return movies, None


def write_movies(path: "str | os.PathLike", movies: Sequence[Movie], truth=None, extra=None) -> None:
    """Write movies in the layout of MODEL.md section 9 (particles and populations by their kind), with an
    optional synthetic ``/truth``, atomically; ``extra(file)`` adds more groups before the rename."""
    with atomic_h5(path) as f:
        for m in movies:
            if m.is_population:
                _write_population(f, m)
                continue
            g = f.create_group(f"particles/{m.name}")
            g.create_dataset("concentration", data=m.concentration, compression="gzip")
            g["mask"] = m.mask.astype(np.uint8)
            g["time"] = m.time
            g.attrs["driving"] = m.driving
            for name in ("sigma", "voltage", "carbon_thickness"):
                value = getattr(m, name)
                if value is not None:
                    g[name] = value
            if m.pixel_size_nm is not None:
                g.attrs["pixel_size_nm"] = m.pixel_size_nm
        if truth is not None:
            write_truth(f, truth)
        if extra is not None:
            extra(f)


def _write_population(f: h5py.File, m: Movie) -> None:
    g = f.create_group(f"populations/{m.name}")
    g["fraction"] = m.fraction
    g["time"] = m.time
    g.attrs["kind"] = m.kind
    for name, value in (("size", m.size), ("current", m.current),
                        ("voltage", m.voltage if m.driving == "potential" else None)):
        if value is not None:
            g[name] = value


# -- parameters and the ground truth -----------------------------------------------------------------------
def write_params(group: h5py.Group, params: Params) -> None:
    """Every raw global as an attribute, and ``j0_base``."""
    for name, value in params.values().items():
        group.attrs[name] = value
    group.attrs["j0_base"] = params.j0_base


def read_params(group: h5py.Group, where: str) -> Params:
    """The parameters :func:`write_params` wrote."""
    attrs = attributes(group)
    return Params.from_values(attrs, j0_base=str(attrs.get("j0_base", "sqrt")), where=where)


def write_truth(f: h5py.File, truth) -> None:
    """``truth``: a SyntheticTruth or a (Params, {name: theta map}) pair as :func:`load_truth` returns."""
    params, thetas = (truth.params, truth.theta) if hasattr(truth, "params") else truth
    t = f.create_group("truth")
    write_params(t, params)
    for name, theta in thetas.items():
        t[f"theta/{name}"] = theta


def load_truth(path: "str | os.PathLike") -> Optional[Truth]:
    """The ``/truth`` of a synthetic movie file as (Params, {name: theta map}), or None without one."""
    path = os.fspath(path)
    with open_file(path) as f:
        return read_truth(f, path)


def read_truth(f: h5py.File, path: str) -> Optional[Truth]:
    if "truth" not in f:
        return None
    t = f["truth"]
    theta = {name: d[()] for name, d in t["theta"].items()} if "theta" in t else {}
    return read_params(t, f"{path}: /truth"), theta
