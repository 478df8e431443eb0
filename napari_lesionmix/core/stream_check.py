"""Checking the compressed data of NRRD and MetaImage files to their end.

SimpleITK reads a MetaImage file whose zlib data is corrupt without an error (it prints
``Uncompress failed`` and returns whatever was inflated), and its NRRD reader accepts some
corrupt gzip streams. :func:`check_streams` inflates the data of a ``.nrrd``, ``.nhdr``,
``.mha`` or ``.mhd`` file (attached, or the data file its header names) once, with
zlib-ng, which checks the gzip CRC-32 and length or the zlib Adler-32 at the end of every
stream, and compares the inflated length with what the header requires. Uncompressed
data carries no checksum; SimpleITK's readers already refuse it when it is short.
:func:`~napari_lesionmix.core.image_io.read_image` runs this check beside SimpleITK's read
(zlib-ng releases the GIL), and :func:`~napari_lesionmix.core.image_io.write_image` runs
it on every compressed NRRD or MetaImage file it writes, before the rename.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .errors import CaseError

try:
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency
    import zlib

__all__ = ["STREAM_SUFFIXES", "check_streams", "data_stream"]

#: file endings whose compressed data :func:`check_streams` checks
STREAM_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_CHUNK = 1 << 22
_MAX_HEADER = 1 << 16
_META_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
               "MET_UINT": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8}
_NRRD_SIZES = [(re.compile(r"^(u?int8|u?int8_t|u?char|(signed |unsigned )char)$"), 1),
               (re.compile(r"^(u?int16(_t)?|u?short|(signed |unsigned )?short( int)?)$"), 2),
               (re.compile(r"^(u?int32(_t)?|u?int|(signed |unsigned )?int)$"), 4),
               (re.compile(r"^(u?int64(_t)?|u?longlong|(signed |unsigned )?long long( int)?)$"),
                8),
               (re.compile(r"^float$"), 4), (re.compile(r"^double$"), 8)]


def data_stream(path: str | Path) -> tuple[Path, int, int | None, bool] | None:
    """Where the voxel data of a NRRD or MetaImage file is.

    Returns
    -------
    (file, offset, length, compressed) or None
        The file holding the data, the byte offset where it starts, the (inflated)
        length the header requires (None when it cannot be told), and whether it is a
        zlib/gzip stream; None when the data is not in one file this module understands
        (a list of files, ASCII or bzip2 encodings).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(_MAX_HEADER)
    if path.name.lower().endswith((".mha", ".mhd")):
        return _meta_stream(path, head)
    return _nrrd_stream(path, head)


