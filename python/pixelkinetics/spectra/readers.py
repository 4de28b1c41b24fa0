"""Readers of STXM image stacks, reference spectra and I0 spectra.

Stack formats (one stack per time point of a movie; :func:`read_stacks` picks the reader):

- NeXus NXstxm HDF5 (``.h5``, ``.hdf5``, ``.nxs``): every ``NXentry`` (or top-level ``entry*`` group) holding an
  ``NXdata`` group with ``data`` (energies, rows, columns) counts, ``energy``, ``sample_y`` and ``sample_x``
  (micrometres) is one stack; ``count_time`` (seconds, in the NXdata group or a detector of the instrument)
  is the dwell and ``start_time`` (ISO 8601) of the entry its time.
- SDF (``.hdr`` + ``<stem>_a000.xim``, ``<stem>_a001.xim``, ...) of the ALS, CLS and MAXYMUS microscopes:
  the header gives the energies (``StackAxis``), the sample axes (``PAxis``, ``QAxis``), ``Dwell``
  (milliseconds) and ``Time``; each ``.xim`` is one energy's image as text.
- Plain HDF5 or NumPy ``.npz``: ``counts`` (E, H, W) or (T, E, H, W), ``energy`` (E,), optional ``dwell``
  (seconds, scalar or (E,)), ``time`` (scalar or (T,) seconds), ``dark`` (counts per second) and
  ``pixel_size_nm``, as datasets (keys) or attributes.

Every malformed input raises ``ValueError`` naming the file and the field. :func:`write_stacks` writes the
plain layout.
"""
from __future__ import annotations

import glob
import os
import re
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

import h5py
import numpy as np

from ..floor.hdf5 import atomic_file, atomic_h5, open_file
from ..floor.hdf5 import text as as_text
from .stack import Stack

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5")


def read_stacks(path: "str | os.PathLike") -> List[Stack]:
    """The stacks of one file, in the file's order (NXstxm entries, the T axis of a 4-D plain layout)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".hdr":
        return [read_sdf(path)]
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return _plain_stacks({k: z[k] for k in z.files}, {}, path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc}); stacks are read from NXstxm or plain "
                         f"HDF5 files, .npz archives or SDF .hdr headers") from None
    with f:
        entries = _nxstxm_entries(f)
        if entries:
            return [_read_nxstxm_entry(f[name], path) for name in entries]
        if "counts" in f:
            datasets = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset)}
            return _plain_stacks(datasets, dict(f.attrs), path)
        raise ValueError(f"{path}: neither an NXstxm file (no entry with an NXdata group holding data and "
                         f"energy) nor a plain stack file (no /counts dataset)")


# -- plain layout ---------------------------------------------------------------------------------
def _numbers(value, name: str, where: str, scalar: bool = False):
    """``value`` as float64 (a float with ``scalar``), or a ValueError naming the field."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be numeric, got {np.asarray(value).dtype}") from None
    if scalar:
        if out.size != 1:
            raise ValueError(f"{where}: {name} must be one number, got shape {out.shape}")
        return float(out.reshape(-1)[0])
    return out


def _plain_stacks(fields: Dict[str, np.ndarray], attrs: Dict[str, object], path: str) -> List[Stack]:
    def get(name):
        return fields[name] if name in fields else attrs.get(name)

    if get("counts") is None:
        raise ValueError(f"{path}: counts is missing")
    if get("energy") is None:
        raise ValueError(f"{path}: energy is missing")
    counts = _numbers(get("counts"), "counts", path)
    energy = _numbers(get("energy"), "energy", path)
    if counts.ndim == 3:
        counts = counts[None]
    elif counts.ndim != 4:
        raise ValueError(f"{path}: counts must be (E, H, W) or (T, E, H, W), got shape {counts.shape}")
    T = counts.shape[0]
    time = get("time")
    if time is not None:
        time = np.atleast_1d(_numbers(time, "time", path))
        if time.shape != (T,):
            raise ValueError(f"{path}: time must hold {T} value(s), one per stack, got shape {time.shape}")
    dwell = get("dwell")
    if dwell is not None:
        dwell = _numbers(dwell, "dwell", path)
        if dwell.size not in (1, energy.size):
            raise ValueError(f"{path}: dwell must be a scalar or one value per energy ({energy.size}), got "
                             f"shape {dwell.shape}")
    dark = _numbers(get("dark"), "dark", path, scalar=True) if get("dark") is not None else 0.0
    pixel = get("pixel_size_nm")
    pixel = None if pixel is None else _numbers(pixel, "pixel_size_nm", path, scalar=True)
    return [Stack(counts[t], energy, dwell=dwell, time=None if time is None else time[t], dark=dark,
                  pixel_size_nm=pixel, source=path if T == 1 else f"{path} (stack {t})") for t in range(T)]


