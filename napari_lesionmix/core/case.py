"""Cases: image channels, a label map and their physical geometry; reading and writing.

Arrays are in numpy order, ``(z, y, x)`` in 3D and ``(y, x)`` in 2D. SimpleITK keeps
spacing, origin and direction in ``(x, y[, z])`` order; :class:`Geometry` stores them in
that order, exactly as SimpleITK reports them (float64), and converts where needed.

Files are read and written through SimpleITK: NIfTI (``.nii``, ``.nii.gz``), NRRD
(``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) and DICOM series (a folder).

Geometry precision by format (measured with SimpleITK 2.5, see ``tests/core/test_case.py``):

- MetaImage (``.mha``, ``.mhd``): spacing, origin and direction round-trip bit for bit.
- NRRD (``.nrrd``, ``.nhdr``): origin bit for bit; spacing and direction within a few
  units in the last place (about 1e-16), because NRRD stores ``direction × spacing``
  column vectors and the reader divides them back out.
- NIfTI (``.nii``, ``.nii.gz``): the header stores geometry as float32 (pixdim, qform
  quaternion, sform rows), so values are rounded to float32: relative error up to about
  6e-8 on spacing and origin (e.g. an origin of -123.456789012 comes back as
  -123.45678710937...; about 2e-6 mm), and about 2e-8 on an oblique direction. Values
  that are exact in float32 (0.75, 2.5, -120.5, axis-aligned directions) round-trip
  exactly. Each further NIfTI write/read cycle stays within the same float32 precision
  (an oblique direction can move by ~1e-8 per cycle as the qform quaternion is
  recomputed). Comparisons between files therefore use :meth:`Geometry.matches` with
  ``rtol = atol = 1e-5``.

Truncated files and NaN: ITK 5.4's NIfTI reader reads a truncated ``.nii`` or
``.nii.gz`` *without an error* (missing voxels come back as garbage or 0), and it
silently replaces NaN and ±Inf by 0 (ITK PR #6683 fixes this for ITK 6).
:func:`read_image` therefore checks NIfTI files itself: an uncompressed ``.nii`` against
the size its header requires; a ``.nii.gz`` by decompressing the whole gzip stream in
chunks with Python's zlib (CRC-32 and length verified, output discarded after scanning)
in a background thread while SimpleITK reads the same file. Float voxels are scanned
for NaN/Inf in the same pass and put back into the returned array. NRRD and MetaImage
readers already raise on truncated data and keep NaN. The cost is Python's zlib speed
(stock zlib, slower than the zlib-ng ITK uses): on 2 cores, a 160×256×256 int16
``.nii.gz`` reads in 0.29 s instead of 0.13 s, a float32 one in 0.55 s instead of 0.09 s.
"""

from __future__ import annotations

import math
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .io_utils import atomic_path

__all__ = [
    "CaseError",
    "Geometry",
    "Case",
    "read_image",
    "write_image",
    "label_dtype",
    "IMAGE_SUFFIXES",
]

#: File name endings that :func:`read_image` and :func:`write_image` know by name.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

_ALIGN_TOL = 1e-6
_MAX_MSG = 300


class CaseError(ValueError):
    """A case or image file is unreadable or invalid. The message names the file(s)."""


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------


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

    # -- napari ------------------------------------------------------------------------
    def napari_scale(self) -> tuple[float, ...]:
        """Layer ``scale`` for napari: the spacing in array order."""
        return tuple(self.spacing[::-1])

    def napari_translate(self) -> tuple[float, ...]:
        """Layer ``translate`` for napari: the origin in array order.

        This is the physical position of voxel 0 only when the direction is the
        identity (napari has no direction). For another direction it is still the origin
        reversed; the caller should warn that the display is not in physical space
        (see :attr:`is_axis_aligned`) and keep the full geometry in layer metadata.
        """
        return tuple(self.origin[::-1])


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _short_sitk_message(exc: BaseException) -> str:
    """SimpleITK's error text without source paths, object addresses and repeats."""
    lines = []
    for line in str(exc).splitlines():
        line = line.strip()
        if not line or line.startswith("Exception thrown in SimpleITK"):
            continue
        line = re.sub(r"^ITK ERROR:\s*", "", line)
        line = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", line)
        line = re.sub(r"^\S+\.(cxx|h|hxx|cpp):\d+:\s*", "", line)
        if line and line not in lines:
            lines.append(line)
    msg = " ".join(lines) or type(exc).__name__
    return msg if len(msg) <= _MAX_MSG else msg[: _MAX_MSG - 3] + "..."


def _lower_name(path: Path) -> str:
    return path.name.lower()


