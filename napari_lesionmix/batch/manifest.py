"""``manifest.json``: a run's plan, recipe, package versions and one entry per case.

The manifest is rewritten atomically after every case; a case's entry is written last,
after its files, so a case is complete exactly when its entry says ``written`` and its
files exist with the recorded sizes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from ..core.io_utils import atomic_write_text

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "Manifest", "file_sizes", "package_versions"]

MANIFEST_FORMAT = "napari-lesionmix/manifest"
MANIFEST_VERSION = 1


class Manifest:
    """``manifest.json``: the run's plan and one entry per case, rewritten atomically.

    Parameters
    ----------
    path : Path
    data : dict
        Holds at least ``plan`` and ``cases`` (name → entry).
    tmp_dir : Path, optional
        Where the temporary file is written before the rename (default: beside it).
    """

    def __init__(self, path: Path, data: dict, tmp_dir: Path | None = None):
        self.path = Path(path)
        self.data = data
        self.tmp_dir = tmp_dir
        self.data.setdefault("cases", {})

    @classmethod
    def new(cls, path: Path, tmp_dir: Path | None = None, **fields) -> Manifest:
        now = _now()
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "started": now,
                "updated": now, "state": "running"}
        data.update(fields)
        data.setdefault("cases", {})
        return cls(path, data, tmp_dir)

    @classmethod
    def load(cls, path: Path, tmp_dir: Path | None = None) -> Manifest:
        """Read a manifest; ValueError naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the manifest ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{path}: not a napari-lesionmix manifest")
        return cls(path, data, tmp_dir)

    @property
    def cases(self) -> dict:
        return self.data["cases"]

    def save(self) -> None:
        """Write the whole manifest atomically (temporary file, then rename)."""
        self.data["updated"] = _now()
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n",
                          tmp_dir=self.tmp_dir)

    def record(self, name: str, entry: dict) -> None:
        """Add or replace one case's entry and save."""
        self.cases[name] = entry
        self.save()

    def written(self) -> dict:
        """Entries of cases whose status is ``written``."""
        return {k: v for k, v in self.cases.items() if v.get("status") == "written"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def package_versions() -> dict:
    """Versions of Python and the packages that decide the output's bytes."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("napari-lesionmix", "numpy", "scipy", "SimpleITK", "opencv-python-headless",
                 "scikit-image", "zlib-ng"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if out["napari-lesionmix"] is None:  # running from a source tree
        from .. import __version__
        out["napari-lesionmix"] = __version__
    return out


def file_sizes(paths) -> list[int]:
    """Sizes in bytes of existing files."""
    return [os.stat(p).st_size for p in paths]
