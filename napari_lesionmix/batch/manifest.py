"""``manifest.json``: a run's plan, recipe, package versions and one entry per case.

Recording a finished case costs the same whatever the number of cases: its entry is
appended as one line to a journal, ``.lesionmix/journal-<id>.jsonl`` (JSON Lines:
``{"case": name, "entry": {...}}``), which ``manifest.json`` names in its ``journal``
field. :meth:`Manifest.load` reads ``manifest.json`` and applies the lines of the journal
it names, in order (a last line torn by a kill is ignored: its case is not complete). A
whole save (:meth:`Manifest.save`) writes ``manifest.json`` atomically with every entry
and a new, empty journal, then deletes the old one; the end of a run saves with
``final=True``: ``manifest.json`` then holds every entry and names no journal, and other
code reads it as a plain JSON file. A case's entry is written last, after its files, so a
case is complete exactly when its entry says ``written`` and its files exist with the
recorded sizes.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from pathlib import Path

from ..core.errors import WriteError, write_error
from ..core.io_utils import atomic_write_text, parse_json

__all__ = ["JOURNAL_FOLDER", "MANIFEST_FORMAT", "MANIFEST_VERSION", "Manifest", "file_sizes",
           "package_versions"]

MANIFEST_FORMAT = "napari-lesionmix/manifest"
MANIFEST_VERSION = 1
#: where the journal lives, relative to manifest.json's folder
JOURNAL_FOLDER = ".lesionmix"


class Manifest:
    """``manifest.json`` and its journal: the run's plan and one entry per case.

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
        self._fd: int | None = None
        self._broken = ""

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
        """Read a manifest and the journal it names; ValueError naming the file if it is
        not one."""
        path = Path(path)
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the manifest ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{path}: not a napari-lesionmix manifest")
        _check_shape(path, data)
        out = cls(path, data, tmp_dir)
        for name, entry in out._journal_lines():
            out.cases[name] = entry
        return out

    @property
    def journal(self) -> Path | None:
        """The journal file this manifest names (None after the final save)."""
        rel = self.data.get("journal")
        return None if not isinstance(rel, str) else self.path.parent / rel

    def _journal_lines(self):
        j = self.journal
        if j is None or not j.is_file():
            return
        with open(j, "rb") as fh:
            for line in fh:
                try:
                    item = parse_json(line)
                    name, entry = item["case"], item["entry"]
                except (ValueError, KeyError, TypeError):
                    continue  # torn by a kill or a full disk: that case is not complete
                if isinstance(name, str) and isinstance(entry, dict):
                    yield name, entry

    @property
    def cases(self) -> dict:
        return self.data["cases"]

    def save(self, final: bool = False) -> None:
        """Write the whole manifest atomically (temporary file, then rename), every entry
        in it; start a new journal (none with ``final``: the run's last save) and delete
        the old one."""
        old = self.journal
        self.close()
        self.data["updated"] = _now()
        if final:
            self.data.pop("journal", None)
        else:
            self.data["journal"] = f"{JOURNAL_FOLDER}/journal-{uuid.uuid4().hex[:12]}.jsonl"
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n",
                          tmp_dir=self.tmp_dir)
        self._broken = ""
        if old is not None and old != self.journal:
            old.unlink(missing_ok=True)

    def record(self, name: str, entry: dict) -> None:
        """Add or replace one case's entry: one line appended to the journal (O(1)).

        Raises
        ------
        WriteError
            The line could not be written whole (no space left, ...); the manifest
            stays as it was on disk (a torn line is ignored when read).
        """
        if self.journal is None:  # a manifest without a journal yet: start one
            self.save()
        if self._broken:
            raise write_error(self.journal, self._broken)
        line = (json.dumps({"case": name, "entry": entry}, separators=(",", ":")) + "\n"
                ).encode()
        try:
            if self._fd is None:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            n = os.write(self._fd, line)
            if n != len(line):
                raise OSError(28, f"wrote {n} of {len(line)} bytes")
        except OSError as exc:
            self._broken = exc.strerror or str(exc)
            if isinstance(exc, WriteError):
                raise
            raise write_error(self.journal, self._broken, exc.errno) from None
        self.cases[name] = entry

    def close(self) -> None:
        """Close the journal (reopened by the next :meth:`record`)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()

    def written(self) -> dict:
        """Entries of cases whose status is ``written``."""
        return {k: v for k, v in self.cases.items() if v.get("status") == "written"}


#: fields of a manifest that must be JSON objects, and whether their values must be too
_OBJECTS = {"cases": True, "originals": True, "plan": False, "recipe": False,
            "reference_loads": True, "labels": False, "versions": False}


def _check_shape(path: Path, data: dict) -> None:
    """ValueError naming the field when a manifest's fields have the wrong JSON type
    (e.g. ``"cases": []``), so no reader fails on it later with a traceback."""
    for key, nested in _OBJECTS.items():
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, dict):
            raise ValueError(f"{path}: field {key!r} must be a JSON object, not "
                             f"{type(value).__name__}")
        if nested:
            bad = [k for k, v in value.items() if not isinstance(v, dict)]
            if bad:
                raise ValueError(f"{path}: field {key!r}: entry {bad[0]!r} must be a JSON "
                                 f"object, not {type(value[bad[0]]).__name__}")
    for key in ("skipped", "failed", "unchanged", "notes"):
        if key in data and not isinstance(data[key], list):
            raise ValueError(f"{path}: field {key!r} must be a JSON list, not "
                             f"{type(data[key]).__name__}")


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
