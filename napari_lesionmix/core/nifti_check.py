"""Reading NIfTI voxels ourselves: one pass that decodes and checks the whole file.

ITK 5.4's NIfTI reader reads a truncated ``.nii`` or ``.nii.gz`` *without an error*
(missing voxels come back as garbage or 0), and it silently replaces NaN and ±Inf by 0
(ITK PR #6683 fixes this for ITK 6). :func:`~napari_lesionmix.core.image_io.read_image`
therefore takes only the header's geometry from SimpleITK and the voxels from
:func:`read_nifti_voxels`: the file is streamed once (``.nii.gz`` through zlib-ng, which
checks every gzip member's CRC-32 and length, whatever the voxel type), the voxels land
in a writable array in the order SimpleITK gives them, a file shorter than its header
requires is refused, and NaN/Inf stay what they are (the caller refuses them). zlib-ng
inflates faster than ITK's reader and releases the GIL, so this read costs less than
SimpleITK's own and several files can be read in parallel threads. NRRD and MetaImage
readers already raise on truncated data and keep NaN.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from .errors import CaseError

try:  # zlib-ng inflates about 1.5x faster than the stock zlib; same API and errors
    from zlib_ng import gzip_ng as gzip
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency, but stay usable without
    import gzip
    import zlib

__all__ = ["NiftiHeader", "parse_nifti_header", "read_nifti_voxels"]

#: NIfTI datatype code -> numpy type code (scalar types; others are left to SimpleITK)
_NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2",
                768: "u4", 1024: "i8", 1280: "u8"}
_CHUNK = 1 << 22


class NiftiHeader:
    """The few NIfTI-1/2 header fields reading the voxels needs.

    Attributes
    ----------
    need : int
        Bytes a complete single file holds (header, extensions, voxels).
    vox_offset : int
    dtype : numpy.dtype or None
        The stored scalar type with its byte order; None for types left to SimpleITK
        (RGB, complex, ...).
    count : int
        Number of stored values.
    scaled : bool
        ``scl_slope``/``scl_inter`` change the values (SimpleITK rescales them).
    """

    def __init__(self, need: int, vox_offset: int, dtype: np.dtype | None, count: int,
                 scaled: bool = False):
        self.need = need
        self.vox_offset = vox_offset
        self.dtype = dtype
        self.count = count
        self.scaled = scaled


def parse_nifti_header(head: bytes) -> NiftiHeader | None:
    """Parse a single-file NIfTI-1/2 header; None if unknown or not single-file."""
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            if head[344:347] != b"n+1":
                return None  # .hdr/.img pair or not NIfTI: data lives elsewhere
            dims = struct.unpack(endian + "8h", head[40:56])
            datatype, bitpix = struct.unpack(endian + "hh", head[70:74])
            vox_offset = struct.unpack(endian + "f", head[108:112])[0]
            slope, inter = struct.unpack(endian + "ff", head[112:120])
        elif len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            if head[4:7] != b"n+2":
                return None
            datatype, bitpix = struct.unpack(endian + "hh", head[12:16])
            dims = struct.unpack(endian + "8q", head[16:80])
            vox_offset = struct.unpack(endian + "q", head[168:176])[0]
            slope, inter = struct.unpack(endian + "dd", head[176:192])
        else:
            continue
        n = dims[0]
        if not 1 <= n <= 7 or bitpix <= 0 or not math.isfinite(vox_offset) or vox_offset < 0:
            return None
        count = 1
        for d in dims[1 : n + 1]:
            count *= max(int(d), 1)
        code = _NIFTI_TYPES.get(int(datatype))
        dtype = np.dtype(endian + code) if code else None
        if dtype is not None and dtype.itemsize * 8 != bitpix:
            dtype = None
        scaled = (math.isfinite(slope) and slope not in (0.0, 1.0)) or (
            slope != 0.0 and math.isfinite(inter) and inter != 0.0)
        return NiftiHeader(int(vox_offset) + count * int(bitpix) // 8, int(vox_offset), dtype,
                           count, scaled)
    return None


def read_nifti_voxels(path: Path) -> tuple[NiftiHeader | None, np.ndarray | None]:
    """Stream a ``.nii`` or ``.nii.gz`` once: its header and its voxels, checked.

    Returns
    -------
    header : NiftiHeader or None
        None when the file is not a single-file NIfTI this module understands (the
        whole stream is still checked).
    voxels : ndarray or None
        The stored values, flat, native byte order, writable; None when ``header`` is
        None or its type is left to SimpleITK.

    Raises
    ------
    CaseError
        A corrupt or truncated gzip stream (bad CRC-32 or length, or cut short), or a
        file shorter than its header requires. The message names the file.
    """
    path = Path(path)
    gz = path.name.lower().endswith(".gz")
    what = "decompressed data" if gz else "file"
    opener = gzip.open if gz else open
    total = 0
    try:
        with opener(path, "rb") as fh:
            head = _read_up_to(fh, 544)
            total = len(head)
            header = parse_nifti_header(head)
            if header is None or header.dtype is None:
                total += _drain(fh)
                if header is not None and total < header.need:
                    raise _truncated(path, header, total, what)
                return header, None
            nbytes = header.count * header.dtype.itemsize
            buf = np.empty(nbytes, np.uint8)
            pre = head[header.vox_offset : header.vox_offset + nbytes]
            buf[: len(pre)] = np.frombuffer(pre, np.uint8)
            if header.vox_offset > len(head):
                total += _skip(fh, header.vox_offset - len(head))
            got = _readinto(fh, memoryview(buf)[len(pre):])
            total += got
            if len(pre) + got < nbytes:
                raise _truncated(path, header, total, what)
            total += _drain(fh)  # to the end: gzip checks the CRC-32 and length there
    except EOFError:
        raise CaseError(f"{path}: truncated gzip stream (ends after {total} decompressed "
                        "bytes)") from None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CaseError(f"{path}: corrupt gzip data ({exc})") from None
    except OSError as exc:
        raise CaseError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    arr = buf.view(header.dtype)
    if not header.dtype.isnative:
        arr = arr.astype(header.dtype.newbyteorder("="))
    return header, arr


def _truncated(path: Path, header: NiftiHeader, total: int, what: str) -> CaseError:
    return CaseError(f"{path}: truncated NIfTI file: the header needs {header.need} bytes, "
                     f"the {what} has {total}")


def _read_up_to(fh, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = fh.read(n - len(out))
        if not data:
            break
        out += data
    return out


def _readinto(fh, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _skip(fh, n: int) -> int:
    skipped = 0
    while skipped < n:
        data = fh.read(min(n - skipped, _CHUNK))
        if not data:
            break
        skipped += len(data)
    return skipped


def _drain(fh) -> int:
    n = 0
    while True:
        data = fh.read(_CHUNK)
        if not data:
            return n
        n += len(data)
