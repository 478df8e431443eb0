"""Shared helpers for the core tests: geometries, random images, plain SimpleITK writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from napari_lesionmix.core.geometry import Geometry


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_geometry(ndim: int = 3) -> Geometry:
    """Oblique, anisotropic, LPS-flipped (non-RAS) geometry with awkward float64 values."""
    if ndim == 3:
        d = rotation(0.2, -0.15, 0.3) @ np.diag([-1.0, -1.0, 1.0])
        return Geometry(
            (0.7123456789, 0.93, 2.5000001), (-123.456789012, 45.6789, -7.000001), tuple(d.ravel())
        )
    t = 0.3
    d = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.diag([-1.0, 1.0])
    return Geometry((0.7123456789, 1.93), (-123.456789012, 45.6789), tuple(d.ravel()))


def lps_geometry() -> Geometry:
    """Axis-aligned, flipped x and y (LPS in a RAS world), anisotropic."""
    return Geometry((0.75, 0.75, 3.0), (100.25, -50.5, 12.0), (-1, 0, 0, 0, -1, 0, 0, 0, 1))


def rng_image(shape, dtype=np.int16, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.normal(size=shape) * 100).astype(dtype)
    return rng.integers(-1000, 1000, size=shape).astype(dtype)


def rng_labels(shape, seed=1, n=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=shape).astype(np.uint8)


def sitk_write(arr, geom: Geometry, path, **kw) -> Path:
    """Write with plain SimpleITK (independent of write_image)."""
    img = sitk.GetImageFromArray(arr, isVector=kw.pop("is_vector", False))
    img.SetSpacing(geom.spacing)
    img.SetOrigin(geom.origin)
    img.SetDirection(geom.direction)
    sitk.WriteImage(img, str(path), **kw)
    return Path(path)


def assert_geometry_close(a: Geometry, b: Geometry, ext: str) -> None:
    """Exact for MetaImage, ~1 ulp for NRRD, float32 precision for NIfTI."""
    if ext in (".mha", ".mhd"):
        assert a == b
    elif ext in (".nrrd", ".nhdr"):
        assert a.origin == b.origin
        np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-15, atol=0)
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-15)
    else:
        np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-7, atol=0)
        np.testing.assert_allclose(a.origin, b.origin, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-6)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]
