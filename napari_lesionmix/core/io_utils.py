"""File names and atomic writes: the one home of both.

Names
    The image formats known by name (:data:`IMAGE_SUFFIXES`), a name's stem and
    extension (:func:`split_ext`, :func:`image_stem`), nnU-Net's channel suffix
    (``<case>_0000<ending>``: :func:`channel_file`, :func:`split_channel`) and the image
    files of a folder (:func:`list_image_files`).
Atomic writes
    Write to a temporary name, then rename (:func:`atomic_path`): a reader never sees a
    half-written file, and an interrupted write leaves only a temporary file
    (``.<name>.<random>.tmp<ext>``, :func:`is_temporary`) that the next run can remove.
    The file gets the mode a plain ``open`` would give it (0666 less the umask).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import WriteError, write_error

__all__ = [
    "IMAGE_SUFFIXES",
    "TMP_SUFFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "channel_file",
    "file_mode",
    "image_stem",
    "is_temporary",
    "label_files_of",
    "parse_json",
    "list_image_files",
    "split_channel",
    "split_ext",
    "write_checked",
]

#: File name endings that ``read_image`` and ``write_image`` know by name.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
TMP_SUFFIX = ".tmp"
_OTHER_SUFFIXES = (".json", ".png", ".npz")
_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


# ------------------------------------------------------------------------------ names
def split_ext(name: str) -> tuple[str, str]:
    """Split a file name into (stem, image extension).

    Returns ``(name, "")`` when the extension is not one of :data:`IMAGE_SUFFIXES`.

    Examples
    --------
    >>> split_ext("sub01_0000.nii.gz")
    ('sub01_0000', '.nii.gz')
    >>> split_ext("notes.txt")
    ('notes.txt', '')
    """
    low = name.lower()
    for ext in IMAGE_SUFFIXES:
        if low.endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    return name, ""


def image_stem(path: str | Path) -> str:
    """A file's name without its image extension (else without its last suffix).

    Examples
    --------
    >>> image_stem("/data/sub01.nii.gz"), image_stem("map.tif")
    ('sub01', 'map')
    """
    name = Path(path).name
    stem, ext = split_ext(name)
    if ext:
        return stem
    return Path(name).stem if "." in name else name


def channel_file(case: str, channel: int, ending: str) -> str:
    """nnU-Net's image file name of one channel: ``<case>_<channel:04d><ending>``.

    Examples
    --------
    >>> channel_file("sub01", 1, ".nii.gz")
    'sub01_0001.nii.gz'
    """
    return f"{case}_{int(channel):04d}{ending}"


def split_channel(stem: str) -> tuple[str, int] | None:
    """``(case, channel)`` of a stem with nnU-Net's ``_XXXX`` suffix, else None.

    Examples
    --------
    >>> split_channel("sub01_0002"), split_channel("sub01")
    (('sub01', 2), None)
    """
    m = _CHANNEL.match(stem)
    return (m["case"], int(m["channel"])) if m else None


def list_image_files(folder: str | Path) -> list[Path]:
    """The image files of a folder by name (:data:`IMAGE_SUFFIXES`), sorted.

    Hidden and temporary files (:func:`is_temporary`) are left out; a missing folder
    gives an empty list.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if split_ext(p.name)[1] and not p.name.startswith(".") and p.is_file())


