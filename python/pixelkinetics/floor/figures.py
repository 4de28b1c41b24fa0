"""Figures for every wing's report: matplotlib figures on the Agg canvas, outside pyplot (no display, no
global state, nothing left open once a figure is dropped), and maps drawn on a particle's mask."""
from __future__ import annotations

import re
from typing import Tuple

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Colour of pixels off the mask or not observed.
BAD = "0.85"


def figure(size: Tuple[float, float]) -> Figure:
    """A figure on the Agg canvas, outside pyplot: garbage-collected once dropped, never shown."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def colormap(name: str):
    """A matplotlib colour map that draws NaN (off the mask, not observed) in :data:`BAD` grey."""
    return matplotlib.colormaps[name].with_extremes(bad=BAD)


def show_map(ax, values: np.ndarray, mask: np.ndarray, cmap, low: float, high: float):
    """An (H, W) map with everything off the mask blanked; returns the image for a colour bar."""
    image = ax.imshow(np.where(mask, values, np.nan), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def note(ax, text: str) -> None:
    """A panel that holds only a sentence (nothing to draw)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def safe_name(name: str) -> str:
    """A particle name usable in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
