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
:func:`read_image` takes a NIfTI file's geometry from SimpleITK's header reader and its
voxels from :func:`~napari_lesionmix.core.nifti_check.read_nifti_voxels`, one zlib-ng pass
that checks every gzip CRC-32 and length and keeps NaN (faster than SimpleITK's own
read). NRRD and MetaImage readers already raise on truncated data and keep NaN.

Writing is atomic (a temporary name in the same folder, renamed when complete); for a
detached header (``.mhd``, ``.nhdr``) the data file is renamed too and the header
rewritten to name it. A ``.nii.gz`` is written by SimpleITK uncompressed and gzipped with
zlib-ng at :data:`DEFAULT_LEVEL` (several times faster than ITK's own compression, for
files within a few per cent of its size), which releases the GIL: :class:`Case` reads and
writes its files in parallel threads (:func:`io_threads`).
"""

from __future__ import annotations

import errno
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import CaseError, WriteError, free_bytes, write_error
from .geometry import Geometry
from .io_utils import atomic_path, write_checked
from .nifti_check import parse_nifti_header, read_nifti_voxels
from .stream_check import STREAM_SUFFIXES, check_streams

__all__ = [
    "DEFAULT_LEVEL",
    "cast_to",
    "io_threads",
    "label_dtype",
    "parallel_map",
    "read_image",
    "set_io_threads",
    "write_image",
]

#: zlib level of ``.nii.gz`` files written without an explicit level
DEFAULT_LEVEL = 3
_CAST_STEP = 1 << 22  # voxels per slab when a float array is cast to an integer type
_IO_THREADS = [max(os.cpu_count() or 1, 1)]
_SITK_TYPES = {
    sitk.sitkUInt8: "uint8", sitk.sitkInt8: "int8", sitk.sitkUInt16: "uint16",
    sitk.sitkInt16: "int16", sitk.sitkUInt32: "uint32", sitk.sitkInt32: "int32",
    sitk.sitkUInt64: "uint64", sitk.sitkInt64: "int64", sitk.sitkFloat32: "float32",
    sitk.sitkFloat64: "float64",
}


def io_threads() -> int:
    """Threads a case's files are read and written with (default: the machine's cores)."""
    return _IO_THREADS[0]


def set_io_threads(n: int) -> None:
    """Read and write a case's files with ``n`` threads (1: one after the other; worker
    processes that each run one case per core use 1)."""
    _IO_THREADS[0] = max(int(n), 1)


def parallel_map(fn, items: list) -> list:
    """``[fn(x) for x in items]`` on :func:`io_threads` threads; the first error (in
    item order) is raised after every call has finished."""
    items = list(items)
    if io_threads() <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(io_threads(), len(items))) as pool:
        futures = [pool.submit(fn, x) for x in items]
    return [f.result() for f in futures]

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
    if path.is_dir():
        return _from_sitk(path, _read_dicom_series(path, series_id))
    if _lower_name(path).endswith((".nii", ".nii.gz")):
        return _read_nifti(path)
    if _lower_name(path).endswith(STREAM_SUFFIXES):
        return _from_sitk(path, _read_checked(path))
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise CaseError(f"{path}: cannot read the file: {_short_sitk_message(exc)}") from None
    return _from_sitk(path, img)


def _read_checked(path: Path) -> sitk.Image:
    """SimpleITK's read of a NRRD or MetaImage file, with its compressed data checked to
    the end in a thread beside it (:func:`check_streams`); the check's error first."""
    with ThreadPoolExecutor(1) as pool:
        check = pool.submit(check_streams, path)
        try:
            img, error = sitk.ReadImage(str(path)), None
        except RuntimeError as exc:
            img, error = None, exc
        check.result()
    if error is not None:
        raise CaseError(f"{path}: cannot read the file: {_short_sitk_message(error)}") from None
    return img


def _check_shape(path: Path, dim: int, size, components: int) -> None:
    if components > 1:
        raise CaseError(
            f"{path}: vector image with {components} components per voxel (size "
            f"{tuple(size)}); store each channel in its own scalar file"
        )
    if dim not in (2, 3):
        raise CaseError(
            f"{path}: {dim}D image of size {tuple(size)} (x, y, z, ...); only 2D and 3D "
            "images are supported (store each channel or time point in its own file)"
        )


def _from_sitk(path: Path, img: sitk.Image) -> tuple[np.ndarray, Geometry, str]:
    _check_shape(path, img.GetDimension(), img.GetSize(), img.GetNumberOfComponentsPerPixel())
    arr = sitk.GetArrayFromImage(img)
    return arr, Geometry.from_sitk(img), arr.dtype.name