# -- NeXus NXstxm ---------------------------------------------------------------------------------
def _attr(obj, name: str) -> Optional[str]:
    value = obj.attrs.get(name)
    return None if value is None else as_text(value)


def _nxstxm_entries(f: h5py.File) -> List[str]:
    names = []
    for name, g in f.items():
        if isinstance(g, h5py.Group) and (_attr(g, "NX_class") == "NXentry" or name.startswith("entry")):
            if _nxdata(g) is not None:
                names.append(name)
    return names


def _nxdata(entry: h5py.Group) -> Optional[h5py.Group]:
    """The entry's NXdata group with the image stack: by NX_class, else the first child with data and energy."""
    candidates = [g for g in entry.values() if isinstance(g, h5py.Group) and "data" in g and "energy" in g]
    tagged = [g for g in candidates if _attr(g, "NX_class") == "NXdata"]
    return (tagged or candidates or [None])[0]


def _read_nxstxm_entry(entry: h5py.Group, path: str) -> Stack:
    where = f"{path}: {entry.name}"
    data = _nxdata(entry)
    for name in ("data", "energy", "sample_y", "sample_x"):
        if name in data and not isinstance(data[name], h5py.Dataset):
            raise ValueError(f"{where}: {data.name}/{name} must be a dataset, found a group")
    d = data["data"]
    if d.ndim != 3:
        kind = _attr(data, "stxm_scan_type") if "stxm_scan_type" not in data else data["stxm_scan_type"][()]
        raise ValueError(f"{where}: {d.name} must be an image stack (energy, sample_y, sample_x), got shape "
                         f"{d.shape} (scan type {kind!r})")
    counts = _numbers(d[()], f"{d.name}", where)
    E, H, W = counts.shape
    for axis, n in (("energy", E), ("sample_y", H), ("sample_x", W)):
        if axis not in data:
            raise ValueError(f"{where}: {data.name}/{axis} is missing")
        if data[axis].shape != (n,):
            raise ValueError(f"{where}: {data.name}/{axis} has shape {data[axis].shape}; data {counts.shape} "
                             f"needs ({n},)")
    x = _numbers(data["sample_x"][()], f"{data.name}/sample_x", where)
    pixel = float(abs(x[1] - x[0]) * 1000.0) if W > 1 else None  # sample axes are in micrometres
    dwell = _nx_count_time(entry, data, E, where)
    time = None
    if "start_time" in entry:
        time = _parse_time(entry["start_time"][()], f"{where}/start_time")
    energy = _numbers(data["energy"][()], f"{data.name}/energy", where)
    return Stack(counts, energy, dwell=dwell, time=time, pixel_size_nm=pixel, source=where)


def _nx_count_time(entry: h5py.Group, data: h5py.Group, E: int, where: str) -> Optional[np.ndarray]:
    places = [data] + [g for g in entry.get("instrument", {}).values() if isinstance(g, h5py.Group)]
    for g in places:
        if "count_time" in g:
            t = _numbers(g["count_time"][()], f"{g.name}/count_time", where).reshape(-1)
            if t.size == 1:
                return np.full(E, t[0])
            if t.size == E:
                return t
            raise ValueError(f"{where}: {g.name}/count_time must hold 1 or {E} values, got {t.size}")
    return None


