"""The output: an nnU-Net v2 raw dataset, its dataset.json, the manifest, and the checks.

Layout of ``OUTPUT``::

    dataset.json                 nnU-Net's: channel_names, labels, numTraining, file_ending
    imagesTr/<case>_0000<ending> one file per channel
    labelsTr/<case><ending>
    provenance/<case>.json       one sidecar per synthesised case (nnU-Net ignores it)
    manifest.json                the run: recipe, seed, versions, one entry per case
    loads.png                    reference, target and achieved lesion loads
    .lesionmix/                  shared with the workers: bank.npz, likelihood.nii.gz, plan.json

Synthesised cases are named ``<source>_lmix<NNNN>`` (``NNNN``: the output index,
zero-padded to at least 4 digits). Every file is written under a temporary name and
renamed; the manifest entry of a case is written last, so a case is complete exactly when
its manifest entry says ``written`` and its files exist.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.case import Case
from ..core.errors import CaseError
from ..core.image_io import read_image, write_image
from ..core.io_utils import atomic_path, atomic_write_text, is_temporary
from .dataset import Dataset, SourceCase, split_ext

__all__ = [
    "OutputLayout",
    "output_name",
    "Manifest",
    "copy_original",
    "write_dataset_json",
    "verify_output",
    "package_versions",
]

MANIFEST_FORMAT = "napari-lesionmix/manifest"
MANIFEST_VERSION = 1
#: top-level entries of OUTPUT that a run creates (what --overwrite removes)
OWNED = ("imagesTr", "labelsTr", "provenance", ".lesionmix", "dataset.json", "manifest.json",
         "loads.png")
LMIX_PATTERN = re.compile(r"_lmix\d{4,}$")


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
    def plot(self) -> Path:
        return self.root / "loads.png"

    def image_paths(self, name: str) -> list[Path]:
        """The channel files of case ``name``."""
        return [self.images / f"{name}_{c:04d}{self.file_ending}" for c in range(self.n_channels)]

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
        """True if the output folder exists and holds anything."""
        return self.root.is_dir() and any(self.root.iterdir())

    def temporaries(self) -> list[Path]:
        """Leftover temporary files (from :func:`atomic_path`) anywhere in the output."""
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

    def remove_owned(self) -> list[str]:
        """Delete everything a run creates (see ``OWNED``); return what was removed."""
        removed = []
        for name in OWNED:
            p = self.root / name
            if p.is_dir():
                shutil.rmtree(p)
                removed.append(name + "/")
            elif p.exists():
                p.unlink()
                removed.append(name)
        return removed


def package_versions() -> dict:
    """Versions of Python and the packages that decide the output's bytes."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("napari-lesionmix", "numpy", "scipy", "SimpleITK", "opencv-python-headless",
                 "scikit-image"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if out["napari-lesionmix"] is None:  # running from a source tree
        from .. import __version__
        out["napari-lesionmix"] = __version__
    return out


