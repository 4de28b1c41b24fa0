"""Argument types of the command line: what a word on it means, checked where it is read."""
from __future__ import annotations

import argparse
import os
import re
from typing import List, Optional


def positive(kind, zero: bool = False):
    """An argparse type: a number of ``kind`` that is > 0 (>= 0 with ``zero``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (value >= 0 if zero else value > 0) or value != value:
            raise argparse.ArgumentTypeError(f"{text} must be {'>= 0' if zero else '> 0'}")
        return value
    return parse


def words(text: Optional[str]) -> Optional[List[str]]:
    """A comma-separated list of names (None stays None)."""
    return None if text is None else [w.strip() for w in text.split(",") if w.strip()]


def numbers(text: Optional[str], kind=float) -> Optional[list]:
    """A comma-separated list of numbers (None stays None)."""
    return None if text is None else [kind(w) for w in words(text)]


def i0_source(text: str):
    """--i0: "auto", ROW0:ROW1,COL0:COL1 (a region of bare support) or a file with an I0 spectrum."""
    if text == "auto":
        return "auto"
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*,\s*(\d+):(\d+)\s*", text)
    if m:
        return tuple(int(g) for g in m.groups())
    if os.path.exists(text):
        return text
    raise ValueError(f"--i0 {text!r}: expected 'auto', a region ROW0:ROW1,COL0:COL1 or an existing I0 file")
