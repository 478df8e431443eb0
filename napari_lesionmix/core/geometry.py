"""Physical geometry of a voxel grid: spacing, origin and direction.

Arrays are in numpy order, ``(z, y, x)`` in 3D and ``(y, x)`` in 2D. SimpleITK keeps
spacing, origin and direction in ``(x, y[, z])`` order; :class:`Geometry` stores them in
that order, exactly as SimpleITK reports them (float64), and converts where needed.

How precisely each file format keeps a geometry is described in
:mod:`napari_lesionmix.core.image_io`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

__all__ = ["Geometry"]

_ALIGN_TOL = 1e-6


def _fmt(values: Any) -> str:
    """Format a sequence of floats compactly, e.g. ``(1, 1, 2.5)``."""
    return "(" + ", ".join(f"{float(v):.10g}" for v in np.ravel(values)) + ")"


@dataclass(frozen=True)
class Geometry:
    """Physical geometry of a voxel grid, in SimpleITK order.

    Parameters
    ----------
    spacing : tuple of float
        Voxel size in mm, ``(x, y[, z])`` order.
    origin : tuple of float
        Physical position (mm) of the centre of voxel 0, ``(x, y[, z])`` order.
    direction : tuple of float
        Row-major flattened ``ndim × ndim`` direction cosine matrix, SimpleITK order:
        column ``j`` is the physical direction of index axis ``j`` (x, y, z).

    Notes
    -----
    Values are kept as float64 exactly as given. A point with continuous index
    ``i = (i_x, i_y, i_z)`` is at ``origin + direction @ (spacing * i)``.

    Examples
    --------
    >>> g = Geometry.identity(3, spacing=(1.0, 1.0, 2.0))
    >>> g.spacing_zyx
    array([2., 1., 1.])
    >>> g.index_to_physical([1, 0, 0])
    array([0., 0., 2.])
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    def __post_init__(self) -> None:
        spacing = tuple(float(v) for v in np.ravel(self.spacing))
        origin = tuple(float(v) for v in np.ravel(self.origin))
        direction = tuple(float(v) for v in np.ravel(self.direction))
        n = len(spacing)
        if n not in (2, 3):
            raise ValueError(f"Geometry: only 2D and 3D are supported, got spacing {spacing}")
        if len(origin) != n:
            raise ValueError(f"Geometry: origin {origin} has {len(origin)} values, expected {n}")
        if len(direction) != n * n:
            raise ValueError(
                f"Geometry: direction has {len(direction)} values, expected {n * n} ({n}×{n})"
            )
        if not all(math.isfinite(v) and v > 0 for v in spacing):
            raise ValueError(f"Geometry: spacing must be finite and positive, got {spacing}")
        if not all(math.isfinite(v) for v in origin + direction):
            raise ValueError("Geometry: origin and direction must be finite")
        if abs(np.linalg.det(np.reshape(direction, (n, n)))) < 1e-6:
            raise ValueError(f"Geometry: direction {direction} is singular")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def identity(cls, ndim: int, spacing: Any = None, origin: Any = None) -> Geometry:
        """Identity direction, spacing 1 and origin 0 unless given.

        Parameters
        ----------
        ndim : int
            2 or 3.
        spacing, origin : sequence of float, optional
            In SimpleITK order ``(x, y[, z])``.
        """
        spacing = (1.0,) * ndim if spacing is None else spacing
        origin = (0.0,) * ndim if origin is None else origin
        return cls(tuple(spacing), tuple(origin), tuple(np.eye(ndim).ravel()))

    @classmethod
    def from_sitk(cls, img: sitk.Image) -> Geometry:
        """Geometry of a SimpleITK image (values copied exactly)."""
        return cls(img.GetSpacing(), img.GetOrigin(), img.GetDirection())

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        """Build from :meth:`to_dict` output."""
        try:
            return cls(tuple(d["spacing"]), tuple(d["origin"]), tuple(d["direction"]))
        except KeyError as exc:
            raise ValueError(f"Geometry.from_dict: missing field {exc.args[0]!r}") from None

    def to_dict(self) -> dict:
        """JSON-ready dict with ``spacing``, ``origin`` and ``direction`` lists (float64)."""
        return {
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    def apply_to(self, img: sitk.Image) -> None:
        """Set this geometry on a SimpleITK image in place.

        Raises
        ------
        ValueError
            If the image dimension differs from :attr:`ndim`.
        """
        if img.GetDimension() != self.ndim:
            raise ValueError(
                f"Geometry.apply_to: image is {img.GetDimension()}D, geometry is {self.ndim}D"
            )
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)

    # -- properties --------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self.spacing)

    @property
    def spacing_zyx(self) -> np.ndarray:
        """Spacing in array order (``(z, y, x)`` or ``(y, x)``), float64."""
        return np.array(self.spacing[::-1], dtype=np.float64)

    @property
    def voxel_volume(self) -> float:
        """Voxel volume in mm³ (pixel area in mm² in 2D)."""
        return float(np.prod(self.spacing))

    @property
    def direction_matrix(self) -> np.ndarray:
        """The ``ndim × ndim`` direction matrix (SimpleITK order), float64."""
        return np.array(self.direction, dtype=np.float64).reshape(self.ndim, self.ndim)

    @property
    def is_axis_aligned(self) -> bool:
        """True if the direction is a signed permutation matrix (within 1e-6)."""
        d = self.direction_matrix
        rounded = np.round(d)
        if np.max(np.abs(d - rounded)) > _ALIGN_TOL:
            return False
        a = np.abs(rounded)
        return bool(
            np.all((a == 0) | (a == 1))
            and np.all(a.sum(axis=0) == 1)
            and np.all(a.sum(axis=1) == 1)
        )

    # -- comparison --------------------------------------------------------------------
    def difference(self, other: Geometry, rtol: float = 1e-5, atol: float = 1e-5) -> str | None:
        """Describe how ``other`` differs from this geometry, or None if it matches.

        Parameters
        ----------
        other : Geometry
        rtol, atol : float
            Relative and absolute tolerance on spacing and origin; ``atol`` is the
            absolute tolerance on each direction cosine.

        Returns
        -------
        str or None
            e.g. ``"spacing (1, 1, 2) vs (1, 1, 2.5)"``.
        """
        if self.ndim != other.ndim:
            return f"dimension {self.ndim}D vs {other.ndim}D"
        parts = []
        if not np.allclose(self.spacing, other.spacing, rtol=rtol, atol=atol):
            parts.append(f"spacing {_fmt(self.spacing)} vs {_fmt(other.spacing)}")
        if not np.allclose(self.origin, other.origin, rtol=rtol, atol=atol):
            parts.append(f"origin {_fmt(self.origin)} vs {_fmt(other.origin)}")
        if np.max(np.abs(np.subtract(self.direction, other.direction))) > atol:
            parts.append(f"direction {_fmt(self.direction)} vs {_fmt(other.direction)}")
        return "; ".join(parts) if parts else None

    def matches(self, other: Geometry, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
        """True if ``other`` has the same geometry within tolerance.

        Spacing and origin are compared with ``numpy.allclose(rtol, atol)``; each
        direction cosine must agree within ``atol``.
        """
        return self.difference(other, rtol=rtol, atol=atol) is None

    def describe(self) -> str:
        """One-line summary: ``"spacing (1, 1, 2), origin (...), direction (...)"``."""
        return (
            f"spacing {_fmt(self.spacing)}, origin {_fmt(self.origin)}, "
            f"direction {_fmt(self.direction)}"
        )

    # -- coordinates -------------------------------------------------------------------
    def index_to_physical(self, idx_zyx: Any) -> np.ndarray:
        """Physical points (mm, ``x, y[, z]``) of continuous array indices.

        Parameters
        ----------
        idx_zyx : array_like, shape (..., ndim)
            Indices in array order (``z, y, x``).

        Returns
        -------
        ndarray, shape (..., ndim), float64
            Physical coordinates in SimpleITK order.
        """
        idx = np.asarray(idx_zyx, dtype=np.float64)
        if idx.shape[-1:] != (self.ndim,):
            raise ValueError(f"index_to_physical: last axis must be {self.ndim}, got {idx.shape}")
        scaled = idx[..., ::-1] * np.asarray(self.spacing)
        return scaled @ self.direction_matrix.T + np.asarray(self.origin)

    def physical_to_index(self, pts_xyz: Any) -> np.ndarray:
        """Continuous array indices (``z, y, x``) of physical points.

        Parameters
        ----------
        pts_xyz : array_like, shape (..., ndim)
            Physical coordinates in mm, SimpleITK order (``x, y, z``).

        Returns
        -------
        ndarray, shape (..., ndim), float64
            Continuous indices in array order; round them to get voxel indices.
        """
        pts = np.asarray(pts_xyz, dtype=np.float64)
        if pts.shape[-1:] != (self.ndim,):
            raise ValueError(f"physical_to_index: last axis must be {self.ndim}, got {pts.shape}")
        inv = np.linalg.inv(self.direction_matrix)
        local = (pts - np.asarray(self.origin)) @ inv.T
        return (local / np.asarray(self.spacing))[..., ::-1]