# ------------------------------------------------------------------------------ manifest
class Manifest:
    """``manifest.json``: the run's plan and one entry per case, rewritten atomically.

    Parameters
    ----------
    path : Path
    data : dict
        Holds at least ``plan`` and ``cases`` (name → entry).
    """

    def __init__(self, path: Path, data: dict):
        self.path = Path(path)
        self.data = data
        self.data.setdefault("cases", {})

    @classmethod
    def new(cls, path: Path, **fields) -> Manifest:
        now = _now()
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "started": now,
                "updated": now, "state": "running"}
        data.update(fields)
        data.setdefault("cases", {})
        return cls(path, data)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest; ValueError naming the file if it is not one."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the manifest ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{path}: not a napari-lesionmix manifest")
        return cls(path, data)

    @property
    def cases(self) -> dict:
        return self.data["cases"]

    def save(self) -> None:
        """Write the whole manifest atomically (temporary file, then rename)."""
        self.data["updated"] = _now()
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def record(self, name: str, entry: dict) -> None:
        """Add or replace one case's entry and save."""
        self.cases[name] = entry
        self.save()

    def written(self) -> dict:
        """Entries of cases whose status is ``written``."""
        return {k: v for k, v in self.cases.items() if v.get("status") == "written"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ------------------------------------------------------------------------------ originals
def copy_original(dataset: Dataset, source: SourceCase, layout: OutputLayout,
                  compression_level: int | None = None) -> list[Path]:
    """Put one input case into the output under its own name.

    Files whose format (extension) is the output's are copied byte for byte; others are
    read and written in the output format with the same voxels and geometry. Each file
    is written atomically; a file already there with the source's size is kept
    (``--resume``).

    Returns
    -------
    list of Path
        The case's files in the output.
    """
    targets = layout.image_paths(source.name) + [layout.label_path(source.name)]
    for src, dst in zip(source.image_paths + [source.label_path], targets):
        _, ext = split_ext(src.name)
        same = ext.lower() == layout.file_ending.lower()
        if dst.exists() and (not same or dst.stat().st_size == src.stat().st_size):
            continue
        if same:
            with atomic_path(dst, tmp_dir=layout.tmp) as tmp:
                shutil.copyfile(src, tmp)
        else:
            array, geometry, _ = read_image(src)
            write_image(array, geometry, dst, overwrite=True, compression_level=compression_level,
                        tmp_dir=layout.tmp)
    return targets


def write_dataset_json(dataset: Dataset, layout: OutputLayout, num_training: int,
                       description: str = "") -> dict:
    """Write the output's ``dataset.json`` (atomically) and return it.

    Fields of the input's dataset.json are kept (name, licence, ...) except those nnU-Net
    derives from the files; ``numTraining`` is the number of complete cases.
    """
    meta = {k: v for k, v in dataset.meta.items() if k not in ("dataset", "numTest", "training",
                                                                "test", "modality")}
    meta["channel_names"] = dict(dataset.channel_names)
    meta["labels"] = dict(sorted(dataset.labels.items(), key=lambda kv: kv[1]))
    meta["numTraining"] = int(num_training)
    meta["file_ending"] = layout.file_ending
    if description:
        meta["description"] = description
    atomic_write_text(layout.dataset_json, json.dumps(meta, indent=2) + "\n")
    return meta


# ------------------------------------------------------------------------------ verify
def list_output_cases(layout: OutputLayout) -> tuple[dict, list[str]]:
    """Cases of an output dataset by file name, as nnU-Net finds them.

    Returns
    -------
    cases : dict
        name → (image paths by channel index, label path or None).
    problems : list of str
        Hidden or temporary files in imagesTr/labelsTr, files of another ending.
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
                m = re.fullmatch(r"(.+)_(\d{4})", stem)
                if m is None:
                    problems.append(f"{p}: image name lacks the _XXXX channel suffix")
                    continue
                cases.setdefault(m[1], ({}, None))[0][int(m[2])] = p
            else:
                imgs = cases.get(stem, ({}, None))[0]
                cases[stem] = (imgs, p)
    return cases, problems


def verify_output(root: str | Path, progress=None) -> tuple[int, list[str]]:
    """Re-read every file of an output dataset fully and check it is trainable.

    Checks: dataset.json has nnU-Net's fields; numTraining equals the cases found; every
    case has all its channels and its label; no hidden or temporary file in imagesTr or
    labelsTr; every file reads fully (gzip CRC and length, size against the header); no
    NaN or Inf; channels and labels share shape and geometry; every label value is
    declared in dataset.json; the manifest agrees with the files (every ``written``
    entry's files exist with their recorded sizes, every synthesised case on disk has an
    entry and a provenance sidecar).

    Parameters
    ----------
    root : path-like
        The output folder.
    progress : callable(done, total), optional

    Returns
    -------
    n_cases : int
        Cases checked.
    problems : list of str
        Empty when everything holds; each names the file.
    """
    root = Path(root).resolve()
    djson = root / "dataset.json"
    try:
        meta = json.loads(djson.read_text())
    except (OSError, ValueError) as exc:
        return 0, [f"{djson}: cannot read it ({exc})"]
    missing = [k for k in ("channel_names", "labels", "numTraining", "file_ending") if k not in meta]
    if missing:
        return 0, [f"{djson}: missing field(s) {', '.join(missing)}"]
    n_ch = len(meta["channel_names"])
    layout = OutputLayout(root, meta["file_ending"], n_ch)
    allowed = {int(v) for v in meta["labels"].values() if isinstance(v, int)}
    values = sorted(allowed)
    problems = []
    if values != list(range(len(values))):
        problems.append(f"{djson}: label values {values} are not consecutive from 0")
    cases, listing = list_output_cases(layout)
    problems += listing
    if meta["numTraining"] != len(cases):
        problems.append(f"{djson}: numTraining is {meta['numTraining']} but {len(cases)} case(s) "
                        "are in imagesTr/labelsTr")
    for i, (name, (imgs, label)) in enumerate(sorted(cases.items())):
        where = f"case {name}"
        want = [imgs.get(c) for c in range(n_ch)]
        if any(p is None for p in want) or set(imgs) - set(range(n_ch)):
            problems.append(f"{where}: channels found {sorted(imgs)}, dataset.json declares "
                            f"{n_ch}")
        elif label is None:
            problems.append(f"{where}: missing label file {layout.label_path(name)}")
        else:
            try:
                case = Case.read([str(p) for p in want], str(label), name=name,
                                 allowed_labels=allowed)
                for p in want:  # NaN/Inf in the raw voxels (case.py may zero them)
                    _check_finite(p)
                del case
            except CaseError as exc:
                problems.append(f"{where}: {exc}")
        if progress is not None:
            progress(i + 1, len(cases))
    problems += _check_manifest(layout, cases)
    return len(cases), problems


def _check_finite(path: Path) -> None:
    """CaseError if a float NIfTI holds NaN or Inf in its raw bytes."""
    name = path.name.lower()
    if not (name.endswith(".nii.gz") or name.endswith(".nii")):
        return
    import gzip
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(352)
        if len(head) < 348:
            return
        endian = "<" if int.from_bytes(head[:4], "little") == 348 else ">"
        datatype = int.from_bytes(head[70:72], "little" if endian == "<" else "big")
        code = {16: "f4", 64: "f8"}.get(datatype)
        if code is None:
            return
        offset = int(np.frombuffer(head[108:112], endian + "f4")[0])
        fh.seek(offset) if opener is open else fh.read(offset - len(head))
        dtype = np.dtype(endian + code)
        while True:
            chunk = fh.read(dtype.itemsize * (1 << 20))
            if not chunk:
                break
            vals = np.frombuffer(chunk[: len(chunk) // dtype.itemsize * dtype.itemsize], dtype)
            if not np.all(np.isfinite(vals)):
                raise CaseError(f"{path}: {int((~np.isfinite(vals)).sum())} or more voxel(s) "
                                "are NaN or Inf")


def _check_manifest(layout: OutputLayout, cases: dict) -> list[str]:
    if not layout.manifest.exists():
        return []
    try:
        manifest = Manifest.load(layout.manifest)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    written = manifest.written()
    for name, entry in written.items():
        for rel, size in zip(entry.get("files", []), entry.get("sizes", [])):
            p = layout.root / rel
            if not p.exists():
                problems.append(f"{layout.manifest}: case {name} is written but {p} is missing")
            elif size is not None and p.stat().st_size != size:
                problems.append(f"{p}: {p.stat().st_size} bytes, the manifest says {size}")
    for name in cases:
        if LMIX_PATTERN.search(name):
            if name not in written:
                problems.append(f"case {name}: on disk but not written in {layout.manifest}")
            elif not layout.provenance_path(name).exists():
                problems.append(f"case {name}: missing provenance {layout.provenance_path(name)}")
    for name in written:
        if name not in cases:
            problems.append(f"{layout.manifest}: case {name} is written but not in imagesTr/"
                            "labelsTr")
    return problems


def file_sizes(paths) -> list[int]:
    """Sizes in bytes of existing files."""
    return [os.stat(p).st_size for p in paths]
