"""HDF5 movie files (MODEL.md section 9)."""
from __future__ import annotations

import os
from typing import List, Optional

import h5py
import numpy as np

from .movie import Movie


def _read(group: h5py.Group, name: str, path: str, required: bool = True) -> Optional[np.ndarray]:
    if name not in group:
        if required:
            raise ValueError(f"{path}: dataset {group.name}/{name} is missing")
        return None
    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{path}: {obj.name} must be a dataset, found a group")
    return obj[()]


def load_movies(path: "str | os.PathLike", group: str = "/") -> List[Movie]:
    """Read every particle under ``<group>/particles`` of an HDF5 movie file.

    Raises ValueError naming the file and the dataset for anything that is missing or malformed.
    """
    path = os.fspath(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        if group not in f:
            raise ValueError(f"{path}: group {group} not found")
        root = f[group]
        if "particles" not in root or not isinstance(root["particles"], h5py.Group):
            raise ValueError(f"{path}: group {root.name.rstrip('/')}/particles is missing")
        movies = []
        for name, g in root["particles"].items():
            if not isinstance(g, h5py.Group):
                raise ValueError(f"{path}: {g.name} must be a group of datasets")
            driving = g.attrs.get("driving", "rate")
            if isinstance(driving, bytes):
                driving = driving.decode()
            try:
                movies.append(Movie(
                    name=name,
                    mask=_read(g, "mask", path),
                    concentration=_read(g, "concentration", path),
                    time=_read(g, "time", path),
                    sigma=_read(g, "sigma", path, required=False),
                    voltage=_read(g, "voltage", path, required=False),
                    carbon_thickness=_read(g, "carbon_thickness", path, required=False),
                    driving=str(driving),
                    pixel_size_nm=g.attrs.get("pixel_size_nm"),
                ))
            except ValueError as exc:
                raise ValueError(f"{path}: {g.name}: {exc}") from None
        if not movies:
            raise ValueError(f"{path}: {root.name.rstrip('/')}/particles holds no particle")
        return movies


def write_movies(path: "str | os.PathLike", movies, truth=None) -> None:
    """Write movies in the layout of MODEL.md section 9, with an optional synthetic ``/truth``.

    The file is written under a temporary name in the same directory and renamed when complete, so an
    interrupted run never leaves a half-written file.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for m in movies:
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
                t = f.create_group("truth")
                for name, value in truth.params.values().items():
                    t.attrs[name] = value
                t.attrs["j0_base"] = truth.params.j0_base
                for name, theta in truth.theta.items():
                    t[f"theta/{name}"] = theta
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
