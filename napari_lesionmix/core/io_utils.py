"""Atomic file writing: write to a temporary name in the same folder, then rename.

A reader never sees a half-written file, and an interrupted write leaves only a
temporary file (``.<name>.<random>.tmp``) that the next run can remove.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = True,
                tmp_dir: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the final file's extension before ``.tmp`` is added, so
    writers that choose a format by extension (SimpleITK) still work, e.g.
    ``.case.nii.gz`` → ``.case.x1y2.tmp.nii.gz``.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    stem, ext = _split_ext(name)
    folder = path.parent if tmp_dir is None else Path(tmp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f"{TMP_SUFFIX}{ext}", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not overwrite and path.exists():
            raise FileExistsError(f"{path}: already exists; refusing to overwrite it")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)


def is_temporary(path: str | Path) -> bool:
    """True for a leftover temporary file made by :func:`atomic_path`."""
    name = Path(path).name
    return name.startswith(".") and TMP_SUFFIX + "." in name + "." and ".tmp" in name


def _split_ext(name: str) -> tuple[str, str]:
    for ext in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".json", ".png", ".npz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot and stem else (name, "")