def _read_nifti(path: Path) -> tuple[np.ndarray, Geometry, str]:
    """Geometry from SimpleITK's header reader, voxels from one checked zlib-ng pass.

    The voxels are read first: a corrupt stream is then named as such, even where it
    breaks the header SimpleITK would have read."""
    header, voxels = read_nifti_voxels(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise CaseError(f"{path}: cannot read the file: {_short_sitk_message(exc)}") from None
    size = reader.GetSize()
    _check_shape(path, reader.GetDimension(), size, reader.GetNumberOfComponents())
    wanted = _SITK_TYPES.get(reader.GetPixelID())
    if (voxels is not None and not header.scaled and voxels.dtype.name == wanted
            and voxels.size == int(np.prod(size))):
        arr = voxels.reshape(tuple(size)[::-1])
        geometry = Geometry(reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection())
        return arr, geometry, arr.dtype.name
    # scaled values or a layout SimpleITK reads its own way: its read, without losing NaN
    if voxels is not None and voxels.dtype.kind == "f" and not np.all(np.isfinite(voxels)):
        bad = int((~np.isfinite(voxels)).sum())
        raise CaseError(f"{path}: {bad} stored voxel(s) are NaN or Inf")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise CaseError(f"{path}: cannot read the file: {_short_sitk_message(exc)}") from None
    return _from_sitk(path, img)


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
        if array.ndim == 0:
            return np.clip(np.rint(array), info.min, info.max).astype(dt)
        out = np.empty(array.shape, dt)
        step = max(1, _CAST_STEP // max(1, array[0].size))  # slabs: no float copy of it all
        for i in range(0, array.shape[0], step):
            part = np.rint(array[i:i + step])
            np.clip(part, info.min, info.max, out=part)
            out[i:i + step] = part
        return out
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
        zlib level 1 (fast) to 9 (small). Implies compression. A ``.nii.gz`` is always
        compressed, by zlib-ng, at :data:`DEFAULT_LEVEL` unless given; other formats
        use SimpleITK's compression.
    tmp_dir : path-like, optional
        Folder for the temporary file (same file system); ignored for ``.mhd``/``.nhdr``,
        whose detached data file must sit beside its header.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    CaseError
        The array and geometry disagree, or SimpleITK cannot write the file (e.g. a voxel
        type the format cannot hold).
    WriteError
        The file system failed the write (no space left, quota, I/O error): what was
        written is checked before the rename (a NIfTI file against its header, NRRD and
        MetaImage data to its end, a ``.nii.gz`` against the bytes compressed), so a
        short file is never renamed into place. An ``OSError``; nothing is left behind.
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
    # ITK's NIfTI writer ignores SetCompressionLevel and compresses slowly: SimpleITK
    # writes an uncompressed .nii and zlib-ng gzips it (the GIL released meanwhile).
    gzip_self = _lower_name(path).endswith(".nii.gz")
    level = DEFAULT_LEVEL if compression_level is None else int(compression_level)
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
                raise _sitk_write_error(path, exc, array.nbytes) from None
            _check_written(target, path, array.nbytes)
            img = None  # written: not held while the file is compressed
            if gzip_self:
                _gzip_file(target, tmp, level, path)
        except BaseException:
            _remove_detached_data(tmp)
            raise
        finally:
            if gzip_self:
                target.unlink(missing_ok=True)
        # A .mhd/.nhdr header names its data file after the temporary name: give the
        # data file its final name and point the header at it, then rename the header.
        _move_detached_data(tmp, path)


def _gzip_file(src: Path, dst: Path, level: int, final: Path) -> None:
    """Compress ``src`` into ``dst`` (one gzip member, ``level`` 1..9, no name or time in
    the header, so the same data give the same bytes); the written size is checked."""
    try:  # zlib-ng compresses several times faster at the same level and format
        from zlib_ng import zlib_ng as zlib
    except ImportError:  # pragma: no cover
        import zlib

    try:
        write_checked(dst, zlib.compress(src.read_bytes(), level, 31), final)
    except WriteError:
        raise
    except OSError as exc:
        raise write_error(final, exc.strerror or str(exc), exc.errno) from None


_SHORT_WRITE = ("no space", "wrote only", "nwad", "cannot be written", "error writing",
                "couldn't write", "disk quota")


def _sitk_write_error(path: Path, exc: RuntimeError, nbytes: int) -> Exception:
    """SimpleITK's write error: a :class:`WriteError` when the file system failed (a
    short write, no space), else a :class:`CaseError` (e.g. a voxel type the format
    cannot hold)."""
    msg = _short_sitk_message(exc)
    if any(k in msg.lower() for k in _SHORT_WRITE):
        short = "no space" in msg.lower() or (free_bytes(path.parent) or 0) < nbytes
        return write_error(path, msg, errno.ENOSPC if short else errno.EIO)
    return CaseError(f"{path}: cannot write the file: {msg}")


def _check_written(written: Path, final: Path, nbytes: int) -> None:
    """What SimpleITK wrote is complete, or :class:`WriteError` naming ``final``.

    ITK's NIfTI writer writes short on a full disk without an error (it prints ``NWAD:
    wrote only ... bytes``): its file must hold what its header requires. A NRRD or
    MetaImage file's data is checked to its end (compressed: the stream; raw: its length).
    """
    name = written.name.lower()
    try:
        if name.endswith(".nii"):
            with open(written, "rb") as fh:
                header = parse_nifti_header(fh.read(544))
            size = written.stat().st_size
            if header is None or size < header.need:
                need = header.need if header is not None else nbytes
                raise write_error(final, f"SimpleITK wrote {size} of {need} bytes",
                                  need=need - size)
        elif name.endswith(STREAM_SUFFIXES):
            check_streams(written)
    except CaseError as exc:
        raise write_error(final, f"the written file does not read back: {exc}",
                          need=nbytes) from None
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise write_error(final, exc.strerror or str(exc), exc.errno) from None


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
