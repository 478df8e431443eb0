"""napari sample data: the first case of each bundled dataset, as image + labels layers.

The files are in nnU-Net layout under ``napari_lesionmix/sample_data`` (see
:func:`napari_lesionmix.sample_data.sample_paths`). Each channel opens as an Image layer
and the label map as a Labels layer, all with the case's geometry (``scale``,
``translate`` and ``metadata``), exactly as the reader opens the same files.
"""

from __future__ import annotations

from ._reader import read_layer_data
from .sample_data import sample_paths

__all__ = ["brain_mr", "liver_ct", "sample_layers"]


def sample_layers(name: str, index: int = 0) -> list[tuple]:
    """Layer data tuples of one case of a bundled dataset.

    Parameters
    ----------
    name : {"brain_mr", "liver_ct"}
    index : int
        Case index (0 = the first case).

    Returns
    -------
    list of tuple
        ``(data, kwargs, "image")`` per channel, then ``(labels, kwargs, "labels")``.
    """
    images, label = sample_paths(name)[index]
    out = [read_layer_data(p, "image") for p in images]
    out.append(read_layer_data(label, "labels"))
    return out


def brain_mr() -> list[tuple]:
    """The first brain MR case (T1, label 1 = lesion)."""
    return sample_layers("brain_mr")


def liver_ct() -> list[tuple]:
    """The first liver CT case (label 1 = liver, 2 = tumour)."""
    return sample_layers("liver_ct")
