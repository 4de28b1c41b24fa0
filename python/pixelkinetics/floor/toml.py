"""Configuration files (TOML)."""
from __future__ import annotations

import os
import sys
from typing import Dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: "str | os.PathLike") -> Dict:
    """A TOML file as a dict; invalid TOML is a ValueError naming the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
