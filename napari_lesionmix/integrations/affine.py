"""From the training frameworks' arrays and affines to the engine's arrays and geometry.

TorchIO and MONAI hold an image as ``(C, I, J, K)``, the voxel axes in the file's index
order, with a 4×4 affine from ``(i, j, k)`` to RAS millimetres (nibabel's convention;
MONAI may say ``space: LPS``). The engine holds arrays in numpy order ``(z, y, x)`` =
``(K, J, I)`` with an ITK geometry in LPS. So the array is transposed (a view, no copy)
and the affine is turned into spacing, origin and direction exactly: RAS → LPS flips the
first two physical axes; the spacing is each column's length and the direction each
column divided by it, as ITK and nibabel relate them.

A 2D bank works on ``(C, I, J, 1)`` images as 2D ``(J, I)`` arrays.
"""

from __future__ import annotations

import numpy as np

from ..core.geometry import Geometry

__all__ = ["from_engine", "geometry_from_affine", "to_engine"]


def geometry_from_affine(affine, space: str = "RAS", ndim: int = 3) -> Geometry:
    """The engine's Geometry of the array ``(C, K, J, I)`` whose ``(i, j, k)`` index the
    ``affine`` maps to ``space`` ("RAS" or "LPS") millimetres.

    With ``ndim`` 2, the geometry of the ``(J, I)`` plane (k = 0).

    Examples
    --------
    >>> g = geometry_from_affine(np.diag([-2.0, -2.0, 3.0, 1.0]))
    >>> g.spacing, g.direction[:3]
    ((2.0, 2.0, 3.0), (1.0, 0.0, 0.0))
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {a.shape}")
    space = str(space).upper()
    if space not in ("RAS", "LPS"):
        raise ValueError(f"unknown space {space!r} (expected RAS or LPS)")
    flip = np.diag([-1.0, -1.0, 1.0]) if space == "RAS" else np.eye(3)
    m = flip @ a[:3, :3]
    t = flip @ a[:3, 3]
    if ndim == 2:
        m, t = m[:2, :2], t[:2]
    spacing = np.sqrt((m ** 2).sum(axis=0))
    if not np.all(spacing > 0):
        raise ValueError(f"the affine has a zero-length axis: {affine!r}")
    return Geometry(tuple(spacing), tuple(t), tuple((m / spacing).ravel()))


def to_engine(array: np.ndarray, ndim: int = 3) -> np.ndarray:
    """``(C, I, J, K)`` → the engine's ``(C, K, J, I)`` (``(C, J, I)`` for 2D), a view."""
    a = np.asarray(array)
    if a.ndim != 4:
        raise ValueError(f"expected a (C, I, J, K) array, got shape {a.shape}")
    if ndim == 2:
        if a.shape[3] != 1:
            raise ValueError(f"a 2D lesion bank needs images of shape (C, I, J, 1), got {a.shape}")
        return a[..., 0].transpose(0, 2, 1)
    return a.transpose(0, 3, 2, 1)


def from_engine(array: np.ndarray, ndim: int = 3) -> np.ndarray:
    """Inverse of :func:`to_engine` (a view)."""
    a = np.asarray(array)
    if ndim == 2:
        return a.transpose(0, 2, 1)[..., None]
    return a.transpose(0, 3, 2, 1)
