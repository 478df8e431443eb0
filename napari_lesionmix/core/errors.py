"""The errors the engine raises for unreadable or invalid cases and for files it could not
write."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["CaseError", "WriteError", "free_bytes", "write_error"]


class CaseError(ValueError):
    """A case or image file is unreadable or invalid. The message names the file(s)."""


class WriteError(OSError):
    """A file could not be written completely (disk full, quota, read-only or failing file
    system). The message names the file; ``errno`` says why when it is known
    (``ENOSPC``: no space left). Nothing was renamed into place."""

    def __str__(self) -> str:
        return str(self.strerror)


def write_error(path, why: str, code: int | None = None, need: int = 0) -> WriteError:
    """A :class:`WriteError` for ``path``: ``why`` plus the free space left on its file
    system; ``code`` defaults to ``ENOSPC`` when fewer than ``need`` bytes (or none) are
    free there, else ``EIO``."""
    free = free_bytes(Path(path).parent)
    if code is None:
        code = errno.ENOSPC if free is not None and free <= max(need, 0) else errno.EIO
    where = "" if free is None else f"{_size(free)} free on its file system"
    if code == errno.ENOSPC and "no space" not in why.lower():
        where = f"no space left: {where}" if where else "no space left"
    return WriteError(code, f"{path}: cannot write it: {why}" + (f" ({where})" if where else ""))


def free_bytes(folder) -> int | None:
    """Bytes an unprivileged user may still write under ``folder`` (None: unknown)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
