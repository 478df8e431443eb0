"""napari writers: one Image or Labels layer to NIfTI, NRRD/NHDR or MetaImage.

The file gets the layer's source geometry and axis order back
(``metadata["lesionmix_geometry"]`` and ``["lesionmix_axes"]``) unless the layer's
transform was changed since, in which case spacing, direction and origin are read from
the transform (see :func:`~napari_lesionmix._layers.file_layout`). Writes are atomic
(through :func:`~napari_lesionmix.core.case.write_image`). napari asks before
overwriting, so an existing file is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._layers import file_layout
from .core.errors import CaseError
from .core.image_io import label_dtype, write_image
from .core.io_utils import IMAGE_SUFFIXES

__all__ = ["write_image_layer", "write_labels_layer"]


def _target(path: str) -> Path:
    p = Path(path)
    if not p.name.lower().endswith(IMAGE_SUFFIXES):
        p = p.with_name(p.name + ".nii.gz")
    return p


def _write(path: str, data: Any, attributes: dict, labels: bool) -> list[str]:
    array = np.asarray(data)
    if array.ndim not in (2, 3):
        raise CaseError(f"{path}: only 2D and 3D layers can be written, this one has shape "
                        f"{array.shape}")
    if attributes.get("rgb"):
        raise CaseError(f"{path}: RGB layers cannot be written as a medical image")
    try:
        geometry, axes = file_layout(attributes, array.ndim)
    except ValueError as exc:
        raise CaseError(f"{path}: {exc}") from None
    if axes is not None:
        array = array.transpose(axes)
    if labels:
        if array.size and array.min() < 0:
            raise CaseError(f"{path}: negative label values cannot be written")
        if array.dtype.kind != "u":
            array = array.astype(label_dtype(int(array.max()) if array.size else 0))
    target = _target(path)
    write_image(array, geometry, target, overwrite=True)
    return [str(target)]


def write_image_layer(path: str, data: Any, attributes: dict) -> list[str]:
    """Write an Image layer in its own dtype with its geometry.

    Parameters
    ----------
    path : str
        Target file; the extension chooses the format (``.nii.gz`` if none is known).
    data : array_like
        The layer's data.
    attributes : dict
        The layer's attributes (``metadata``, ``scale``, ``translate``, ...).

    Returns
    -------
    list of str
        The written path.
    """
    return _write(path, data, attributes, labels=False)


def write_labels_layer(path: str, data: Any, attributes: dict) -> list[str]:
    """Write a Labels layer (unsigned types kept, signed ones as the smallest unsigned).

    Parameters
    ----------
    path : str
    data : array_like
    attributes : dict

    Returns
    -------
    list of str
    """
    return _write(path, data, attributes, labels=True)