def _is_nifti(path: Path) -> bool:
    n = _lower_name(path)
    return n.endswith(".nii") or n.endswith(".nii.gz")


class _NiftiHeader:
    """The few NIfTI-1/2 header fields the integrity checks need."""

    def __init__(self, need: int, vox_offset: int, dtype: np.dtype | None, count: int):
        self.need = need  # bytes a complete single file holds
        self.vox_offset = vox_offset
        self.dtype = dtype  # float dtype of the stored voxels, else None
        self.count = count  # number of stored values


_NIFTI_FLOAT = {16: "f4", 64: "f8"}


def _parse_nifti_header(head: bytes) -> _NiftiHeader | None:
    """Parse a single-file NIfTI-1/2 header; None if unknown or not single-file."""
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            if head[344:347] != b"n+1":
                return None  # .hdr/.img pair or not NIfTI: data lives elsewhere
            dims = struct.unpack(endian + "8h", head[40:56])
            datatype, bitpix = struct.unpack(endian + "hh", head[70:74])
            vox_offset = struct.unpack(endian + "f", head[108:112])[0]
        elif len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            if head[4:7] != b"n+2":
                return None
            datatype, bitpix = struct.unpack(endian + "hh", head[12:16])
            dims = struct.unpack(endian + "8q", head[16:80])
            vox_offset = struct.unpack(endian + "q", head[168:176])[0]
        else:
            continue
        n = dims[0]
        if not 1 <= n <= 7 or bitpix <= 0 or not math.isfinite(vox_offset):
            return None
        count = 1
        for d in dims[1 : n + 1]:
            count *= max(int(d), 1)
        code = _NIFTI_FLOAT.get(int(datatype))
        dtype = np.dtype(endian + code) if code else None
        return _NiftiHeader(
            int(vox_offset) + count * int(bitpix) // 8, int(vox_offset), dtype, count
        )
    return None


