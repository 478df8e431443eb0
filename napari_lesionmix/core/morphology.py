"""Binary dilation and erosion by the unit cube or cross, by shifted ORs and ANDs.

The engine grows and shrinks small lesion masks many times per operation (the inpaint
region, the rings around a lesion, the blend and guard masks). On such patches
:func:`scipy.ndimage.binary_dilation` spends most of its time on set-up per call; these
give the same arrays (the outside of the array counts as False, as scipy's default
``border_value=0``) with a few array slices per axis:

- ``full`` connectivity (the 3x3(x3) cube): dilating ``n`` times is one dilation by the
  cube of side ``2n + 1``, which is separable, so each axis is grown by ``n`` in turn;
- ``face`` connectivity (the cross): each step ORs the mask shifted by one voxel along
  every axis.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dilate", "erode"]


def _check(connectivity: str) -> None:
    if connectivity not in ("full", "face"):
        raise ValueError(f"connectivity: {connectivity!r} is not 'full' or 'face'")


def _grow_axis(src: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``src`` ORed with itself shifted by 1..n voxels both ways along ``axis``."""
    out = src.copy()
    size = src.shape[axis]
    lead = (slice(None),) * axis
    for k in range(1, min(n, size - 1) + 1):
        out[lead + (slice(k, None),)] |= src[lead + (slice(None, size - k),)]
        out[lead + (slice(None, size - k),)] |= src[lead + (slice(k, None),)]
    return out


def dilate(mask: np.ndarray, iterations: int = 1, connectivity: str = "full") -> np.ndarray:
    """``mask`` dilated ``iterations`` times by the unit cube (``full``) or cross
    (``face``); the outside of the array is False. Equal to
    ``ndi.binary_dilation(mask, generate_binary_structure(ndim, ndim or 1), iterations)``
    for ``iterations >= 1``; ``iterations <= 0`` returns a copy (scipy would repeat until
    nothing changes).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(dilate(m).sum()), int(dilate(m, connectivity="face").sum()), int(dilate(m, 2).sum())
    (9, 5, 25)
    """
    _check(connectivity)
    mask = np.asarray(mask, dtype=bool)
    iterations = int(iterations)
    if iterations <= 0 or mask.ndim == 0:
        return mask.copy()
    if connectivity == "full":
        out = mask
        for axis in range(mask.ndim):
            out = _grow_axis(out, axis, iterations)
        return out
    out = mask.copy()
    for _ in range(iterations):
        src = out.copy()
        for axis in range(mask.ndim):
            size = mask.shape[axis]
            if size < 2:
                continue
            lead = (slice(None),) * axis
            out[lead + (slice(1, None),)] |= src[lead + (slice(None, size - 1),)]
            out[lead + (slice(None, size - 1),)] |= src[lead + (slice(1, None),)]
    return out


def erode(mask: np.ndarray, connectivity: str = "face") -> np.ndarray:
    """``mask`` eroded once by the unit cross (``face``) or cube (``full``); the outside of
    the array is False, so voxels on the array's border are removed. Equal to
    ``ndi.binary_erosion(mask, generate_binary_structure(ndim, 1 or ndim))``.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(erode(m).sum()), int(erode(np.ones((2, 2), bool)).sum())
    (1, 0)
    """
    _check(connectivity)
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 0:
        return mask.copy()
    # erosion is the complement of the dilation of the complement, with the outside True
    # for the complement: pad by one True voxel, dilate, cut the pad off
    outside = np.pad(~mask, 1, constant_values=True)
    grown = dilate(outside, 1, connectivity)
    return ~grown[(slice(1, -1),) * mask.ndim]
