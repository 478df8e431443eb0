"""Slices in the radiological convention, from each file's direction matrix.

An array is first viewed in a canonical order by transposing and flipping its axes (no
resampling, no copy): axis 0 runs inferior → superior, axis 1 anterior → posterior,
axis 2 right → left, i.e. along ITK's physical L, P, S axes (DICOM's LPS). Then:

- axial: anterior up, the patient's right on the screen's left;
- coronal: superior up, the patient's right on the screen's left;
- sagittal: superior up, anterior on the screen's left.

So a file stored with a flipped direction (e.g. an MNI template, diag(−1, −1, 1)) and a
file with the identity direction show the same picture of the same anatomy. A direction
that is not axis-aligned (oblique) is shown along the nearest anatomical axes, not
resampled: :attr:`Orienter.oblique` says so.

Examples
--------
>>> from napari_lesionmix.core.geometry import Geometry
>>> o = Orienter(Geometry((1, 1, 1), (0, 0, 0), (-1, 0, 0, 0, -1, 0, 0, 0, 1)))
>>> o.flips
(False, True, True)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["Orienter", "PLANES", "EDGE_LETTERS"]

#: the three planes and the canonical axis each one fixes
PLANES = {"axial": 0, "coronal": 1, "sagittal": 2}
#: letters at the (top, bottom, left, right) edges of each plane as displayed
EDGE_LETTERS = {"axial": ("A", "P", "R", "L"), "coronal": ("S", "I", "R", "L"),
                "sagittal": ("S", "I", "A", "P")}


class Orienter:
    """How to show arrays of one grid in the radiological convention.

    Parameters
    ----------
    geometry : Geometry
        2D or 3D; a 2D grid is shown as one axial slice.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        d = geometry.direction_matrix  # rows: physical x, y, z; columns: index x, y, z
        n = geometry.ndim
        rows, cols = linear_sum_assignment(-np.abs(d))
        phys_of_index = np.empty(n, int)
        phys_of_index[cols] = rows
        signs = np.sign(d[phys_of_index, np.arange(n)])
        # numpy axis a is sitk index axis n-1-a; canonical axis c is physical axis n-1-c
        self.axes = tuple(int(n - 1 - np.where(phys_of_index == n - 1 - c)[0][0])
                          for c in range(n))
        self.flips = tuple(bool(signs[n - 1 - a] < 0) for a in self.axes)
        self.spacing = tuple(float(geometry.spacing_zyx[a]) for a in self.axes)
        self.oblique = not geometry.is_axis_aligned

    # ------------------------------------------------------------------ arrays
    def array(self, a: np.ndarray) -> np.ndarray:
        """The canonical view of a spatial array (leading channel axes allowed)."""
        lead = a.ndim - len(self.axes)
        out = np.transpose(a, tuple(range(lead)) + tuple(lead + x for x in self.axes))
        flip = tuple(lead + c for c, f in enumerate(self.flips) if f)
        return np.flip(out, flip) if flip else out

    def point(self, index_zyx, shape) -> tuple:
        """Canonical index of an array index of a grid of ``shape`` (spatial)."""
        idx = np.asarray(index_zyx, float)
        out = []
        for c, a in enumerate(self.axes):
            v = idx[a]
            out.append(float(shape[a] - 1 - v) if self.flips[c] else float(v))
        return tuple(out)

    def box(self, bbox, shape) -> tuple:
        """Canonical slices of an array bounding box."""
        out = []
        for c, a in enumerate(self.axes):
            s = bbox[a]
            out.append(slice(shape[a] - s.stop, shape[a] - s.start) if self.flips[c]
                       else slice(s.start, s.stop))
        return tuple(out)

    # ------------------------------------------------------------------ slices
    def plane(self, canon: np.ndarray, plane: str, point) -> np.ndarray:
        """The 2D picture of ``plane`` through canonical ``point``, ready for
        ``imshow(origin="upper")`` (rows top to bottom, columns left to right)."""
        if canon.ndim == 2:
            return canon
        k = int(np.clip(round(point[PLANES[plane]]), 0, canon.shape[PLANES[plane]] - 1))
        if plane == "axial":
            return canon[k]
        if plane == "coronal":
            return canon[::-1, k, :]
        return canon[::-1, :, k]

    def plane_point(self, plane: str, point, shape) -> tuple:
        """(row, column) of canonical ``point`` in :meth:`plane`'s picture; ``shape`` is
        the canonical array's."""
        if len(shape) == 2:
            return float(point[0]), float(point[1])
        z, y, x = point
        if plane == "axial":
            return float(y), float(x)
        if plane == "coronal":
            return float(shape[0] - 1 - z), float(x)
        return float(shape[0] - 1 - z), float(y)

    def pixel_size(self, plane: str) -> tuple:
        """(row, column) spacing in mm of :meth:`plane`'s picture."""
        if len(self.spacing) == 2:
            return self.spacing
        z, y, x = self.spacing
        return {"axial": (y, x), "coronal": (z, x), "sagittal": (z, y)}[plane]
