"""Fault injection for the tests: a small real file system that can be filled, and bytes
that can be corrupted.

A full disk is a real one: a ``tmpfs`` of a few MB mounted for the test (``mount -t
tmpfs``), filled with a ballast file up to the free space wanted. That needs root and a
kernel that lets the sandbox mount; where either is missing the test is skipped with the
reason (CI runs as root, where it runs). No LD_PRELOAD, no FUSE, no mocked ``write``:
SimpleITK's own writer meets the real ``ENOSPC``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest

__all__ = ["SmallDisk", "flip_byte", "small_disk"]


class SmallDisk:
    """A mounted tmpfs of ``size`` bytes; :meth:`fill` leaves ``free`` bytes, :meth:`free`
    releases the ballast."""

    def __init__(self, root: Path, size: int):
        self.root = root
        self.size = size
        self.ballast = root / ".ballast"

    def fill(self, free: int = 0) -> int:
        """Write a ballast file until the disk is full, then give back ``free`` bytes.

        Returns the bytes left free (``os.statvfs``)."""
        self.release()
        with open(self.ballast, "wb") as fh:
            block = b"\xa5" * (1 << 16)
            try:
                while True:
                    fh.write(block)
                    fh.flush()
            except OSError:
                pass
            # the buffered writer may hold a partial block: drop it
            with contextlib.suppress(OSError):
                fh.truncate(fh.tell())
        have = self.ballast.stat().st_size
        # give back ``free`` bytes (tmpfs counts whole pages)
        os.truncate(self.ballast, max(have - free, 0))
        return self.available()

    def release(self) -> None:
        """Delete the ballast: the space comes back."""
        self.ballast.unlink(missing_ok=True)

    def available(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


def _can_mount() -> str:
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs (a real full disk)"
    return ""


@contextlib.contextmanager
def small_disk(parent: Path, size: int = 4 << 20):
    """Mount a ``size``-byte tmpfs under ``parent``; skip the test where it cannot be done."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    root = Path(parent) / f"disk-{uuid.uuid4().hex[:6]}"
    root.mkdir(parents=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                          str(root)], capture_output=True, text=True)
    if res.returncode != 0:
        root.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield SmallDisk(root, size)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)
        with contextlib.suppress(OSError):
            root.rmdir()


def flip_byte(path: Path, where, mask: int = 0x10) -> int:
    """Flip bits of one byte of a file: at ``where`` (int) or that share of it (float).

    Returns the offset."""
    raw = bytearray(Path(path).read_bytes())
    off = where if isinstance(where, int) else min(int(len(raw) * where), len(raw) - 1)
    raw[off] ^= mask
    Path(path).write_bytes(bytes(raw))
    return off
