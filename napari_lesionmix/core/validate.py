"""Checks on the arrays of a case: image values, label values and matching grids.

Every check raises :class:`~napari_lesionmix.core.errors.CaseError` with a message that
names the file (or case) and the first offending voxel or value.
"""

from __future__ import annotations

import numpy as np

from .errors import CaseError
from .geometry import Geometry
from .image_io import label_dtype

__all__ = ["NNUNET_ATOL", "NNUNET_RTOL", "same_grid", "spacing_as_nnunet", "unique_values",
           "validate_image", "validate_labels"]


def validate_image(arr: np.ndarray, where: str) -> np.ndarray:
    """Float32 copy-or-view of an image; CaseError on NaN/Inf or a non-numeric dtype."""
    if arr.dtype.kind not in "biuf":
        raise CaseError(f"{where}: unsupported voxel type {arr.dtype} (expected real numbers)")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            first = np.unravel_index(int(np.argmax(bad)), arr.shape)
            first = tuple(int(i) for i in first)
            raise CaseError(
                f"{where}: {n_bad} voxel(s) are NaN or Inf; the first is "
                f"{arr[first]!r} at array index {first} (x, y, z = {first[::-1]})"
            )
    out = arr.astype(np.float32, copy=False)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and not np.all(np.isfinite(out)):
        raise CaseError(f"{where}: values exceed the float32 range")
    return out


def validate_labels(arr: np.ndarray, where: str, allowed_labels: set | None = None) -> np.ndarray:
    """Labels as the smallest unsigned integer dtype; CaseError on bad values."""
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            not_whole = ~(np.isfinite(arr) & (arr == np.round(arr)))
        n_bad = int(np.count_nonzero(not_whole))
        if n_bad:
            example = arr.ravel()[int(np.argmax(not_whole.ravel()))]
            raise CaseError(
                f"{where}: {n_bad} label voxel(s) are not whole numbers (e.g. {example!r}); "
                "a label map must hold integer class values"
            )
    elif arr.dtype.kind not in "iu":
        raise CaseError(f"{where}: unsupported label voxel type {arr.dtype}")
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        n_neg = int(np.count_nonzero(arr < 0))
        raise CaseError(
            f"{where}: {n_neg} label voxel(s) are negative (minimum {lo!r}); "
            "labels must be 0 (background) or positive class values"
        )
    if hi > np.iinfo(np.uint32).max:
        raise CaseError(f"{where}: label value {hi!r} does not fit in uint32")
    out = arr.astype(label_dtype(int(hi)), copy=False)
    if allowed_labels is not None:
        allowed = {int(v) for v in allowed_labels}
        present = unique_values(out)
        extra = sorted(present - allowed)
        if extra:
            raise CaseError(
                f"{where}: label value(s) {extra} are not among the allowed labels "
                f"{sorted(allowed)}"
            )
    return out


def unique_values(labels: np.ndarray) -> set[int]:
    if labels.size == 0:
        return set()
    if labels.dtype.kind == "u" and labels.dtype.itemsize <= 2:
        return {int(v) for v in np.flatnonzero(np.bincount(labels.ravel()))}
    return {int(v) for v in np.unique(labels)}


def same_grid(
    shape_a: tuple, geom_a: Geometry, name_a: str, shape_b: tuple, geom_b: Geometry, name_b: str
) -> None:
    if tuple(shape_a) != tuple(shape_b):
        raise CaseError(
            f"{name_a} and {name_b} have different shapes: array shape {tuple(shape_a)} vs "
            f"{tuple(shape_b)}"
        )
    diff = geom_a.difference(geom_b)
    if diff is None and not spacing_as_nnunet(geom_a.spacing, geom_b.spacing):
        diff = (f"spacing {tuple(geom_a.spacing)} vs {tuple(geom_b.spacing)} (nnU-Net refuses "
                f"files whose spacing differs by more than rtol {NNUNET_RTOL}, atol "
                f"{NNUNET_ATOL})")
    if diff:
        raise CaseError(f"{name_a} and {name_b} have different geometry: {diff}")


#: nnU-Net v2's tolerance on spacing between the files of a case (``numpy.allclose``'s
#: defaults, used by its reader and by ``verify_dataset_integrity``)
NNUNET_RTOL, NNUNET_ATOL = 1e-5, 1e-8


def spacing_as_nnunet(a, b) -> bool:
    """True if nnU-Net v2 takes spacings ``a`` and ``b`` for the same (in either order:
    ``allclose`` is not symmetric)."""
    return bool(np.allclose(a, b, rtol=NNUNET_RTOL, atol=NNUNET_ATOL)
                and np.allclose(b, a, rtol=NNUNET_RTOL, atol=NNUNET_ATOL))
