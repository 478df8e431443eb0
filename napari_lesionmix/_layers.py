"""Geometry <-> napari layer attributes, shared by the reader, the writer and the docks.

napari layers have no direction matrix: a layer gets ``scale`` (spacing) and
``translate`` (origin) in array order from :class:`~napari_lesionmix.core.case.Geometry`,
and the full geometry travels in ``layer.metadata[GEOMETRY_KEY]`` so that anything
written gets it back exactly.

This module imports no Qt; it only knows napari's layer attribute names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .core.geometry import Geometry

__all__ = [
    "GEOMETRY_KEY",
    "ROLE_KEY",
    "geometry_from_attributes",
    "geometry_of_layer",
    "layer_kwargs",
    "looks_like_labels",
    "name_tokens",
]

#: ``layer.metadata`` key holding ``Geometry.to_dict()``.
GEOMETRY_KEY = "lesionmix_geometry"
#: ``layer.metadata`` key marking layers the plugin made for display (likelihood overlay,
#: selection marker); layer pickers skip them.
ROLE_KEY = "lesionmix_role"
#: Integer images with at most this many distinct values open as Labels.
MAX_LABEL_VALUES = 64
#: ... and at most this many when the file name says it is a label map (FreeSurfer's
#: aparc+aseg has ~180); more distinct values make an image whatever the name says.
MAX_NAMED_LABEL_VALUES = 1000
#: Whole name tokens (split on ``_ - . +``, spaces and digits) that say "label map".
LABEL_TOKENS = frozenset({
    "seg", "segs", "segmentation", "segmentations", "label", "labels", "labelmap",
    "labelmaps", "mask", "masks", "lesion", "lesions", "gt", "groundtruth", "truth",
    "aseg", "dseg", "aparc", "parc", "parcellation", "annotation", "annotations", "annot",
    "roi", "rois",
})
_TOKEN_SPLIT = re.compile(r"[_\-.+\s\d]+")


def layer_kwargs(geometry: Geometry, name: str, source: str | None = None,
                 dtype: str | None = None) -> dict:
    """Layer keyword arguments that carry a geometry.

    Parameters
    ----------
    geometry : Geometry
        The image's geometry.
    name : str
        Layer name.
    source : str, optional
        The file (or folder) it was read from, kept in metadata.
    dtype : str, optional
        The stored voxel type, kept in metadata.

    Returns
    -------
    dict
        ``name``, ``scale``, ``translate`` and ``metadata`` (``GEOMETRY_KEY``,
        ``lesionmix_source``, ``lesionmix_dtype``).

    Examples
    --------
    >>> kw = layer_kwargs(Geometry.identity(3, spacing=(1, 1, 2)), "t1")
    >>> kw["scale"]
    (2.0, 1.0, 1.0)
    """
    meta: dict[str, Any] = {GEOMETRY_KEY: geometry.to_dict()}
    if source is not None:
        meta["lesionmix_source"] = str(source)
    if dtype is not None:
        meta["lesionmix_dtype"] = str(dtype)
    return {
        "name": name,
        "scale": geometry.napari_scale(),
        "translate": geometry.napari_translate(),
        "metadata": meta,
    }


def geometry_from_attributes(attributes: dict, ndim: int) -> Geometry:
    """The geometry of a layer from its attributes (metadata, else scale/translate).

    The geometry in ``metadata[GEOMETRY_KEY]`` wins when it is consistent with the
    layer's current ``scale`` and ``translate`` (i.e. nobody changed them since it was
    read). Otherwise spacing and origin come from ``scale``/``translate`` (array order,
    reversed to SimpleITK order) and the direction from the metadata if it has the right
    dimension, else identity.

    Parameters
    ----------
    attributes : dict
        ``metadata``, ``scale`` and ``translate`` as napari's writers receive them.
    ndim : int
        The layer's number of dimensions (2 or 3).

    Returns
    -------
    Geometry

    Raises
    ------
    ValueError
        The layer is not 2D or 3D, or its scale is not positive.
    """
    if ndim not in (2, 3):
        raise ValueError(f"only 2D and 3D layers carry a geometry, this one is {ndim}D")
    meta = attributes.get("metadata") or {}
    scale = np.asarray(attributes.get("scale", (1.0,) * ndim), float)[-ndim:]
    translate = np.asarray(attributes.get("translate", (0.0,) * ndim), float)[-ndim:]
    stored = None
    if isinstance(meta.get(GEOMETRY_KEY), dict):
        try:
            stored = Geometry.from_dict(meta[GEOMETRY_KEY])
        except ValueError:
            stored = None
    if stored is not None and stored.ndim == ndim:
        if (np.allclose(stored.napari_scale(), scale, rtol=1e-9, atol=0)
                and np.allclose(stored.napari_translate(), translate, rtol=1e-9, atol=1e-9)):
            return stored
        direction = stored.direction
    else:
        direction = tuple(np.eye(ndim).ravel())
    return Geometry(tuple(scale[::-1]), tuple(translate[::-1]), direction)


def geometry_of_layer(layer: Any) -> Geometry:
    """The geometry of a napari layer (see :func:`geometry_from_attributes`)."""
    return geometry_from_attributes(
        {"metadata": layer.metadata, "scale": layer.scale, "translate": layer.translate},
        layer.ndim)


def name_tokens(name: str) -> list[str]:
    """The lower-case words of a file name, split on ``_ - . +``, spaces and digits.

    Examples
    --------
    >>> name_tokens("sub-01_T1w_masked.nii.gz")
    ['sub', 't', 'w', 'masked', 'nii', 'gz']
    """
    return [t for t in _TOKEN_SPLIT.split(name.lower()) if t]


def _name_says_labels(path: Path) -> bool:
    """A whole token of the file name is a label word, or the folder is nnU-Net's
    ``labels*`` (``brainmask_applied`` or ``presegmentation`` are not label words)."""
    if any(t in LABEL_TOKENS for t in name_tokens(path.name)):
        return True
    return path.parent.name.lower().startswith("labels")  # nnU-Net labelsTr / labelsTs


def _whole_numbers(array: np.ndarray) -> bool:
    """Float voxels that are all finite whole numbers in the uint32 range."""
    if not np.all(np.isfinite(array)):
        return False
    if array.min() < 0 or array.max() > np.iinfo(np.uint32).max:
        return False
    return bool(np.all(np.modf(array)[0] == 0))


def looks_like_labels(array: np.ndarray, path: str | Path | None = None) -> bool:
    """True if an image should open as a Labels layer.

    An integer (or boolean) image is a label map if it holds at most
    :data:`MAX_LABEL_VALUES` distinct values. A file name that says so (a whole word
    such as ``seg``, ``label``, ``mask``, ``lesion``, ``gt``, ``aseg`` or ``dseg``, see
    :data:`LABEL_TOKENS`, or an nnU-Net ``labels*`` folder) raises that limit to
    :data:`MAX_NAMED_LABEL_VALUES` and lets float voxels that are all whole numbers make
    a label map too; it never makes a label map of a clearly continuous image (more
    distinct values, or non-integer floats). Negative values never make a label map.

    Parameters
    ----------
    array : ndarray
    path : path-like, optional

    Returns
    -------
    bool

    Examples
    --------
    >>> looks_like_labels(np.array([[0, 1], [2, 1]], np.uint8))
    True
    >>> looks_like_labels(np.arange(1000, dtype=np.int16))
    False
    >>> looks_like_labels(np.arange(1000, dtype=np.int16), "case_seg.nii.gz")
    True
    """
    if array.dtype.kind == "b":
        return True
    if array.dtype.kind not in "iuf" or array.size == 0:
        return False
    named = path is not None and _name_says_labels(Path(path))
    if array.dtype.kind == "f" and not named:
        return False
    limit = MAX_NAMED_LABEL_VALUES if named else MAX_LABEL_VALUES
    flat = array.reshape(-1)
    step = max(1, flat.size // 200_000)
    if np.unique(flat[::step]).size > limit:  # fast rejection of real images
        return False
    if array.dtype.kind == "f":
        if not _whole_numbers(array):
            return False
    elif array.dtype.kind == "i" and array.min() < 0:
        return False
    if array.dtype.kind == "u" and array.dtype.itemsize <= 2:
        n = int(np.count_nonzero(np.bincount(flat)))
    else:
        n = int(np.unique(flat).size)
    return n <= limit