def label_files_of(folder: str | Path) -> list[Path]:
    """The label files of a dataset folder, or the image files of any other folder.

    An nnU-Net v2 raw dataset gives its ``labelsTr/`` files, a paired folder its
    ``labels/`` files, any other folder its own image files (:func:`list_image_files`).

    Raises
    ------
    FileNotFoundError
        The folder does not exist or holds no image file (the message says which).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    for sub in ("labelsTr", "labels"):
        if (root / sub).is_dir():
            root = root / sub
            break
    files = list_image_files(root)
    if not files:
        raise FileNotFoundError(f"{root}: holds no NIfTI, NRRD or MetaImage file")
    return files


# ------------------------------------------------------------------------------ JSON
def parse_json(text: str | bytes):
    """``json.loads``, with JSON nested too deeply for Python's parser (e.g. 100,000
    brackets, a ``RecursionError``) raised as a ``json.JSONDecodeError`` like any other
    malformed JSON, so callers report it with the file's name.

    Examples
    --------
    >>> parse_json('{"a": [1]}')
    {'a': [1]}
    >>> parse_json("[" * 100000 + "]" * 100000)
    Traceback (most recent call last):
    ...
    json.decoder.JSONDecodeError: nested too deeply: line 1 column 1 (char 0)
    """
    try:
        return json.loads(text)
    except RecursionError:
        doc = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise json.JSONDecodeError("nested too deeply", doc[:100], 0) from None


# ------------------------------------------------------------------------------ modes
_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a new file gets from ``open``: 0o666 less the process's umask."""
    try:  # Linux: read it without changing it
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (other threads wait on the lock)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


# ------------------------------------------------------------------------------ atomic
@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True,
                tmp_dir: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the final file's extension before ``.tmp`` is added, so
    writers that choose a format by extension (SimpleITK) still work, e.g.
    ``.case.nii.gz`` → ``.case.x1y2.tmp.nii.gz``. The temporary file is created with the
    mode a plain ``open`` would give (0666 less the umask), not ``mkstemp``'s 0600, so a
    dataset written on a shared machine is readable by whom the umask allows.

    Parameters
    ----------
    path : path-like
        The final file.
    overwrite : bool
        If False and ``path`` exists, raise :class:`FileExistsError` before writing.
    tmp_dir : path-like, optional
        Where the temporary file lives (default: beside ``path``). It must be on the same
        file system so that the rename is atomic; a dataset writer uses its own work
        folder, so that a killed run never leaves a temporary in a folder that nnU-Net
        lists.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; refusing to overwrite it")
    stem, ext = _split_any(path.name)
    folder = path.parent if tmp_dir is None else Path(tmp_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f"{TMP_SUFFIX}{ext}", dir=folder)
    except (FileExistsError, WriteError):
        raise
    except OSError as exc:
        raise _named(path, exc) from None
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except (FileExistsError, WriteError):
            raise
        except OSError as exc:  # a write into the temporary file failed: name the target
            raise _named(path, exc) from None
        if not overwrite and path.exists():
            raise FileExistsError(f"{path}: already exists; refusing to overwrite it")
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise _named(path, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _named(path: Path, exc: OSError) -> WriteError:
    """``exc`` as a :class:`WriteError` that names ``path`` (not the temporary file)."""
    return write_error(path, exc.strerror or str(exc), exc.errno)


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True,
                      tmp_dir: str | Path | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the written size is checked before
    the rename (:class:`~napari_lesionmix.core.errors.WriteError` if short)."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite, tmp_dir)


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = True,
                       tmp_dir: str | Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically; the written size is checked before the
    rename (:class:`~napari_lesionmix.core.errors.WriteError` if short)."""
    with atomic_path(path, overwrite=overwrite, tmp_dir=tmp_dir) as tmp:
        write_checked(tmp, data, path)


def write_checked(tmp: Path, data: bytes, final: str | Path | None = None) -> None:
    """Write ``data`` to ``tmp`` (closed, so the file system reports every error), then
    check its size; errors name ``final`` (default ``tmp``)."""
    final = tmp if final is None else final
    with open(tmp, "wb") as fh:
        fh.write(data)
    size = os.stat(tmp).st_size
    if size != len(data):
        raise write_error(final, f"wrote {size} of {len(data)} bytes", need=len(data) - size)


def is_temporary(path: str | Path) -> bool:
    """True for a leftover temporary file made by :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and TMP_SUFFIX + "." in name + "." and ".tmp" in name


def _split_any(name: str) -> tuple[str, str]:
    stem, ext = split_ext(name)
    if ext:
        return stem, ext
    for ext in _OTHER_SUFFIXES:
        if name.lower().endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot and stem else (name, "")
