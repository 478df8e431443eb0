"""Geometry <-> napari layer attributes, shared by the reader, the writer and the docks.

A layer carries its file's full geometry as napari's transform: ``scale`` is the spacing
and ``affine`` holds the direction and the origin, all in array (z, y, x) order, so
napari's world coordinates are ITK's physical millimetres (LPS) in z, y, x order for
every file, flipped and oblique ones included, and layers from different grids line up.
With napari's usual camera an axial slice then shows anterior up and the patient's
right on the screen's left, for every dataset.

napari slices 2D views along array axes, so a file whose axes are *permuted* (e.g. a
sagittal acquisition stored x-first) is shown transposed so that each array axis runs
along the world axis of the same index; the permutation and the file's exact geometry
travel in ``layer.metadata`` and the writer puts both back. Flips need no transpose: the
affine holds them. A file whose direction is oblique keeps its rotation in the affine;
napari's 2D view applies its in-plane part (the 3D view all of it).

This module imports no Qt; napari only where a layer's transform is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .core.geometry import Geometry

__all__ = [
    "AXES_KEY",
    "GEOMETRY_KEY",
    "ROLE_KEY",
    "display_layout",
    "file_layout",
    "geometry_from_attributes",
    "geometry_of_layer",
    "grid_kwargs",
    "layer_kwargs",
    "looks_like_labels",
    "name_tokens",
]

#: ``layer.metadata`` key holding the file's ``Geometry.to_dict()`` (exact, file order).
GEOMETRY_KEY = "lesionmix_geometry"
#: ``layer.metadata`` key holding the array-axis permutation applied for display.
AXES_KEY = "lesionmix_axes"
#: ``layer.metadata`` key marking layers the plugin made for display (likelihood overlay,
#: markers, previews); layer pickers skip them.
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


# ---------------------------------------------------------------------- axes and grids
def _direction_zyx(geometry: Geometry) -> np.ndarray:
    """The direction matrix in array order: entry [a, b] is world axis a of array axis b."""
    return geometry.direction_matrix[::-1, ::-1]


def display_layout(geometry: Geometry) -> tuple[tuple[int, ...], Geometry]:
    """How to show a file: the array-axis permutation and the geometry of the result.

    Each array axis is sent to the world axis it runs closest to (an assignment on the
    direction cosines), so that napari's 2D slices cut along physical planes.

    Parameters
    ----------
    geometry : Geometry
        The file's geometry.

    Returns
    -------
    (perm, shown) : tuple of int, Geometry
        ``array.transpose(perm)`` is what is shown; ``shown`` is its exact geometry (the
        same physical placement: entries of the file's geometry, reordered).

    Examples
    --------
    >>> g = Geometry((1.0, 2.0, 3.0), (0.0, 0.0, 0.0), (0, 0, 1, 1, 0, 0, 0, 1, 0))
    >>> perm, shown = display_layout(g)
    >>> perm, shown.spacing
    ((1, 2, 0), (3.0, 1.0, 2.0))
    >>> shown.is_axis_aligned and shown.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    True
    """
    from scipy.optimize import linear_sum_assignment

    n = geometry.ndim
    rows, cols = linear_sum_assignment(-np.abs(_direction_zyx(geometry)))
    perm = tuple(int(c) for _, c in sorted(zip(rows, cols)))
    if perm == tuple(range(n)):
        return perm, geometry
    # new array axis a is old axis perm[a]; in ITK order, new index axis i is old n-1-perm[n-1-i]
    old = [n - 1 - perm[n - 1 - i] for i in range(n)]
    d = geometry.direction_matrix[:, old]
    shown = Geometry(tuple(geometry.spacing[k] for k in old), geometry.origin,
                     tuple(d.ravel()))
    return perm, shown


def grid_kwargs(geometry: Geometry) -> dict:
    """Layer keyword arguments that put a layer on ``geometry``'s voxel grid in world mm:
    ``scale`` (spacing), ``affine`` (direction and origin) and ``units``.

    Examples
    --------
    >>> kw = grid_kwargs(Geometry((1.0, 1.0, 2.0), (5.0, 6.0, 7.0), (-1, 0, 0, 0, -1, 0, 0, 0, 1)))
    >>> kw["scale"], kw["affine"][:3, 3].tolist(), float(kw["affine"][1, 1])
    ((2.0, 1.0, 1.0), [7.0, 6.0, 5.0], -1.0)
    """
    n = geometry.ndim
    affine = np.eye(n + 1)
    affine[:n, :n] = _direction_zyx(geometry)
    affine[:n, n] = geometry.origin[::-1]
    return {"scale": tuple(float(v) for v in geometry.spacing[::-1]), "affine": affine,
            "units": ("mm",) * n}


def layer_kwargs(geometry: Geometry, name: str, source: str | None = None,
                 dtype: str | None = None, file_geometry: Geometry | None = None,
                 axes: tuple | None = None) -> dict:
    """Layer keyword arguments for an array shown on ``geometry``.

    Parameters
    ----------
    geometry : Geometry
        The geometry of the array as shown (see :func:`display_layout`).
    name : str
        Layer name.
    source : str, optional
        The file (or folder) it was read from, kept in metadata.
    dtype : str, optional
        The stored voxel type, kept in metadata.
    file_geometry, axes : Geometry, tuple of int, optional
        The file's own geometry and the permutation applied for display (default: the
        array is the file's as it is).

    Returns
    -------
    dict
        ``name``, ``scale``, ``affine``, ``units`` and ``metadata`` (``GEOMETRY_KEY``,
        ``AXES_KEY``, ``lesionmix_source``, ``lesionmix_dtype``).

    Examples
    --------
    >>> kw = layer_kwargs(Geometry.identity(3, spacing=(1, 1, 2)), "t1")
    >>> kw["scale"], kw["units"]
    ((2.0, 1.0, 1.0), ('mm', 'mm', 'mm'))
    """
    meta: dict[str, Any] = {
        GEOMETRY_KEY: (file_geometry or geometry).to_dict(),
        AXES_KEY: list(axes if axes is not None else range(geometry.ndim)),
    }
    if source is not None:
        meta["lesionmix_source"] = str(source)
    if dtype is not None:
        meta["lesionmix_dtype"] = str(dtype)
    return {"name": name, **grid_kwargs(geometry), "metadata": meta}


def _transform(attributes: dict, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """The linear part and the translation (array order) of a layer's data-to-world map."""
    from napari.utils.transforms import Affine, CompositeAffine

    def pick(key, default):
        value = attributes.get(key)
        return default if value is None else value

    inner = CompositeAffine(
        scale=np.asarray(pick("scale", np.ones(ndim)), float)[-ndim:],
        translate=np.asarray(pick("translate", np.zeros(ndim)), float)[-ndim:],
        rotate=pick("rotate", None), shear=pick("shear", None), ndim=ndim)
    outer = attributes.get("affine")
    if outer is None:
        outer = Affine(ndim=ndim)
    elif not isinstance(outer, Affine):
        outer = Affine(affine_matrix=np.asarray(outer, float)[-ndim - 1:, -ndim - 1:])
    full = outer.compose(inner)
    return np.asarray(full.linear_matrix, float), np.asarray(full.translate, float)


def _stored(attributes: dict, ndim: int) -> tuple[Geometry | None, tuple | None]:
    meta = attributes.get("metadata") or {}
    try:
        stored = Geometry.from_dict(meta[GEOMETRY_KEY])
    except (KeyError, TypeError, ValueError):
        return None, None
    axes = tuple(int(a) for a in meta.get(AXES_KEY, range(stored.ndim)))
    if stored.ndim != ndim or sorted(axes) != list(range(ndim)):
        return None, None
    return stored, axes


def geometry_from_attributes(attributes: dict, ndim: int) -> Geometry:
    """The geometry of a layer's array as shown, from its attributes.

    The exact stored geometry wins while the layer's transform still agrees with it
    (nobody changed ``scale`` or ``affine``); otherwise spacing, direction and origin
    are read from the transform (``affine`` composed with scale, rotate, shear and
    translate).

    Parameters
    ----------
    attributes : dict
        ``metadata``, ``scale``, ``translate``, ``rotate``, ``shear``, ``affine``, as
        napari's writers receive them (missing ones are the identity).
    ndim : int
        The layer's number of dimensions (2 or 3).

    Returns
    -------
    Geometry

    Raises
    ------
    ValueError
        The layer is not 2D or 3D, or its transform is singular.
    """
    if ndim not in (2, 3):
        raise ValueError(f"only 2D and 3D layers carry a geometry, this one is {ndim}D")
    linear, translate = _transform(attributes, ndim)
    spacing_zyx = np.linalg.norm(linear, axis=0)
    if not np.all(spacing_zyx > 0):
        raise ValueError(f"the layer's transform is singular (scale {tuple(spacing_zyx)})")
    direction_zyx = linear / spacing_zyx
    stored, axes = _stored(attributes, ndim)
    if stored is not None:
        shown = _permuted(stored, axes)
        if (np.allclose(shown.spacing_zyx, spacing_zyx, rtol=1e-9, atol=0)
                and np.allclose(_direction_zyx(shown), direction_zyx, atol=1e-9)
                and np.allclose(shown.origin[::-1], translate, rtol=1e-9, atol=1e-9)):
            return shown
    return Geometry(tuple(spacing_zyx[::-1]), tuple(translate[::-1]),
                    tuple(direction_zyx[::-1, ::-1].ravel()))


def _permuted(geometry: Geometry, axes: tuple) -> Geometry:
    """``geometry`` of the file's array transposed by ``axes``."""
    if tuple(axes) == tuple(range(geometry.ndim)):
        return geometry
    n = geometry.ndim
    old = [n - 1 - axes[n - 1 - i] for i in range(n)]
    d = geometry.direction_matrix[:, old]
    return Geometry(tuple(geometry.spacing[k] for k in old), geometry.origin, tuple(d.ravel()))


def file_layout(attributes: dict, ndim: int) -> tuple[Geometry, tuple | None]:
    """What the writer writes: the geometry, and the permutation that puts a shown array
    back in its file's axis order (None: write it as it is).

    While the layer's transform agrees with its stored geometry this is the file's exact
    geometry and axis order; otherwise the geometry read from the transform.
    """
    shown = geometry_from_attributes(attributes, ndim)
    stored, axes = _stored(attributes, ndim)
    if stored is not None and _permuted(stored, axes) == shown:
        inverse = tuple(int(i) for i in np.argsort(axes))
        return stored, (None if inverse == tuple(range(ndim)) else inverse)
    return shown, None


def geometry_of_layer(layer: Any) -> Geometry:
    """The geometry of a napari layer's array (see :func:`geometry_from_attributes`)."""
    return geometry_from_attributes(
        {"metadata": layer.metadata, "scale": layer.scale, "translate": layer.translate,
         "rotate": layer.rotate, "shear": layer.shear, "affine": layer.affine},
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
