"""The output: an nnU-Net v2 raw dataset folder, its file names and its dataset.json.

Layout of ``OUTPUT``::

    dataset.json                 nnU-Net's: channel_names, labels, numTraining, file_ending
    imagesTr/<case>_0000<ending> one file per channel
    labelsTr/<case><ending>
    provenance/<case>.json       one sidecar per synthesised case (nnU-Net ignores it)
    manifest.json                the run: recipe, seed, versions, one entry per case
    splits_final.json            5-fold split grouped by source case (see ``splits``)
    loads.png                    reference, target and achieved lesion loads
    .lesionmix/                  shared with the workers: bank.npz, likelihood.nii.gz,
                                 plan.json; tmp/ holds files being written

Synthesised cases are named ``<source>_lmix<NNNN>`` (``NNNN``: the output index,
zero-padded to at least 4 digits). Every file is written under a temporary name in
``.lesionmix/tmp`` and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import write_error
from ..core.io_utils import (
    atomic_write_text,
    channel_file,
    is_temporary,
    split_channel,
)

__all__ = [
    "LMIX_PATTERN",
    "LOCK_NAME",
    "NNUNET_ENDINGS",
    "MAX_N",
    "OWNED_FILES",
    "OutputLayout",
    "case_of_file",
    "list_output_cases",
    "output_name",
    "reserve_bytes",
    "write_dataset_json",
]

#: top-level files of OUTPUT that a run writes (--overwrite removes them with the run's
#: case files and .lesionmix/)
OWNED_FILES = ("dataset.json", "manifest.json", "splits_final.json", "loads.png")
#: the largest N a run takes: its names, seed streams and plan are built for every case
#: up front (100,000 cases: about 1 s and 60 MB; 10^6: 9 s and 600 MB)
MAX_N = 100_000
#: the lock a run holds on its OUTPUT (see ``batch.lock``); files of OUTPUT's top level
#: whose names start with it are the lock's, not the run's
LOCK_NAME = ".lesionmix.lock"
_LOCK_PREFIXES = (LOCK_NAME, ".lesionmix.clock.")
LMIX_PATTERN = re.compile(r"_lmix\d{4,}$")
#: file endings nnU-Net v2's SimpleITK reader takes; other inputs are written as .nii.gz
NNUNET_ENDINGS = (".nii.gz", ".nrrd", ".mha")


def output_name(source: str, k: int, n: int) -> str:
    """Name of output ``k`` of ``n``: ``<source>_lmix<k>`` with ``k`` padded to 4+ digits.

    Examples
    --------
    >>> output_name("sub01", 3, 10)
    'sub01_lmix0003'
    >>> output_name("sub01", 3, 20000)
    'sub01_lmix00003'
    """
    width = max(4, len(str(max(n - 1, 0))))
    return f"{source}_lmix{k:0{width}d}"


@dataclass(frozen=True)
class OutputLayout:
    """Paths inside an output dataset folder.

    Parameters
    ----------
    root : Path
        The output folder.
    file_ending : str
        e.g. ``".nii.gz"``.
    n_channels : int
    """

    root: Path
    file_ending: str = ".nii.gz"
    n_channels: int = 1

    @property
    def images(self) -> Path:
        return self.root / "imagesTr"

    @property
    def labels(self) -> Path:
        return self.root / "labelsTr"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance"

    @property
    def work(self) -> Path:
        return self.root / ".lesionmix"

    @property
    def tmp(self) -> Path:
        """Where files are written before being renamed into place: a killed run leaves
        its temporaries here, never in ``imagesTr``/``labelsTr`` where nnU-Net looks."""
        return self.work / "tmp"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def dataset_json(self) -> Path:
        return self.root / "dataset.json"

    @property
    def splits(self) -> Path:
        return self.root / "splits_final.json"

    @property
    def plot(self) -> Path:
        return self.root / "loads.png"

    def image_paths(self, name: str) -> list[Path]:
        """The channel files of case ``name``."""
        return [self.images / channel_file(name, c, self.file_ending)
                for c in range(self.n_channels)]

    def label_path(self, name: str) -> Path:
        return self.labels / f"{name}{self.file_ending}"

    def provenance_path(self, name: str) -> Path:
        return self.provenance / f"{name}.json"

    def case_files(self, name: str, synthesized: bool = True) -> list[Path]:
        """Every file of a case, in the order they are renamed into place."""
        files = self.image_paths(name) + [self.label_path(name)]
        if synthesized:
            files.append(self.provenance_path(name))
        return files

    def rel(self, path: Path) -> str:
        """``path`` relative to the root, with forward slashes."""
        return Path(path).relative_to(self.root).as_posix()

    def has_files(self) -> bool:
        """True if the output folder exists and holds a file (empty folders, e.g. those a
        run made before a full disk stopped it, do not count)."""
        if not self.root.is_dir():
            return False
        for folder, _, files in os.walk(self.root):
            if folder == str(self.root):
                files = [f for f in files if not f.startswith(_LOCK_PREFIXES)]
            if files:
                return True
        return False

    def temporaries(self) -> list[Path]:
        """Leftover temporary files (from ``atomic_path``) anywhere in the output."""
        out = []
        for folder in (self.root, self.images, self.labels, self.provenance, self.work,
                       self.tmp):
            if folder.is_dir():
                out += [p for p in folder.iterdir() if p.is_file() and is_temporary(p)]
        return sorted(out)

    def remove_temporaries(self) -> int:
        """Delete leftover temporary files; return how many."""
        tmps = self.temporaries()
        for p in tmps:
            p.unlink(missing_ok=True)
        return len(tmps)

    def run_files(self, data: dict) -> tuple[set[str], set[str]]:
        """What the run of manifest ``data`` wrote or was to write in imagesTr, labelsTr
        and provenance: (relative paths it recorded, names of its cases: recorded,
        originals and every name of its plan, whose files a killed run may have left
        unrecorded)."""
        paths, names = set(), set()
        for section in ("cases", "originals"):
            entries = data.get(section)
            for name, entry in (entries.items() if isinstance(entries, dict) else ()):
                names.add(str(name))
                files = entry.get("files") if isinstance(entry, dict) else None
                paths.update(str(f) for f in files or () if isinstance(f, str))
        plan = data.get("plan") if isinstance(data.get("plan"), dict) else {}
        sources, n = plan.get("sources"), plan.get("n")
        if isinstance(sources, list) and sources and isinstance(n, int) and 0 < n <= MAX_N:
            names.update(output_name(str(sources[k % len(sources)]), k, n) for k in range(n))
        return paths, names

    def foreign_files(self, data: dict) -> list[Path]:
        """Files of imagesTr, labelsTr and provenance that the run of manifest ``data``
        did not write (see :meth:`run_files`): a run never deletes or mixes with them."""
        paths, names = self.run_files(data)
        ending = (data.get("plan") or {}).get("file_ending") or self.file_ending
        view = OutputLayout(self.root, ending, self.n_channels)
        out = []
        for folder in (self.images, self.labels, self.provenance):
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if is_temporary(p) or self.rel(p) in paths:
                    continue
                if p.is_file() and case_of_file(view, folder, p.name) in names:
                    continue
                out.append(p)
        return out

    def remove_run(self, data: dict) -> list[str]:
        """Delete what the run of manifest ``data`` wrote: its files of imagesTr, labelsTr
        and provenance (those folders too once empty), dataset.json, manifest.json,
        splits_final.json, loads.png and .lesionmix/; nothing else. Call
        :meth:`foreign_files` first. Returns what was removed, in words."""
        paths, names = self.run_files(data)
        ending = (data.get("plan") or {}).get("file_ending") or self.file_ending
        view = OutputLayout(self.root, ending, self.n_channels)
        count = 0
        for folder in (self.images, self.labels, self.provenance):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if p.is_file() and (self.rel(p) in paths or is_temporary(p)
                                    or case_of_file(view, folder, p.name) in names):
                    p.unlink()
                    count += 1
            with contextlib.suppress(OSError):
                folder.rmdir()
        removed = [f"{count} case file(s)"] if count else []
        for name in OWNED_FILES:
            if (self.root / name).is_file():
                (self.root / name).unlink()
                removed.append(name)
        if self.work.is_dir():
            shutil.rmtree(self.work)
            removed.append(self.work.name + "/")
        return removed

    @property
    def reserve(self) -> Path:
        """Space held back while a run writes its cases, given back before the run's last
        writes (manifest, dataset.json, splits), so a full disk still ends with a
        consistent dataset."""
        return self.work / "reserve"

    def make_reserve(self, nbytes: int) -> None:
        """Hold ``nbytes`` of the file system in :attr:`reserve` (WriteError if it
        cannot: OUTPUT is too full to start)."""
        try:
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                try:
                    os.posix_fallocate(fd, 0, nbytes)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    os.write(fd, b"\0" * nbytes)  # file systems without fallocate
            finally:
                os.close(fd)
        except OSError as exc:
            self.release_reserve()
            raise write_error(self.reserve, f"{exc.strerror}: OUTPUT needs {nbytes} bytes "
                              "spare to start", exc.errno) from None

    def release_reserve(self) -> None:
        """Give the reserved space back."""
        self.reserve.unlink(missing_ok=True)

    def make_folders(self) -> None:
        """Create imagesTr/, labelsTr/, provenance/ and .lesionmix/tmp/."""
        for d in (self.images, self.labels, self.provenance, self.tmp):
            d.mkdir(parents=True, exist_ok=True)


def reserve_bytes(n_cases: int) -> int:
    """Space a run holds back for its last writes: 64 KB plus 2 KB per case (a case's
    manifest entry and its lines in dataset.json and the splits), at most 64 MB."""
    return min(64 * 1024 + 2048 * int(n_cases), 64 << 20)


def case_of_file(layout: OutputLayout, folder: Path, filename: str) -> str | None:
    """The case a file of imagesTr/labelsTr/provenance belongs to (None: not ours)."""
    ending = ".json" if folder == layout.provenance else layout.file_ending
    if filename.startswith(".") or not filename.endswith(ending):
        return None
    stem = filename[: -len(ending)]
    if folder == layout.images:
        found = split_channel(stem)
        return found[0] if found else None
    return stem


def list_output_cases(layout: OutputLayout) -> tuple[dict, list[str]]:
    """Cases of an output dataset by file name, as nnU-Net finds them.

    Returns
    -------
    cases : dict
        name → (image paths by channel index, label path or None).
    problems : list of str
        Hidden or temporary files in imagesTr/labelsTr, files of another ending, images
        without the channel suffix.
    """
    problems, cases = [], {}
    ending = layout.file_ending
    for folder in (layout.images, layout.labels):
        if not folder.is_dir():
            problems.append(f"{folder}: missing folder")
            continue
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or is_temporary(p):
                problems.append(f"{p}: hidden or temporary file (nnU-Net would read it)")
                continue
            if not p.name.endswith(ending):
                problems.append(f"{p}: does not end in the dataset's file_ending {ending}")
                continue
            stem = p.name[: -len(ending)]
            if folder == layout.images:
                found = split_channel(stem)
                if found is None:
                    problems.append(f"{p}: image name lacks the _XXXX channel suffix")
                    continue
                cases.setdefault(found[0], ({}, None))[0][found[1]] = p
            else:
                imgs = cases.get(stem, ({}, None))[0]
                cases[stem] = (imgs, p)
    return cases, problems


def write_dataset_json(layout: OutputLayout, channel_names: dict, labels: dict,
                       num_training: int, meta: dict | None = None,
                       description: str = "") -> dict:
    """Write the output's ``dataset.json`` (atomically) and return it.

    Fields of the input's dataset.json (``meta``: name, licence, ...) are kept except
    those nnU-Net derives from the files; ``numTraining`` is the number of complete cases.
    """
    out = {k: v for k, v in (meta or {}).items()
           if k not in ("dataset", "numTest", "training", "test", "modality")}
    out["channel_names"] = dict(channel_names)
    out["labels"] = dict(sorted(labels.items(), key=lambda kv: kv[1]))
    out["numTraining"] = int(num_training)
    out["file_ending"] = layout.file_ending
    if description:
        out["description"] = description
    atomic_write_text(layout.dataset_json, json.dumps(out, indent=2) + "\n",
                      tmp_dir=layout.tmp)
    return out

