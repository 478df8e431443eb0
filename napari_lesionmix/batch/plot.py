"""``loads.png``: the reference, target and achieved lesion loads of a run.

Drawn with Matplotlib's object API and the Agg canvas (no pyplot, no GUI backend).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.io_utils import atomic_path

__all__ = ["plot_loads"]


def plot_loads(path: str | Path, reference, targets=(), achieved=(), title: str = "",
               tmp_dir: str | Path | None = None) -> Path:
    """Histograms of lesion loads in ml, written atomically as a PNG.

    Parameters
    ----------
    path : path-like
        The PNG file.
    reference : sequence of float
        Per-case loads of the input (mm³).
    targets, achieved : sequence of float
        Target and achieved loads of the synthesised cases (mm³); empty for a dataset
        summary (``lesionmix stats --plot``).
    title : str
    tmp_dir : path-like, optional
        Folder of the temporary file (default: beside ``path``).

    Returns
    -------
    Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = [("reference (input cases)", np.asarray(reference, float) / 1000.0, "0.4")]
    if len(targets):
        series.append(("target", np.asarray(targets, float) / 1000.0, "tab:blue"))
    if len(achieved):
        series.append(("achieved", np.asarray(achieved, float) / 1000.0, "tab:orange"))
    values = np.concatenate([s[1] for s in series]) if series else np.zeros(1)
    hi = float(values.max()) if values.size and values.max() > 0 else 1.0
    bins = np.linspace(0.0, hi * 1.02, 31)
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, vals, color in series:
        if vals.size:
            ax.hist(vals, bins=bins, density=True, alpha=0.45, color=color,
                    label=f"{label}: n={vals.size}, median {np.median(vals):.2f} ml")
    if len(targets) and len(achieved) == len(targets):
        err = np.abs(np.asarray(achieved, float) - np.asarray(targets, float)) / 1000.0
        ax.plot([], [], " ", label=f"|achieved - target|: median {np.median(err):.3f} ml")
    ax.set_xlabel("lesion load (ml)")
    ax.set_ylabel("density")
    ax.set_title(title or "lesion loads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, tmp_dir=tmp_dir) as tmp:
        fig.savefig(tmp, format="png")
    return path