class _NiftiScan:
    """Stream a NIfTI file's bytes: measure its length and find non-finite floats.

    ITK 5.4's NIfTI reader silently replaces NaN and ±Inf by 0 (fixed upstream for
    ITK 6, InsightSoftwareConsortium/ITK#6683), so they are found here in the raw bytes.
    """

    def __init__(self) -> None:
        self.total = 0
        self.head = b""
        self.header: _NiftiHeader | None = None
        self._pending: bytes | None = b""  # bytes kept until the header is parsed
        self._carry = b""
        self._index: list[np.ndarray] = []
        self._values: list[np.ndarray] = []

    def feed(self, data: bytes) -> None:
        """Account for the next ``data`` bytes of the (decompressed) file."""
        if not data:
            return
        start = self.total
        self.total += len(data)
        if self._pending is not None:
            self._pending += data
            if len(self._pending) < 540:
                return
            self._parse()
            return
        self._data(data, start)

    def finish(self) -> None:
        """Call after the last :meth:`feed` (handles files shorter than 540 bytes)."""
        if self._pending is not None:
            self._parse()

    def _parse(self) -> None:
        data, self._pending = self._pending, None
        self.head = data[:540]
        self.header = _parse_nifti_header(self.head)
        self._data(data, 0)

    def _data(self, data: bytes, start: int) -> None:
        h = self.header
        if h is None or h.dtype is None:
            return
        lo = max(start, h.vox_offset)
        if lo >= start + len(data):
            return
        size = h.dtype.itemsize
        buf = self._carry + data[lo - start :]
        first = (lo - len(self._carry) - h.vox_offset) // size
        n = len(buf) // size
        self._carry = buf[n * size :]
        if not n:
            return
        vals = np.frombuffer(buf, dtype=h.dtype, count=n)
        bad = ~np.isfinite(vals)
        if bad.any():
            where = np.flatnonzero(bad)
            where = where[where + first < h.count]
            self._index.append(where + first)
            self._values.append(vals[where].astype(h.dtype.newbyteorder("=")))

    def nonfinite(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat (C-order, z-y-x) indices and values of non-finite voxels."""
        if not self._index:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(self._index), np.concatenate(self._values)


def _scan_gzip(path: Path, chunk: int = 1 << 20) -> tuple[str | None, _NiftiScan]:
    """Decompress a gzip NIfTI in chunks (output scanned, then discarded).

    Returns
    -------
    problem : str or None
        None if every gzip member is complete (zlib checks the CRC-32 and length).
    scan : _NiftiScan
    """
    wbits = 16 + zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    scan = _NiftiScan()
    try:
        with open(path, "rb") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                while data:
                    scan.feed(d.decompress(data, 1 << 22))
                    data = d.unconsumed_tail
                    if d.eof:
                        rest = d.unused_data + data
                        if rest.strip(b"\x00"):  # another gzip member follows
                            d = zlib.decompressobj(wbits)
                            data = rest
                        else:
                            data = b""
    except zlib.error as exc:
        return f"corrupt gzip data ({exc})", scan
    scan.finish()
    if not d.eof:
        return f"truncated gzip stream (ends after {scan.total} decompressed bytes)", scan
    return None, scan


def _scan_file(path: Path, chunk: int = 1 << 22) -> _NiftiScan:
    """Scan an uncompressed ``.nii``: its size always, its voxels only if they are float."""
    scan = _NiftiScan()
    size = path.stat().st_size
    with open(path, "rb") as f:
        scan.feed(f.read(540))
        scan.finish()
        h = scan.header
        if h is None or h.dtype is None:
            scan.total = size  # integer data: the length check is all that is needed
            return scan
        while True:
            data = f.read(chunk)
            if not data:
                break
            scan.feed(data)
    return scan


class _Background:
    """Run one function in a daemon thread; ``result()`` joins and returns or re-raises."""

    def __init__(self, fn, *args):
        self._out: list = []
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._out.append((True, fn(*args)))
        except BaseException as exc:  # pragma: no cover - re-raised in result()
            self._out.append((False, exc))

    def result(self):
        self._thread.join()
        ok, value = self._out[0]
        if not ok:
            raise value
        return value


def _check_nifti_scan(path: Path, scan: _NiftiScan, what: str) -> None:
    h = scan.header
    if h is not None and scan.total < h.need:
        raise CaseError(
            f"{path}: truncated NIfTI file: the header needs {h.need} bytes, the {what} "
            f"has {scan.total}"
        )


def _read_dicom_series(path: Path, series_id: str | None) -> sitk.Image:
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
    except RuntimeError as exc:
        raise CaseError(
            f"{path}: cannot scan the folder for DICOM: {_short_sitk_message(exc)}"
        ) from None
    ids = list(ids)
    if not ids:
        raise CaseError(f"{path}: folder holds no DICOM series (and is not an image file)")
    if series_id is None:
        if len(ids) > 1:
            raise CaseError(
                f"{path}: folder holds {len(ids)} DICOM series; choose one with series_id: "
                + ", ".join(ids)
            )
        series_id = ids[0]
    elif series_id not in ids:
        raise CaseError(
            f"{path}: no DICOM series {series_id!r} in the folder; found: " + ", ".join(ids)
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise CaseError(
            f"{path}: cannot read DICOM series {series_id}: {_short_sitk_message(exc)}"
        ) from None


def read_image(
    path: str | Path, *, series_id: str | None = None
) -> tuple[np.ndarray, Geometry, str]:
    """Read one image file or DICOM series folder.

    Parameters
    ----------
    path : path-like
        A NIfTI, NRRD, MetaImage (or other SimpleITK-readable) file, or a folder
        holding a DICOM series.
    series_id : str, optional
        For a folder with several DICOM series, the SeriesInstanceUID to read.

    Returns
    -------
    array : ndarray
        Voxel values in array order ``(z, y, x)`` / ``(y, x)``, the file's dtype.
    geometry : Geometry
        Spacing, origin and direction exactly as SimpleITK reports them.
    dtype : str
        The numpy dtype name of the stored values (e.g. ``"int16"``).

    Raises
    ------
    CaseError
        Missing or unreadable file, truncated NIfTI, no or several DICOM series, a
        vector (multi-component) image, or an image that is not 2D or 3D. The message
        names the file.
    """
    path = Path(path)
    if not path.exists():
        raise CaseError(f"{path}: file not found")
    scan = None
    if path.is_dir():
        img = _read_dicom_series(path, series_id)
    else:
        name = _lower_name(path)
        check = _Background(_scan_gzip, path) if name.endswith(".nii.gz") else None
        try:
            img = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            if check is not None:
                problem = check.result()[0]
                if problem:
                    raise CaseError(f"{path}: {problem}") from None
            raise CaseError(f"{path}: cannot read the file: {_short_sitk_message(exc)}") from None
        scan = None
        if check is not None:
            problem, scan = check.result()
            if problem:
                raise CaseError(f"{path}: {problem}")
            _check_nifti_scan(path, scan, "decompressed data")
        elif name.endswith(".nii"):
            scan = _scan_file(path)
            _check_nifti_scan(path, scan, "file")
    size = img.GetSize()
    if img.GetNumberOfComponentsPerPixel() > 1:
        raise CaseError(
            f"{path}: vector image with {img.GetNumberOfComponentsPerPixel()} components per "
            f"voxel (size {size}); store each channel in its own scalar file"
        )
    if img.GetDimension() not in (2, 3):
        raise CaseError(
            f"{path}: {img.GetDimension()}D image of size {size} (x, y, z, ...); only 2D and "
            "3D images are supported (store each channel or time point in its own file)"
        )
    arr = sitk.GetArrayFromImage(img)
    if scan is not None:
        idx, values = scan.nonfinite()
        if idx.size and arr.dtype.kind == "f" and idx.max() < arr.size:
            arr.reshape(-1)[idx] = values  # restore what ITK's NIfTI reader zeroed
    return arr, Geometry.from_sitk(img), arr.dtype.name


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def label_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned integer dtype (uint8, uint16, uint32) that holds ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label value {max_value} does not fit in uint32")


def _cast_to(array: np.ndarray, dtype: Any) -> np.ndarray:
    """Cast to ``dtype``; for integer types round and clip to the type's range first."""
    dt = np.dtype(dtype)
    if array.dtype == dt:
        return array
    if dt.kind in "iu" and array.dtype.kind == "f":
        info = np.iinfo(dt)
        out = np.rint(array)
        np.clip(out, info.min, info.max, out=out)
        return out.astype(dt)
    if dt.kind in "iu" and array.dtype.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(array, info.min, info.max).astype(dt)
    if dt.kind == "b":
        return array != 0
    return array.astype(dt)


def write_image(
    array: np.ndarray,
    geometry: Geometry,
    path: str | Path,
    overwrite: bool = False,
    *,
    compress: bool | None = None,
    compression_level: int | None = None,
) -> None:
    """Write an array with its geometry, atomically.

    The file is written to a temporary name in the same folder (same extension, so
    SimpleITK picks the same format) and renamed onto ``path`` only when complete.

    Parameters
    ----------
    array : ndarray
        Values in array order; written in its own dtype (bool is written as uint8).
    geometry : Geometry
        Must have ``geometry.ndim == array.ndim``.
    path : path-like
        Target file; the extension chooses the format.
    overwrite : bool
        If False and ``path`` exists, raise :class:`FileExistsError` naming it.
    compress : bool, optional
        Compress the voxel data. Default: True for ``.nii.gz``, else False.
    compression_level : int, optional
        zlib level 1 (fast) to 9 (small); default SimpleITK's. Implies compression.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    CaseError
        The array and geometry disagree, or SimpleITK cannot write the file.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim != geometry.ndim:
        raise CaseError(
            f"{path}: array is {array.ndim}D (shape {array.shape}) but geometry is {geometry.ndim}D"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if compression_level is not None:
        if not 1 <= int(compression_level) <= 9:
            raise ValueError(f"compression_level must be 1..9, got {compression_level}")
        compress = True
    if compress is None:
        compress = _lower_name(path).endswith(".nii.gz")
    img = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=False)
    geometry.apply_to(img)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; refusing to overwrite it")
    # ITK's NIfTI writer ignores SetCompressionLevel: for .nii.gz with an explicit
    # level, SimpleITK writes an uncompressed .nii and Python's gzip compresses it.
    gzip_self = compression_level is not None and _lower_name(path).endswith(".nii.gz")
    with atomic_path(path, overwrite=overwrite) as tmp:
        target = tmp.with_name(tmp.name[:-3]) if gzip_self else tmp
        writer = sitk.ImageFileWriter()
        writer.SetFileName(str(target))
        writer.SetUseCompression(bool(compress) and not gzip_self)
        if compression_level is not None and hasattr(writer, "SetCompressionLevel"):
            writer.SetCompressionLevel(int(compression_level))
        try:
            try:
                writer.Execute(img)
            except RuntimeError as exc:
                raise CaseError(
                    f"{path}: cannot write the file: {_short_sitk_message(exc)}"
                ) from None
            if gzip_self:
                _gzip_file(target, tmp, int(compression_level))
        except BaseException:
            _remove_detached_data(tmp)
            raise
        finally:
            if gzip_self:
                target.unlink(missing_ok=True)
        # A .mhd/.nhdr header names its data file after the temporary name: give the
        # data file its final name and point the header at it, then rename the header.
        _move_detached_data(tmp, path)


def _gzip_file(src: Path, dst: Path, level: int, chunk: int = 1 << 22) -> None:
    """Compress ``src`` into ``dst`` (gzip, ``level`` 1..9), streaming in chunks."""
    import gzip

    with open(src, "rb") as fin, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) as gz:
            while True:
                data = fin.read(chunk)
                if not data:
                    break
                gz.write(data)


def _remove_detached_data(tmp: Path) -> None:
    """Remove data files SimpleITK wrote beside a temporary detached header."""
    ext = tmp.suffix.lower()
    if ext not in (".mhd", ".nhdr"):
        return
    stem = tmp.name[: -len(ext)]
    for other in tmp.parent.glob(stem + ".*"):
        if other != tmp and other.name[len(stem) :].lower() in (".raw", ".zraw", ".raw.gz"):
            other.unlink(missing_ok=True)


_DETACHED = {".mhd": ("ElementDataFile",), ".nhdr": ("data file", "datafile")}


def _move_detached_data(tmp: Path, path: Path) -> None:
    """For ``.mhd``/``.nhdr``, rename the data file and point the header at it.

    SimpleITK writes ``<tmp stem>.raw`` (or ``.zraw``/``.raw.gz``) beside a detached
    header. The data file is renamed to ``<final stem>.<ext>`` (replacing an old one) and
    the header rewritten to name it, before the header itself is renamed into place.
    """
    ext = path.suffix.lower()
    if ext not in _DETACHED:
        return
    text = tmp.read_text(errors="surrogateescape")
    keys = _DETACHED[ext]
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        key, sep, value = line.partition("=" if ext == ".mhd" else ":")
        if sep and key.strip().lower() in {k.lower() for k in keys}:
            old_name = value.strip()
            if old_name.upper() in ("LOCAL", "LIST"):
                return
            old = tmp.parent / old_name
            tmp_stem = tmp.name[: -len(ext)]
            final_stem = path.name[: -len(ext)]
            if not old_name.startswith(tmp_stem) or not old.exists():
                return
            new_name = final_stem + old_name[len(tmp_stem) :]
            os.replace(old, tmp.parent / new_name)
            eol = "\n" if line.endswith("\n") else ""
            sep_out = " = " if ext == ".mhd" else ": "
            lines[i] = f"{key.rstrip()}{sep_out}{new_name}{eol}"
            tmp.write_text("".join(lines), errors="surrogateescape")
            return


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _validate_image(arr: np.ndarray, where: str) -> np.ndarray:
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


def _validate_labels(arr: np.ndarray, where: str, allowed_labels: set | None = None) -> np.ndarray:
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
        present = _unique_values(out)
        extra = sorted(present - allowed)
        if extra:
            raise CaseError(
                f"{where}: label value(s) {extra} are not among the allowed labels "
                f"{sorted(allowed)}"
            )
    return out


def _unique_values(labels: np.ndarray) -> set[int]:
    if labels.size == 0:
        return set()
    if labels.dtype.kind == "u" and labels.dtype.itemsize <= 2:
        return {int(v) for v in np.flatnonzero(np.bincount(labels.ravel()))}
    return {int(v) for v in np.unique(labels)}


def _same_grid(
    shape_a: tuple, geom_a: Geometry, name_a: str, shape_b: tuple, geom_b: Geometry, name_b: str
) -> None:
    if tuple(shape_a) != tuple(shape_b):
        raise CaseError(
            f"{name_a} and {name_b} have different shapes: array shape {tuple(shape_a)} vs "
            f"{tuple(shape_b)}"
        )
    diff = geom_a.difference(geom_b)
    if diff:
        raise CaseError(f"{name_a} and {name_b} have different geometry: {diff}")


_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


def _stem(path: str | Path) -> str:
    name = Path(path).name
    for ext in IMAGE_SUFFIXES:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem if "." in name else name


# --------------------------------------------------------------------------------------
# Case
# --------------------------------------------------------------------------------------


@dataclass
class Case:
    """One subject: image channels, a label map and their geometry.

    Parameters
    ----------
    channels : ndarray, float32, shape (C, *spatial)
        Co-registered image channels in array order.
    labels : ndarray, integer, shape spatial
        Label map (0 = background); unsigned integer after :meth:`read`.
    geometry : Geometry
        Physical geometry shared by every channel and the labels.
    name : str
        Case name (used in messages and output names).
    channel_names : list of str
        Default ``["0", "1", ...]``.
    placement : ndarray of bool, optional
        Where lesions may be placed (non-zero in the placement file).
    image_paths : list of str
        Files the channels came from (for messages); empty for in-memory cases.
    label_path : str, optional
        File the labels came from.
    image_dtypes : list of str
        Source dtype of each channel; :meth:`write` writes channels back in it.

    Notes
    -----
    Construct with :meth:`read` or :meth:`from_arrays`, which validate values. The
    plain constructor only checks shapes and fills defaults.
    """

    channels: np.ndarray
    labels: np.ndarray
    geometry: Geometry
    name: str = "case"
    channel_names: list[str] = field(default_factory=list)
    placement: np.ndarray | None = None
    image_paths: list[str] = field(default_factory=list)
    label_path: str | None = None
    image_dtypes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.channels = np.asarray(self.channels)
        if self.channels.dtype != np.float32:
            self.channels = self.channels.astype(np.float32)
        self.labels = np.asarray(self.labels)
        where = f"case {self.name!r}"
        if self.channels.ndim != self.labels.ndim + 1:
            raise CaseError(
                f"{where}: channels must have shape (C, *spatial) with spatial = labels "
                f"shape; got channels {self.channels.shape}, labels {self.labels.shape}"
            )
        if self.channels.shape[1:] != self.labels.shape:
            raise CaseError(
                f"{where}: channels spatial shape {self.channels.shape[1:]} differs from "
                f"labels shape {self.labels.shape}"
            )
        if self.labels.ndim != self.geometry.ndim:
            raise CaseError(
                f"{where}: arrays are {self.labels.ndim}D but geometry is {self.geometry.ndim}D"
            )
        if self.labels.dtype.kind not in "iu":
            raise CaseError(f"{where}: labels must be an integer array, got {self.labels.dtype}")
        if self.placement is not None:
            self.placement = np.asarray(self.placement, dtype=bool)
            if self.placement.shape != self.labels.shape:
                raise CaseError(
                    f"{where}: placement shape {self.placement.shape} differs from labels "
                    f"shape {self.labels.shape}"
                )
        c = self.channels.shape[0]
        if not self.channel_names:
            self.channel_names = [str(i) for i in range(c)]
        if not self.image_dtypes:
            self.image_dtypes = ["float32"] * c
        if len(self.channel_names) != c or len(self.image_dtypes) != c:
            raise CaseError(
                f"{where}: {c} channel(s) but {len(self.channel_names)} channel name(s) and "
                f"{len(self.image_dtypes)} image dtype(s)"
            )
        self.image_paths = [str(p) for p in self.image_paths]
        if self.label_path is not None:
            self.label_path = str(self.label_path)

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def read(
        cls,
        image_paths: str | Path | list,
        label_path: str | Path | None,
        name: str | None = None,
        placement_path: str | Path | None = None,
        allowed_labels: set | None = None,
        expect_ndim: int | None = None,
        *,
        series_id: str | None = None,
        channel_names: list[str] | None = None,
    ) -> Case:
        """Read and validate a case from files.

        Parameters
        ----------
        image_paths : path-like or list of path-like
            One file (or DICOM folder) per channel, all on the same grid.
        label_path : path-like or None
            The label map; None gives an all-zero label map.
        name : str, optional
            Default: the label file's name without extension, else the first image's
            without extension and without an nnU-Net channel suffix (``_0000``).
        placement_path : path-like, optional
            A placement mask on the same grid (non-zero = lesions allowed).
        allowed_labels : set of int, optional
            If given, any other label value is an error.
        expect_ndim : int, optional
            If given (2 or 3), an image of another dimension is an error.
        series_id : str, optional
            DICOM SeriesInstanceUID for folders holding several series.
        channel_names : list of str, optional
            Default ``["0", "1", ...]``.

        Returns
        -------
        Case

        Raises
        ------
        CaseError
            Missing, unreadable or truncated files; shape or geometry mismatch between
            channels, labels or placement; NaN/Inf in an image; labels that are not
            whole, negative or not allowed; a 4D or vector image; an unexpected
            dimension. The message names the file(s).
        """
        if isinstance(image_paths, (str, Path)):
            image_paths = [image_paths]
        image_paths = [Path(p) for p in image_paths]
        if not image_paths:
            raise CaseError("Case.read: no image files given")

        def load(p: Path) -> tuple[np.ndarray, Geometry, str]:
            arr, geom, dt = read_image(p, series_id=series_id)
            if expect_ndim is not None and arr.ndim != expect_ndim:
                raise CaseError(
                    f"{p}: expected a {expect_ndim}D image, got {arr.ndim}D with array shape "
                    f"{arr.shape}"
                )
            return arr, geom, dt

        channels, dtypes = [], []
        arr0, geom0, dt0 = load(image_paths[0])
        for i, p in enumerate(image_paths):
            if i == 0:
                arr, geom, dt = arr0, geom0, dt0
            else:
                arr, geom, dt = load(p)
                _same_grid(arr0.shape, geom0, str(image_paths[0]), arr.shape, geom, str(p))
            channels.append(_validate_image(arr, str(p)))
            dtypes.append(dt)
        stacked = np.stack(channels) if len(channels) > 1 else channels[0][None]
        del channels

        if label_path is not None:
            label_path = Path(label_path)
            larr, lgeom, _ = load(label_path)
            _same_grid(arr0.shape, geom0, str(image_paths[0]), larr.shape, lgeom, str(label_path))
            labels = _validate_labels(larr, str(label_path), allowed_labels)
        else:
            labels = np.zeros(arr0.shape, dtype=np.uint8)

        placement = None
        if placement_path is not None:
            placement_path = Path(placement_path)
            parr, pgeom, _ = load(placement_path)
            _same_grid(
                arr0.shape, geom0, str(image_paths[0]), parr.shape, pgeom, str(placement_path)
            )
            if parr.dtype.kind == "f" and not np.all(np.isfinite(parr)):
                raise CaseError(f"{placement_path}: placement mask holds NaN or Inf values")
            placement = parr != 0

        if name is None:
            if label_path is not None:
                name = _stem(label_path)
            else:
                name = _CHANNEL_SUFFIX.sub("", _stem(image_paths[0]))
        return cls(
            channels=stacked,
            labels=labels,
            geometry=geom0,
            name=name,
            channel_names=list(channel_names) if channel_names else [],
            placement=placement,
            image_paths=[str(p) for p in image_paths],
            label_path=None if label_path is None else str(label_path),
            image_dtypes=dtypes,
        )

    @classmethod
    def from_arrays(
        cls,
        channels: Any,
        labels: Any = None,
        geometry: Geometry | None = None,
        name: str = "case",
        placement: Any = None,
        *,
        channel_names: list[str] | None = None,
        allowed_labels: set | None = None,
    ) -> Case:
        """Build and validate a case from arrays.

        Parameters
        ----------
        channels : array_like
            ``(C, *spatial)``, or ``(*spatial)`` for a single channel.
        labels : array_like, optional
            Integer (or whole-valued float) label map of shape ``spatial``; default zeros.
        geometry : Geometry, optional
            Default: identity direction, spacing 1, origin 0.
        name : str
            Used in messages.
        placement : array_like, optional
            Placement mask (non-zero = allowed).
        channel_names : list of str, optional
        allowed_labels : set of int, optional

        Returns
        -------
        Case
            ``image_dtypes`` records the dtype of ``channels`` as given.

        Raises
        ------
        CaseError
            Shapes disagree, NaN/Inf in the channels, bad label values.

        Examples
        --------
        >>> case = Case.from_arrays(np.ones((4, 5), np.float32), np.zeros((4, 5), int))
        >>> case.channels.shape, case.ndim
        ((1, 4, 5), 2)
        """
        where = f"case {name!r}"
        ch = np.asarray(channels)
        if labels is None:
            spatial_ndim = geometry.ndim if geometry is not None else ch.ndim
            lab = None
        else:
            lab = np.asarray(labels)
            spatial_ndim = lab.ndim
        if ch.ndim == spatial_ndim:
            ch = ch[None]
        elif ch.ndim != spatial_ndim + 1:
            raise CaseError(
                f"{where}: channels of shape {ch.shape} do not fit {spatial_ndim}D labels; "
                "expected (C, *spatial) or (*spatial)"
            )
        if lab is None:
            lab = np.zeros(ch.shape[1:], dtype=np.uint8)
        if spatial_ndim not in (2, 3):
            raise CaseError(f"{where}: only 2D and 3D cases are supported, got {spatial_ndim}D")
        if ch.shape[1:] != lab.shape:
            raise CaseError(
                f"{where}: channels spatial shape {ch.shape[1:]} differs from labels shape "
                f"{lab.shape}"
            )
        if geometry is None:
            geometry = Geometry.identity(spatial_ndim)
        elif geometry.ndim != spatial_ndim:
            raise CaseError(f"{where}: arrays are {spatial_ndim}D but geometry is {geometry.ndim}D")
        src_dtype = ch.dtype.name if ch.dtype.kind in "iuf" else "float32"
        chf = _validate_image(ch, where)
        if chf is ch:
            chf = ch.copy()
        lab_out = _validate_labels(lab, f"{where} labels", allowed_labels)
        if lab_out is lab:
            lab_out = lab.copy()
        pl = None
        if placement is not None:
            pl = np.asarray(placement) != 0
        return cls(
            channels=chf,
            labels=lab_out,
            geometry=geometry,
            name=name,
            channel_names=list(channel_names) if channel_names else [],
            placement=pl,
            image_dtypes=[src_dtype] * chf.shape[0],
        )

    # -- writing -----------------------------------------------------------------------
    def write(
        self,
        image_paths: list | str | Path | None,
        label_path: str | Path | None,
        overwrite: bool = False,
        *,
        compression_level: int | None = None,
    ) -> None:
        """Write channels (in their source dtypes) and labels, each file atomically.

        Parameters
        ----------
        image_paths : list of path-like, or None
            One path per channel; None writes no images.
        label_path : path-like or None
            Labels are written as the smallest unsigned type holding them (uint8,
            uint16, uint32); None writes no labels.
        overwrite : bool
            If False, every target is checked first and nothing is written if any exists.
        compression_level : int, optional
            zlib level 1..9 for compressed formats (``.nii.gz`` is always compressed).

        Raises
        ------
        FileExistsError
            A target exists and ``overwrite`` is False (nothing is written).
        CaseError
            Wrong number of paths, or SimpleITK cannot write.

        Notes
        -----
        Integer source dtypes are restored by rounding and clipping to the type's range.
        """
        if image_paths is None:
            image_paths = []
        elif isinstance(image_paths, (str, Path)):
            image_paths = [image_paths]
        image_paths = [Path(p) for p in image_paths]
        if image_paths and len(image_paths) != self.n_channels:
            raise CaseError(
                f"case {self.name!r}: {self.n_channels} channel(s) but {len(image_paths)} "
                "image path(s) given"
            )
        targets = list(image_paths) + ([Path(label_path)] if label_path is not None else [])
        if len({str(t.resolve()) for t in targets}) != len(targets):
            raise CaseError(f"case {self.name!r}: the same output path is given twice")
        if not overwrite:
            for t in targets:
                if t.exists():
                    raise FileExistsError(f"{t}: already exists; refusing to overwrite it")
        for i, p in enumerate(image_paths):
            arr = _cast_to(self.channels[i], self.image_dtypes[i])
            write_image(arr, self.geometry, p, overwrite, compression_level=compression_level)
        if label_path is not None:
            lab = self.labels
            if lab.size and lab.min() < 0:
                raise CaseError(f"case {self.name!r}: negative label values cannot be written")
            dt = label_dtype(int(lab.max()) if lab.size else 0)
            write_image(
                lab.astype(dt, copy=False),
                self.geometry,
                label_path,
                overwrite,
                compression_level=compression_level,
            )

    # -- helpers -----------------------------------------------------------------------
    def copy(self) -> Case:
        """Deep copy (arrays and lists copied; geometry is immutable and shared)."""
        return Case(
            channels=self.channels.copy(),
            labels=self.labels.copy(),
            geometry=self.geometry,
            name=self.name,
            channel_names=list(self.channel_names),
            placement=None if self.placement is None else self.placement.copy(),
            image_paths=list(self.image_paths),
            label_path=self.label_path,
            image_dtypes=list(self.image_dtypes),
        )

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the voxel grid in array order."""
        return tuple(self.labels.shape)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return self.labels.ndim

    @property
    def n_channels(self) -> int:
        """Number of image channels."""
        return int(self.channels.shape[0])

    def foreground(self) -> np.ndarray:
        """Boolean foreground: the placement mask if given, else any channel != 0."""
        if self.placement is not None:
            return self.placement.copy()
        return np.any(self.channels != 0, axis=0)

    def intensity_stats(self, region: np.ndarray | None = None) -> np.ndarray:
        """Per-channel mean and std over a region, float64.

        Parameters
        ----------
        region : ndarray of bool, optional
            Default :meth:`foreground`. An empty region gives stats over the whole image.

        Returns
        -------
        ndarray, shape (C, 2)
            ``[:, 0]`` mean, ``[:, 1]`` std, the std floored at ``1e-6·|mean| + 1e-6`` so
            that z-scores never divide by zero.
        """
        if region is None:
            region = self.foreground()
        region = np.asarray(region, dtype=bool)
        if region.shape != self.spatial_shape:
            raise ValueError(
                f"intensity_stats: region shape {region.shape} differs from {self.spatial_shape}"
            )
        out = np.empty((self.n_channels, 2), dtype=np.float64)
        use_all = not region.any()
        for c in range(self.n_channels):
            vals = self.channels[c].ravel() if use_all else self.channels[c][region]
            mean = float(np.mean(vals, dtype=np.float64))
            std = float(np.std(vals, dtype=np.float64))
            out[c] = (mean, max(std, 1e-6 * abs(mean) + 1e-6))
        return out

    def label_values(self) -> set[int]:
        """The set of label values present (including 0 if present)."""
        return _unique_values(self.labels)
