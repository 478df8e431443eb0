"""Input datasets: an nnU-Net v2 raw dataset or a folder of paired images and labels.

Two layouts are read:

nnU-Net v2 raw
    ``dataset.json`` (``channel_names``, ``labels``, ``file_ending``), ``imagesTr/`` with
    one file per channel named ``<case>_0000<ending>``, ``<case>_0001<ending>``, ... and
    ``labelsTr/<case><ending>``.
Paired folders
    ``images/`` and ``labels/``. The label ``labels/<case><ext>`` pairs with the images
    ``images/<case>_0000<ext>``, ``images/<case>_0001<ext>``, ... (one per channel, the
    nnU-Net rule), or with the single image ``images/<case><ext>`` (one channel). ``<ext>``
    is any of ``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, ``.mhd``, ``.nhdr`` and may differ
    between images and labels. The label values become ``{"background": 0, "label_1": 1,
    ...}`` up to the largest value found; the channels are named ``"0"``, ``"1"``, ...

Listing (:func:`open_dataset`) only looks at file names. :func:`validate` then reads every
case fully (every voxel, gzip integrity included) through :meth:`Case.read` and reports
each bad case by name with the file and the problem. Nothing here imports napari or Qt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.case import Case
from ..core.errors import CaseError
from ..core.image_io import read_image, write_image
from ..core.io_utils import (
    IMAGE_SUFFIXES,
    atomic_path,
    channel_file,
    list_image_files,
    parse_json,
    split_channel,
    split_ext,
)
from .layout import NNUNET_ENDINGS, OutputLayout

__all__ = [
    "DatasetError",
    "SourceCase",
    "Dataset",
    "BadCase",
    "open_dataset",
    "output_ending",
    "validate",
    "iter_valid",
]


class DatasetError(ValueError):
    """The dataset folder as a whole is unusable (not one bad case). Names the path."""


@dataclass
class SourceCase:
    """One input case by path (nothing read yet).

    Attributes
    ----------
    name : str
        The case id (nnU-Net identifier).
    image_paths : list of Path
        One absolute path per channel, in channel order; may be shorter than the
        dataset's channel count when files are missing (see ``problem``).
    label_path : Path or None
        Absolute path of the label file; None when it is missing.
    problem : str
        Empty, or why the case is unusable from its file names alone.
    """

    name: str
    image_paths: list[Path]
    label_path: Path | None
    problem: str = ""

    def files(self) -> list[Path]:
        """Every file of the case (images then label)."""
        return list(self.image_paths) + ([self.label_path] if self.label_path else [])


@dataclass
class BadCase:
    """A case that failed validation: its name and the problem (file named in it)."""

    name: str
    problem: str

    def to_dict(self) -> dict:
        return {"case": self.name, "problem": self.problem}


@dataclass
class Dataset:
    """A listed input dataset.

    Attributes
    ----------
    root : Path
        The dataset folder (absolute).
    layout : {"nnunet", "paired"}
    cases : list of SourceCase
        Sorted by case name.
    channel_names : dict
        nnU-Net's ``{"0": "T1", ...}``.
    labels : dict or None
        nnU-Net's ``{"background": 0, "lesion": 1}``; None for paired folders until
        :func:`validate` fills it from the values found.
    file_ending : str
        The output file ending (nnU-Net's ``file_ending``).
    meta : dict
        The input ``dataset.json`` (empty for paired folders).
    """

    root: Path
    layout: str
    cases: list[SourceCase]
    channel_names: dict
    labels: dict | None
    file_ending: str
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def label_values(self) -> set[int] | None:
        """Declared label values, or None when the dataset declares none."""
        if self.labels is None:
            return None
        return {int(v) for v in self.labels.values()}

    def describe(self) -> str:
        """The input as the plan names it."""
        return str(self.root)

    def iter_valid(self, bad: list, progress: Callable[[int, int], None] | None = None
                   ) -> Iterator[tuple[SourceCase, Case]]:
        """Read every case fully; see :func:`iter_valid`."""
        return iter_valid(self, bad, progress)

    def write_original(self, source: SourceCase, layout: OutputLayout,
                       compression_level: int | None = None) -> list[Path]:
        """Put one input case into the output under its own name.

        Files whose format (extension) is the output's are copied byte for byte; others
        are read and written in the output format with the same voxels and geometry. Each
        file is written atomically; a file already there with the source's size is kept
        (``--resume``).

        Returns
        -------
        list of Path
            The case's files in the output.
        """
        targets = layout.image_paths(source.name) + [layout.label_path(source.name)]
        for src, dst in zip(source.image_paths + [source.label_path], targets):
            ext = split_ext(src.name)[1].lower()
            same = ext == layout.file_ending.lower() and ext not in (".mhd", ".nhdr")
            if dst.exists() and (not same or dst.stat().st_size == src.stat().st_size):
                continue
            if same:
                with atomic_path(dst, tmp_dir=layout.tmp) as tmp:
                    shutil.copyfile(src, tmp)
            else:
                array, geometry, _ = read_image(src)
                write_image(array, geometry, dst, overwrite=True,
                            compression_level=compression_level, tmp_dir=layout.tmp)
        return targets

    def fingerprint(self) -> str:
        """Hash of every case's file names, sizes and modification times.

        It identifies the input for ``--resume`` without reading the voxels.
        """
        h = hashlib.sha256()
        h.update(f"{self.layout}\n".encode())
        for case in self.cases:
            h.update(f"{case.name}\n".encode())
            for p in case.files():
                try:
                    st = p.stat()
                    h.update(f"{p.relative_to(self.root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{p}:missing\n".encode())
        return h.hexdigest()[:16]


# ------------------------------------------------------------------------------ listing
def open_dataset(path: str | Path) -> Dataset:
    """List the cases of an nnU-Net v2 raw dataset or of a paired images/labels folder.

    Parameters
    ----------
    path : path-like
        The dataset folder.

    Returns
    -------
    Dataset
        Every case found by name, sorted; cases whose files are missing carry a
        ``problem`` (they are reported by :func:`validate`).

    Raises
    ------
    DatasetError
        The folder does not exist, is neither layout, or its dataset.json is unusable.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if (root / "dataset.json").is_file() and (root / "imagesTr").is_dir():
        return _open_nnunet(root)
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return _open_paired(root)
    raise DatasetError(
        f"{root}: not a dataset: expected an nnU-Net v2 raw dataset (dataset.json, imagesTr/, "
        "labelsTr/) or a folder with images/ and labels/")


def _read_meta(root: Path) -> dict:
    path = root / "dataset.json"
    try:
        meta = parse_json(path.read_text())
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    missing = [k for k in ("channel_names", "labels", "file_ending") if k not in meta]
    if "channel_names" in missing and "modality" in meta:
        meta["channel_names"] = meta["modality"]
        missing.remove("channel_names")
    if missing:
        raise DatasetError(f"{path}: missing field(s) {', '.join(missing)}")
    if not isinstance(meta["channel_names"], dict) or not meta["channel_names"]:
        raise DatasetError(f"{path}: channel_names must be a non-empty object")
    keys = sorted(meta["channel_names"], key=lambda k: int(k) if str(k).isdigit() else -1)
    if keys != [str(i) for i in range(len(keys))]:
        raise DatasetError(f"{path}: channel_names keys must be \"0\", \"1\", ...; got {keys}")
    labels = meta["labels"]
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(f"{path}: labels must be a non-empty object")
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DatasetError(
                f"{path}: label {name!r} has value {value!r}; only non-negative whole label "
                "values are supported (not nnU-Net region lists)")
    if meta["file_ending"] not in IMAGE_SUFFIXES:
        raise DatasetError(f"{path}: file_ending {meta['file_ending']!r} is not one of "
                           f"{', '.join(IMAGE_SUFFIXES)}")
    return meta


def _open_nnunet(root: Path) -> Dataset:
    meta = _read_meta(root)
    ending = meta["file_ending"]
    n_ch = len(meta["channel_names"])
    images: dict[str, dict[int, Path]] = {}
    for p in list_image_files(root / "imagesTr"):
        if not p.name.endswith(ending):
            continue
        found = split_channel(p.name[: -len(ending)])
        if found is None:
            continue
        images.setdefault(found[0], {})[found[1]] = p
    labels = {p.name[: -len(ending)]: p for p in list_image_files(root / "labelsTr")
              if p.name.endswith(ending)}
    cases = []
    for name in sorted(set(images) | set(labels)):
        chans = images.get(name, {})
        paths = [chans[c] for c in range(n_ch) if c in chans]
        problems = []
        missing = [c for c in range(n_ch) if c not in chans]
        if missing:
            problems.append("missing image file(s) " + ", ".join(
                str(root / "imagesTr" / channel_file(name, c, ending)) for c in missing))
        extra = sorted(c for c in chans if c >= n_ch)
        if extra:
            problems.append(f"{chans[extra[0]]}: channel {extra[0]} but dataset.json declares "
                            f"{n_ch} channel(s)")
        label = labels.get(name)
        if label is None:
            problems.append(f"missing label file {root / 'labelsTr' / (name + ending)}")
        cases.append(SourceCase(name, paths, label, "; ".join(problems)))
    odd = _unlisted(root / "imagesTr", folders=False, ending=ending)
    odd.update({k: v for k, v in _unlisted(root / "labelsTr", folders=False,
                                           ending=ending).items() if k not in odd})
    cases = _with_problems(cases, odd)
    if not cases:
        raise DatasetError(f"{root / 'imagesTr'}: no case files ending in {ending}")
    return Dataset(root, "nnunet", cases, dict(meta["channel_names"]),
                   {str(k): int(v) for k, v in meta["labels"].items()}, output_ending(ending),
                   meta)


def output_ending(ending: str) -> str:
    """The output's file ending for an input ending: the same when nnU-Net v2 reads it as
    one file (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``), else ``.nii.gz`` (``.mhd`` and
    ``.nhdr`` keep their voxels in a second file, and nnU-Net reads neither)."""
    return ending if ending in NNUNET_ENDINGS + (".nii",) else ".nii.gz"


def _unlisted(folder: Path, folders: bool, ending: str | None = None) -> dict[str, str]:
    """What :func:`list_image_files` leaves out but a user would take for a case: broken
    symbolic links named like image files (ending in ``ending`` if given), and
    (``folders``) sub-folders, e.g. a DICOM series. Returns case name → problem."""
    out: dict[str, str] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        stem, ext = split_ext(p.name)
        if ending is not None and ext and not p.name.endswith(ending):
            continue
        if ext and p.is_symlink() and not p.exists():
            problem = (f"{p}: broken symbolic link (it points to {os.readlink(p)}, which does "
                       "not exist)")
        elif folders and p.is_dir() and not ext:
            problem = (f"{p}: a folder (a DICOM series?) where one image file is expected; "
                       "convert it to one .nii.gz file (e.g. with SimpleITK or dcm2niix)")
        else:
            continue
        found = split_channel(stem)
        out[found[0] if found else stem] = problem
    return out


def _with_problems(cases: list[SourceCase], odd: dict[str, str]) -> list[SourceCase]:
    """``cases`` with the problems of :func:`_unlisted` entries added (new cases for names
    that had no other file), sorted by name."""
    by_name = {c.name: c for c in cases}
    for name, problem in odd.items():
        case = by_name.get(name)
        if case is None:
            by_name[name] = SourceCase(name, [], None, problem)
        else:
            case.problem = problem + ("; " + case.problem if case.problem else "")
    return [by_name[n] for n in sorted(by_name)]


def _open_paired(root: Path) -> Dataset:
    images: dict[str, dict[int, Path]] = {}
    single: dict[str, Path] = {}
    endings = set()
    for p in list_image_files(root / "images"):
        stem, ext = split_ext(p.name)
        if not ext:
            continue
        endings.add(ext.lower())
        found = split_channel(stem)
        if found is not None:
            images.setdefault(found[0], {})[found[1]] = p
        else:
            single[stem] = p
    labels = {}
    for p in list_image_files(root / "labels"):
        stem, ext = split_ext(p.name)
        if ext:
            labels[stem] = p
            endings.add(ext.lower())
    names = sorted(set(images) | set(single) | set(labels))
    n_ch = max((max(ch) + 1 for ch in images.values()), default=1)
    cases = []
    for name in names:
        problems = []
        if name in images:
            chans = images[name]
            paths = [chans[c] for c in range(n_ch) if c in chans]
            missing = [c for c in range(n_ch) if c not in chans]
            if missing:
                problems.append(f"missing image channel(s) {missing} (expected "
                                f"{root / 'images' / channel_file(name, missing[0], '')}<ext>)")
            if name in single:
                problems.append(f"both {single[name]} and channel files {paths[0]} exist")
        elif name in single:
            paths = [single[name]]
            if n_ch > 1:
                problems.append(f"{single[name]}: one channel but other cases have {n_ch}")
        else:
            paths = []
            problems.append(f"no image file for label {labels[name]} (expected "
                            f"{root / 'images' / name}_0000<ext> or {root / 'images' / name}<ext>)")
        label = labels.get(name)
        if label is None:
            problems.append(f"missing label file {root / 'labels' / name}<ext>")
        cases.append(SourceCase(name, paths, label, "; ".join(problems)))
    odd = _unlisted(root / "images", folders=True)
    odd.update({k: v for k, v in _unlisted(root / "labels", folders=True).items() if k not in odd})
    cases = _with_problems(cases, odd)
    if not cases:
        raise DatasetError(f"{root}: images/ and labels/ hold no image files")
    ending = endings.pop() if len(endings) == 1 else ".nii.gz"
    if ending not in NNUNET_ENDINGS:
        ending = ".nii.gz"
    return Dataset(root, "paired", cases, {str(c): str(c) for c in range(n_ch)}, None, ending, {})


# ------------------------------------------------------------------------------ validation
def read_case(dataset: Dataset, case: SourceCase) -> Case:
    """Read and validate one case fully.

    Raises
    ------
    CaseError
        Missing files (from listing), unreadable or truncated files, shape or geometry
        mismatch, NaN, label values not declared in dataset.json, wrong dimension.
    """
    if case.problem:
        raise CaseError(case.problem)
    return Case.read([str(p) for p in case.image_paths], str(case.label_path), name=case.name,
                     allowed_labels=dataset.label_values(),
                     channel_names=[str(dataset.channel_names[str(i)])
                                    for i in range(dataset.n_channels)])


def iter_valid(dataset: Dataset, bad: list,
               progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[SourceCase, Case]]:
    """Read every case fully; yield the good ones, append the bad ones to ``bad``.

    Parameters
    ----------
    dataset : Dataset
    bad : list
        Receives a :class:`BadCase` (name and a message naming the file and the problem)
        for every case that fails.
    progress : callable(done, total), optional

    Yields
    ------
    (SourceCase, Case)
        Each good case while it is in memory (one case at a time).

    Notes
    -----
    Every case must have the same number of spatial dimensions as the first good case
    (nnU-Net trains on one dimension). For a paired folder, ``dataset.labels`` is filled
    at the end with every value from 0 to the largest found (nnU-Net needs consecutive
    labels).
    """
    ndim = None
    max_label = 0
    for i, source in enumerate(dataset.cases):
        try:
            case = read_case(dataset, source)
            if ndim is None:
                ndim = case.ndim
            elif case.ndim != ndim:
                raise CaseError(f"{source.image_paths[0]}: {case.ndim}D but the other cases are "
                                f"{ndim}D")
        except CaseError as exc:
            bad.append(BadCase(source.name, str(exc)))
            case = None
        if case is not None:
            max_label = max(max_label, max(case.label_values(), default=0))
            yield source, case
            del case
        if progress is not None:
            progress(i + 1, len(dataset.cases))
    if dataset.labels is None:
        dataset.labels = {"background": 0}
        dataset.labels.update({f"label_{v}": v for v in range(1, max_label + 1)})


def validate(dataset: Dataset, progress=None) -> tuple[list[SourceCase], list[BadCase]]:
    """Read every case fully; return the good cases and the bad ones with their problems.

    See :func:`iter_valid`.
    """
    bad: list[BadCase] = []
    good = [source for source, _ in iter_valid(dataset, bad, progress)]
    return good, bad