def _meta_stream(path: Path, head: bytes):
    fields, offset = {}, None
    pos = 0
    for line in head.splitlines(keepends=True):
        pos += len(line)
        key, sep, value = line.decode("latin-1").partition("=")
        if not sep:
            continue
        fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            offset = pos
            break
    if offset is None:
        return None
    compressed = fields.get("compresseddata", "false").lower() == "true"
    where = fields["elementdatafile"]
    if where.upper() == "LOCAL":
        target = path
    elif where.upper() == "LIST" or "%" in where or " " in where:
        return None
    else:
        target, offset = path.parent / where, 0
    size = _META_SIZES.get(fields.get("elementtype", ""))
    length = None
    try:
        dims = [int(d) for d in fields.get("dimsize", "").split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
        if size is not None and dims:
            length = math.prod(dims) * channels * size
    except ValueError:
        pass
    if not compressed and where.upper() != "LOCAL":
        offset = int(fields.get("headersize", "0") or 0)
        if offset < 0:
            return None
    return target, offset, length, compressed


def _nrrd_stream(path: Path, head: bytes):
    if not head.startswith(b"NRRD"):
        return None
    fields, offset = {}, None
    pos = 0
    for i, line in enumerate(head.splitlines(keepends=True)):
        pos += len(line)
        text = line.decode("latin-1").strip()
        if not text:
            offset = pos
            break
        if i == 0 or text.startswith("#") or ":=" in text:
            continue
        key, sep, value = text.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    encoding = fields.get("encoding", "raw").lower()
    if encoding not in ("gzip", "gz", "raw"):
        return None
    where = fields.get("data file", fields.get("datafile"))
    if where is not None:
        if where.upper().startswith("LIST") or "%" in where or " " in where:
            return None
        target, offset = path.parent / where, 0
    elif offset is None:
        return None
    else:
        target = path
    skip_lines = int(fields.get("line skip", fields.get("lineskip", "0")) or 0)
    if skip_lines:
        offset = _after_lines(target, offset, skip_lines)
    kind = fields.get("type", "").lower()
    size = next((n for rx, n in _NRRD_SIZES if rx.match(kind)), None)
    length = None
    try:
        dims = [int(d) for d in fields.get("sizes", "").split()]
        skip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
        if size is not None and dims and skip >= 0:
            length = math.prod(dims) * size + skip
    except ValueError:
        pass
    return target, offset, length, encoding != "raw"


def _after_lines(path: Path, offset: int, n: int) -> int:
    with open(path, "rb") as fh:
        fh.seek(offset)
        for _ in range(n):
            offset += len(fh.readline())
    return offset


def check_streams(path: str | Path) -> None:
    """Inflate the compressed data of a NRRD or MetaImage file to its end (uncompressed
    data: check its length).

    Raises
    ------
    CaseError
        The stream is corrupt (bad CRC-32 or Adler-32, invalid deflate data, bytes after
        its end), cut short, or inflates to another length than the header requires.
        The message names the file that holds the data.
    """
    path = Path(path)
    try:
        found = data_stream(path)
    except OSError as exc:
        raise CaseError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if found is None:
        return
    target, offset, length, compressed = found
    if not compressed:
        if length is not None:
            try:
                have = target.stat().st_size - offset
            except OSError as exc:
                raise CaseError(f"{target}: cannot read the data file ({exc.strerror})") from None
            if have < length:
                raise CaseError(f"{target}: truncated data: {have} bytes, the header needs "
                                f"{length}")
        return
    total = 0
    try:
        with open(target, "rb") as fh:
            fh.seek(offset)
            total = _inflate_all(fh, target)
    except zlib.error as exc:
        raise CaseError(f"{target}: corrupt compressed data ({exc})") from None
    except OSError as exc:
        raise CaseError(f"{target}: cannot read the data file ({exc.strerror or exc})") from None
    if length is not None and total != length:
        raise CaseError(f"{target}: {'truncated' if total < length else 'corrupt'} compressed "
                        f"data: it inflates to {total} bytes, the header needs {length}")


def _inflate_all(fh, target: Path) -> int:
    """Inflate every zlib or gzip stream from ``fh``'s position; the inflated length."""
    total = 0
    d = zlib.decompressobj(47)  # zlib or gzip, detected from the stream's header
    pending = b""
    while True:
        data = pending or fh.read(_CHUNK)
        pending = b""
        if not data:
            break
        while data:
            total += len(d.decompress(data, _CHUNK))
            data = d.unconsumed_tail
        if d.eof:
            rest = d.unused_data + fh.read(_CHUNK) if d.unused_data else b""
            if not rest:
                rest = fh.read(_CHUNK)
            if not rest.strip(b"\0"):
                tail = fh.read(_CHUNK)
                while tail:
                    if tail.strip(b"\0"):
                        raise CaseError(f"{target}: corrupt compressed data (bytes after the "
                                        "end of the stream)")
                    tail = fh.read(_CHUNK)
                return total
            if not rest.startswith(b"\x1f\x8b"):
                raise CaseError(f"{target}: corrupt compressed data (bytes after the end of "
                                "the stream)")
            d = zlib.decompressobj(47)  # the next gzip member
            pending = rest
    total += len(d.flush())
    if not d.eof:
        raise CaseError(f"{target}: truncated compressed data (the stream ends after {total} "
                        "inflated bytes)")
    return total
