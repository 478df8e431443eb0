"""A contact sheet: grey panels with coloured outlines in a grid, text around, one PNG.

The panels are composed as one RGB array (voxels upsampled by nearest neighbour, so the
true voxels show) and written through Matplotlib's Agg canvas with its text; one image
per page, not one axes per panel, keeps a page of 150 panels well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage as ndi

from ..core.io_utils import atomic_path

__all__ = ["Sheet", "panel", "fit", "hex_rgb", "crop", "window_of"]

DPI = 100


def hex_rgb(colour: str) -> np.ndarray:
    """``"#ffb000"`` → array([255, 176, 0], uint8)."""
    c = colour.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], np.uint8)


def _upsample(pic: np.ndarray, shape) -> np.ndarray:
    """Nearest-neighbour resampling of a 2D array to ``shape``."""
    ri = np.minimum(((np.arange(shape[0]) + 0.5) * pic.shape[0] / shape[0]).astype(int),
                    pic.shape[0] - 1)
    ci = np.minimum(((np.arange(shape[1]) + 0.5) * pic.shape[1] / shape[1]).astype(int),
                    pic.shape[1] - 1)
    return pic[ri][:, ci]


def window_of(channel: np.ndarray) -> tuple[float, float]:
    """Display range: the 0.5 and 99.5 percentiles of the non-zero voxels."""
    vals = channel[channel != 0]
    if vals.size == 0:
        vals = channel.ravel()
    lo, hi = np.percentile(vals[:: max(1, vals.size // 200_000)], [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def crop(pic: np.ndarray, centre, half) -> np.ndarray:
    """A window of ``pic`` centred on ``centre`` (row, col), NaN outside the picture."""
    r0, c0 = int(round(centre[0])) - half[0], int(round(centre[1])) - half[1]
    out = np.full((2 * half[0] + 1, 2 * half[1] + 1), np.nan, np.float32)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + out.shape[0], pic.shape[0]), min(c0 + out.shape[1], pic.shape[1])
    if rs < re and cs < ce:
        out[rs - r0:re - r0, cs - c0:ce - c0] = pic[rs:re, cs:ce]
    return out


def fit(shape, pixel_size, box) -> tuple[int, int]:
    """Display size (rows, cols) of a picture of ``shape`` with ``pixel_size`` (mm) that
    fits in ``box`` pixels and keeps its physical aspect."""
    h_mm, w_mm = shape[0] * pixel_size[0], shape[1] * pixel_size[1]
    s = min(box[0] / h_mm, box[1] / w_mm)
    return max(1, int(round(h_mm * s))), max(1, int(round(w_mm * s)))


def panel(pic: np.ndarray, window, size, outlines=()) -> np.ndarray:
    """An RGB panel: ``pic`` windowed to grey, upsampled to ``size``, outlines drawn.

    Parameters
    ----------
    pic : 2D array
        NaN shows black (outside the image).
    window : (lo, hi)
    size : (rows, cols)
    outlines : sequence of (bool 2D array like ``pic``, "#rrggbb")
    """
    grey = np.clip((np.nan_to_num(pic, nan=window[0]) - window[0])
                   / (window[1] - window[0]) * 255, 0, 255).astype(np.uint8)
    grey[np.isnan(pic)] = 0
    rgb = np.repeat(_upsample(grey, size)[..., None], 3, axis=2)
    for mask, colour in outlines:
        if not mask.any():
            continue
        up = _upsample(mask, size)
        edge = up & ~ndi.binary_erosion(up, iterations=max(1, size[0] // 120))
        rgb[edge] = hex_rgb(colour)
    return rgb


@dataclass
class Sheet:
    """A page: panels placed at pixel positions, and text.

    Parameters
    ----------
    width, height : int
        Page size in pixels.
    """

    width: int
    height: int
    rgb: np.ndarray = field(init=False)
    texts: list = field(default_factory=list)

    def __post_init__(self):
        self.rgb = np.full((self.height, self.width, 3), 255, np.uint8)

    def put(self, img: np.ndarray, top: int, left: int, box=None, border="#000000") -> tuple:
        """Place ``img`` centred in ``box`` (rows, cols) at (top, left); returns the
        image's own (top, left)."""
        box = box or img.shape[:2]
        t = top + (box[0] - img.shape[0]) // 2
        lft = left + (box[1] - img.shape[1]) // 2
        self.rgb[top:top + box[0], left:left + box[1]] = hex_rgb(border)
        self.rgb[t:t + img.shape[0], lft:lft + img.shape[1]] = img
        return t, lft

    def rect(self, top: int, left: int, h: int, w: int, colour: str) -> None:
        """An unfilled rectangle, clipped to the page."""
        c = hex_rgb(colour)
        b, r = min(top + h, self.height - 1), min(left + w, self.width - 1)
        top, left = max(top, 0), max(left, 0)
        self.rgb[top, left:r + 1] = c
        self.rgb[b, left:r + 1] = c
        self.rgb[top:b + 1, left] = c
        self.rgb[top:b + 1, r] = c

    def text(self, x: float, y: float, s: str, size: float = 8, colour: str = "black",
             ha: str = "left", va: str = "top", stroke: bool = False, **kw) -> None:
        """Text at pixel (x, y) from the top left."""
        self.texts.append((x, y, s, dict(fontsize=size, color=colour, ha=ha, va=va,
                                         stroke=stroke, **kw)))

    def letters(self, top: int, left: int, h: int, w: int, letters, size=7) -> None:
        """Orientation letters (top, bottom, left, right) inside a panel's edges."""
        t, b, lft, r = letters
        for x, y, s in ((left + w / 2, top + 8, t), (left + w / 2, top + h - 8, b),
                        (left + 8, top + h / 2, lft), (left + w - 8, top + h / 2, r)):
            self.text(x, y, s, size=size, colour="#ffe680", ha="center", va="center",
                      stroke=True, fontweight="bold")

    def save(self, path) -> Path:
        """Write the page as a PNG (atomically)."""
        fig = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI)
        FigureCanvasAgg(fig)
        fig.figimage(self.rgb, 0, 0, origin="upper")
        for x, y, s, kw in self.texts:
            stroke = kw.pop("stroke")
            t = fig.text(x / self.width, 1 - y / self.height, s, **kw)
            if stroke:
                t.set_path_effects([patheffects.withStroke(linewidth=1.8, foreground="black")])
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
        return path
