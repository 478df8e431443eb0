"""Reading and writing image files: one array and its :class:`Geometry` per file.

Files are read and written through SimpleITK: NIfTI (``.nii``, ``.nii.gz``), NRRD
(``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) and DICOM series (a folder).

Geometry precision by format (measured with SimpleITK 2.5, see
``tests/core/test_image_io.py``):

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
``.nii.gz`` without an error and silently replaces NaN and ±Inf by 0, so
:func:`read_image` checks NIfTI files itself (see
:mod:`napari_lesionmix.core.nifti_check` for how, and what it costs). NRRD and MetaImage
readers already raise on truncated data and keep NaN.

Writing is atomic (a temporary name in the same folder, renamed when complete); for a
detached header (``.mhd``, ``.nhdr``) the data file is renamed too and the header
rewritten to name it.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import CaseError
from .geometry import Geometry
from .io_utils import atomic_path
from .nifti_check import check_nifti_scan, quick_gzip_check, scan_file, scan_gzip

__all__ = [
    "read_image",
    "write_image",
    "label_dtype",
    "cast_to",
]

_MAX_MSG = 300


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
        full_scan = name.endswith(".nii.gz") and not quick_gzip_check(path)
        check = _Background(scan_gzip, path) if full_scan else None
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
            check_nifti_scan(path, scan, "decompressed data")
        elif name.endswith(".nii"):
            scan = scan_file(path)
            check_nifti_scan(path, scan, "file")
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


def cast_to(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` in ``dtype``: to an integer type, rounded and clipped to its range first.

    What writing a float channel back in its source's integer type does, and what a
    napari layer of an integer type shows of a float result.

    Examples
    --------
    >>> cast_to(np.array([-1.6, 0.5, 1.5, 300.0]), np.uint8).tolist()
    [0, 0, 2, 255]
    """
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


def label_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned integer dtype (uint8, uint16, uint32) that holds ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label value {max_value} does not fit in uint32")


def write_image(
    array: np.ndarray,
    geometry: Geometry,
    path: str | Path,
    overwrite: bool = False,
    *,
    compress: bool | None = None,
    compression_level: int | None = None,
    tmp_dir: str | Path | None = None,
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
    tmp_dir : path-like, optional
        Folder for the temporary file (same file system); ignored for ``.mhd``/``.nhdr``,
        whose detached data file must sit beside its header.

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
    detached = _lower_name(path).endswith((".mhd", ".nhdr"))
    with atomic_path(path, overwrite=overwrite, tmp_dir=None if detached else tmp_dir) as tmp:
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
    try:  # zlib-ng compresses several times faster at the same level and format
        from zlib_ng import gzip_ng as gzip
    except ImportError:  # pragma: no cover
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
