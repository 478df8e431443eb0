"""The load plot of the "Synthesise and export" dock: reference loads and the distribution.

A Matplotlib figure on the Qt canvas (``backend_qtagg``), drawn with the object API (no
pyplot). Loads are shown in ml; the density is per ml.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..core.load import LoadDistribution

__all__ = ["LoadPlot", "density_curve"]

#: mm³ per ml
ML = 1000.0


def density_curve(dist: LoadDistribution, x_ml: np.ndarray) -> np.ndarray:
    """The distribution's density over loads in ml (per ml).

    Parameters
    ----------
    dist : LoadDistribution
        Works in mm³.
    x_ml : ndarray
        Loads in ml.

    Returns
    -------
    ndarray
        ``dist.density(x_ml * 1000) * 1000``.

    Examples
    --------
    >>> d = LoadDistribution("uniform", {"lo": 1000.0, "hi": 3000.0})
    >>> density_curve(d, np.array([0.5, 2.0]))
    array([0. , 0.5])
    """
    return np.asarray(dist.density(np.asarray(x_ml, float) * ML), float) * ML


class LoadPlot(FigureCanvasQTAgg):
    """Histogram of the reference loads with the chosen distribution's density over it.

    Attributes
    ----------
    ax : matplotlib.axes.Axes
    bars : matplotlib.container.BarContainer or None
        The histogram (heights are densities per ml).
    curve : matplotlib.lines.Line2D
        The density in ml (x) and per ml (y).
    x_ml, y_density : ndarray
        The curve's data.
    """

    def __init__(self, parent=None):
        self.figure = Figure(figsize=(3.2, 2.0), dpi=90, layout="constrained")
        super().__init__(self.figure)
        self.setParent(parent)
        self.setMinimumHeight(170)
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.bars = None
        self.curve = None
        self.x_ml = np.zeros(0)
        self.y_density = np.zeros(0)

    def update_plot(self, reference_mm3, dist: LoadDistribution | None,
                    message: str = "") -> None:
        """Redraw: the reference loads as a histogram, ``dist`` as a curve.

        Parameters
        ----------
        reference_mm3 : sequence of float
            Reference loads in mm³ (may be empty).
        dist : LoadDistribution or None
            None draws the histogram only.
        message : str
            Shown in the plot when there is no distribution (why).
        """
        ax = self.ax
        ax.clear()
        ref = np.asarray(list(reference_mm3), float) / ML
        hi = float(ref.max()) if ref.size else 0.0
        if dist is not None:
            hi = max(hi, dist.support()[1] / ML)
        hi = hi * 1.1 if hi > 0 else 1.0
        self.bars = None
        if ref.size:
            bins = min(max(int(np.sqrt(ref.size)) * 2, 5), 30)
            _, _, self.bars = ax.hist(ref, bins=bins, range=(0.0, hi), density=True,
                                      color="#7aa6c2", alpha=0.7, label="reference")
        self.x_ml = np.linspace(0.0, hi, 400)
        if dist is not None:
            self.y_density = density_curve(dist, self.x_ml)
            (self.curve,) = ax.plot(self.x_ml, self.y_density, color="#d9480f", lw=1.8,
                                    label=dist.kind)
            ax.legend(fontsize=7, loc="upper right", frameon=False)
        else:
            self.y_density = np.zeros(0)
            self.curve = None
            if message:
                ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=7,
                        transform=ax.transAxes, wrap=True)
        ax.set_xlim(0.0, hi)
        ax.set_xlabel("lesion load (ml)", fontsize=8)
        ax.set_ylabel("density (1/ml)", fontsize=8)
        ax.tick_params(labelsize=7)
        self.draw_idle()