def _parse_time(value, where: str) -> float:
    """Seconds since the epoch of an ISO 8601 or SDF ("2013 November 21 10:11:12") time stamp; a stamp
    without a zone counts as UTC (so a movie across a daylight-saving change keeps its intervals)."""
    stamp_text = as_text(value)
    for parse in (datetime.fromisoformat, lambda s: datetime.strptime(s, "%Y %B %d %H:%M:%S")):
        try:
            stamp = parse(stamp_text.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    raise ValueError(f"{where}: cannot read the time stamp {stamp_text!r} (expected ISO 8601)")


# -- SDF .hdr + .xim ------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:"([^"]*)"|([{}();=,])|([^\s{}();=,"]+))')


def parse_sdf_header(text: str, where: str = "header") -> Dict[str, object]:
    """The nested ``Key = value;`` structure of an SDF header: braces give dicts, ``(n, a, b, ...)`` lists
    (the leading count checked and dropped), quoted strings stay strings, numbers become floats."""
    tokens: List[Tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"{where}: cannot parse the header near {text[pos:pos + 40]!r}")
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(("str", m.group(1)))
        elif m.group(2) is not None:
            tokens.append(("sym", m.group(2)))
        elif m.group(3) is not None:
            tokens.append(("word", m.group(3)))
    it = iter(tokens + [("end", "")])
    state = {"tok": next(it)}

    def peek():
        return state["tok"]

    def take(kind=None, value=None):
        tok = state["tok"]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise ValueError(f"{where}: expected {value or kind!r} in the header, found {tok[1]!r}")
        state["tok"] = next(it)
        return tok

    def scalar(tok):
        if tok[0] == "word":
            try:
                return float(tok[1])
            except ValueError:
                return tok[1]
        return tok[1]

    def value():
        tok = peek()
        if tok == ("sym", "{"):
            take()
            d = assignments(closing="}")
            take("sym", "}")
            return d
        if tok == ("sym", "("):
            take()
            items = []
            while peek() != ("sym", ")"):
                items.append(value())
                if peek() == ("sym", ","):
                    take()
            take("sym", ")")
            if items and isinstance(items[0], float) and items[0] == len(items) - 1:
                items = items[1:]
            return items
        return scalar(take())

    def assignments(closing=None):
        d: Dict[str, object] = {}
        while peek()[0] != "end" and peek() != ("sym", closing):
            key = take("word")[1]
            take("sym", "=")
            d[key] = value()
            while peek() == ("sym", ";"):
                take()
        return d

    out = assignments()
    if peek()[0] != "end":
        raise ValueError(f"{where}: unexpected {peek()[1]!r} in the header")
    return out


def _axis_points(axis: object, name: str, where: str) -> np.ndarray:
    if not isinstance(axis, dict) or "Points" not in axis:
        raise ValueError(f"{where}: {name} with its Points is missing from the header")
    try:
        return np.asarray(axis["Points"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name}.Points are not numbers") from None


def read_sdf(path: str) -> Stack:
    """An SDF stack: ``<stem>.hdr`` and one ``<stem>_a<NNN>.xim`` text image per energy (channel a)."""
    with open(path, errors="replace") as f:
        header = parse_sdf_header(f.read(), where=path)
    scan = header.get("ScanDefinition")
    if not isinstance(scan, dict):
        raise ValueError(f"{path}: ScanDefinition is missing from the header")
    regions = scan.get("Regions")
    if not isinstance(regions, list) or not regions or not isinstance(regions[0], dict):
        raise ValueError(f"{path}: ScanDefinition.Regions is missing or empty")
    x = _axis_points(regions[0].get("PAxis"), "ScanDefinition.Regions[0].PAxis", path)
    y = _axis_points(regions[0].get("QAxis"), "ScanDefinition.Regions[0].QAxis", path)
    energy = _axis_points(scan.get("StackAxis"), "ScanDefinition.StackAxis", path)
    stem = os.path.splitext(path)[0]
    files = sorted(glob.glob(glob.escape(stem) + "_a[0-9][0-9][0-9].xim"))
    if len(files) != energy.size:
        raise ValueError(f"{path}: the header lists {energy.size} energies but {len(files)} image files "
                         f"{os.path.basename(stem)}_aNNN.xim were found beside it")
    images = []
    for name in files:
        try:
            img = np.loadtxt(name, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"{name}: not a text image of numbers ({exc})") from None
        if img.shape != (y.size, x.size):
            raise ValueError(f"{name}: image is {img.shape[0]}x{img.shape[1]}, the header's axes give "
                             f"{y.size}x{x.size}")
        images.append(img)
    dwell = scan.get("Dwell")
    time = header.get("Time")
    return Stack(np.stack(images), energy,
                 dwell=None if not isinstance(dwell, float) else dwell * 1e-3,  # SDF dwell is in ms
                 time=None if time is None else _parse_time(time, f"{path}: Time"),
                 pixel_size_nm=float(abs(x[1] - x[0]) * 1000.0) if x.size > 1 else None, source=path)


# -- reference and I0 spectra ---------------------------------------------------------------------
def _read_columns(path: str) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """(first column, {name: other column}) of a text table or the 1-D datasets of an HDF5 file."""
    if os.path.splitext(path)[1].lower() in HDF5_SUFFIXES:
        with open_file(path) as f:
            if "energy" not in f:
                raise ValueError(f"{path}: dataset /energy is missing")
            energy = np.asarray(f["energy"][()], dtype=np.float64)
            cols = {k: np.asarray(v[()], dtype=np.float64) for k, v in f.items()
                    if k != "energy" and isinstance(v, h5py.Dataset) and v.shape == energy.shape}
            return energy, cols
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    names = None
    rows = []
    for ln in lines:
        text = ln.lstrip("#").strip()
        parts = [p for p in re.split(r"[,\s;]+", text) if p]
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            if rows:
                raise ValueError(f"{path}: line {ln!r} is not numbers") from None
            names = parts  # a header (or comment) line before the numbers
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 2:
        raise ValueError(f"{path}: expected a table of at least two columns (energy, values...)")
    table = np.asarray(rows)
    n = table.shape[1]
    if names is None or len(names) != n:
        names = ["energy"] + [f"column{k}" for k in range(1, n)]
    return table[:, 0], {names[k]: table[:, k] for k in range(1, n)}


def read_references(path: "str | os.PathLike", names: Optional[List[str]] = None
                    ) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Reference spectra (absorption per unit thickness, in optical density) as (energy (N,),
    spectra (K, N), names). A text table has a header line ``energy name1 name2 ...``; an HDF5 file an
    ``/energy`` dataset and one dataset per reference. ``names`` picks and orders the references."""
    path = os.fspath(path)
    energy, cols = _read_columns(path)
    if names is None:
        names = list(cols)
    missing = [n for n in names if n not in cols]
    if missing:
        raise ValueError(f"{path}: reference spectra {missing} not found (the file has {list(cols)})")
    if len(names) < 1:
        raise ValueError(f"{path}: no reference spectrum")
    if np.any(np.diff(energy) <= 0):
        raise ValueError(f"{path}: energies must increase strictly")
    spectra = np.stack([cols[n] for n in names])
    if not np.all(np.isfinite(spectra)):
        raise ValueError(f"{path}: reference spectra contain non-finite values")
    return energy, spectra, list(names)


def read_i0(path: "str | os.PathLike") -> Tuple[np.ndarray, np.ndarray]:
    """An incident-flux spectrum (energy (N,), counts per second (N,)): a two-column text table or an
    HDF5 file with ``/energy`` and ``/i0``."""
    path = os.fspath(path)
    energy, cols = _read_columns(path)
    rate = cols.get("i0", next(iter(cols.values())) if len(cols) == 1 else None)
    if rate is None:
        raise ValueError(f"{path}: expected one I0 column (or a dataset named i0), found {list(cols)}")
    if np.any(np.diff(energy) <= 0):
        raise ValueError(f"{path}: energies must increase strictly")
    if not np.all(np.isfinite(rate) & (rate > 0)):
        raise ValueError(f"{path}: I0 must be positive counts per second")
    return energy, rate


def interpolate_spectra(energy: np.ndarray, spectra: np.ndarray, at: np.ndarray, where: str) -> np.ndarray:
    """``spectra`` (K, N) tabulated at ``energy`` interpolated linearly to ``at``; refuses extrapolation."""
    lo, hi = energy[0], energy[-1]
    tol = 1e-6 * max(1.0, abs(hi))
    if at.min() < lo - tol or at.max() > hi + tol:
        raise ValueError(f"{where}: tabulated from {lo:g} to {hi:g} eV, but the stack spans {at.min():g} to "
                         f"{at.max():g} eV")
    return np.stack([np.interp(at, energy, s) for s in np.atleast_2d(spectra)])


def write_stacks(path: "str | os.PathLike", stacks: List[Stack]) -> None:
    """Write stacks of one grid in the plain layout (``counts`` (T, E, H, W) as float32, exact for counts
    below 2^24, ``energy``, ``dwell``, ``time``, ``dark``), atomically. The layout holds one dwell and one
    dark rate for all stacks."""
    first = stacks[0]
    for s in stacks[1:]:
        if s.shape != first.shape or not np.array_equal(s.dwell_or_ones(), first.dwell_or_ones()) \
                or s.dark != first.dark:
            raise ValueError(f"{s.source}: the plain layout needs one grid, dwell and dark rate for all stacks")

    with atomic_h5(path) as f:
        f.create_dataset("counts", data=np.stack([s.counts for s in stacks]).astype(np.float32),
                         compression="gzip", chunks=(1, 1) + stacks[0].shape[1:])
        f["energy"] = stacks[0].energy
        f["dwell"] = stacks[0].dwell_or_ones()
        if all(s.time is not None for s in stacks):
            f["time"] = np.array([s.time for s in stacks])
        f.attrs["dark"] = stacks[0].dark
        if stacks[0].pixel_size_nm is not None:
            f.attrs["pixel_size_nm"] = stacks[0].pixel_size_nm


def write_references(path: "str | os.PathLike", energy: np.ndarray, spectra: np.ndarray, names: List[str]) -> None:
    """A text table ``energy name1 name2 ...`` that :func:`read_references` reads."""
    with atomic_file(path) as tmp:
        np.savetxt(tmp, np.column_stack([energy, np.asarray(spectra).T]), fmt="%.8g",
                   header="energy " + " ".join(names), comments="")
