"""Open an nnU-Net v2 raw dataset for review: the case index and one loaded case.

Any nnU-Net v2 raw dataset opens (``dataset.json``, ``imagesTr/``, ``labelsTr/``). A
dataset written by ``lesionmix generate`` (or the plugin's Export) says more: its
``manifest.json`` gives each synthesised case's source, target and achieved load and how
synthesis ended, and its ``provenance/<case>.json`` sidecars give every operation, from
which the index counts the lesions added and removed.

Only the rows (names, paths, a few numbers) stay in memory for the whole dataset; the
voxels of one case (and of its source) are read by :meth:`ReviewDataset.load`.

Examples
--------
>>> review = ReviewDataset.open("out/dataset.json")          # doctest: +SKIP
>>> [r.name for r in review.rows][:2]                        # doctest: +SKIP
['brain01', 'brain01_lmix0000']
>>> case = review.load("brain01_lmix0000")                   # doctest: +SKIP
>>> case.changes.counts()                                    # doctest: +SKIP
{'kept': 13, 'added': 2, 'removed': 0}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..batch.dataset import DatasetError, open_dataset
from ..batch.layout import LMIX_PATTERN, OutputLayout
from ..batch.manifest import Manifest
from ..batch.prepare import resolve_classes
from ..core.case import Case
from ..core.errors import CaseError
from ..core.provenance import Provenance
from ..core.recipe import Recipe, RecipeError
from .changes import Changes, difference_map, lesion_changes, resample_case

__all__ = ["ReviewError", "CaseRow", "LoadedCase", "ReviewDataset", "find_dataset_root"]

#: subfolders of a dataset that open the dataset itself
_SUBFOLDERS = ("imagesTr", "labelsTr", "provenance", "imagesTs")


class ReviewError(ValueError):
    """A dataset or case cannot be reviewed; the message names the file and the problem."""


def find_dataset_root(path) -> Path | None:
    """The nnU-Net raw dataset that ``path`` opens, or None; never raises.

    ``path`` may be the dataset folder, its ``dataset.json``, or its ``imagesTr/``,
    ``labelsTr/`` or ``provenance/`` folder.
    """
    try:
        p = Path(path).expanduser()
        if p.is_file() and p.name == "dataset.json":
            p = p.parent
        elif p.is_dir() and p.name in _SUBFOLDERS and (p.parent / "dataset.json").is_file():
            p = p.parent
        if p.is_dir() and (p / "dataset.json").is_file() and (p / "imagesTr").is_dir():
            return p.resolve()
    except (OSError, TypeError, ValueError):
        return None
    return None


@dataclass
class CaseRow:
    """One case of the index.

    Attributes
    ----------
    name : str
    kind : {"original", "synthesised", "case"}
        ``case`` when the dataset does not say (not written by lesionmix).
    source : str or None
        The case a synthesised case was made from.
    target_load_mm3, achieved_load_mm3 : float or None
        Lesion loads; an original's achieved load is its own load. Unknown loads are
        filled in when the case is first loaded.
    status : str
        How synthesis ended (``reached``, ``stuck``, ``cap``, ``closest``,
        ``no_lesions``), ``original``, or "" when unknown.
    added, removed : int or None
        Lesions added and removed (accepted operations in the provenance).
    problem : str
        Why the case cannot be opened ("" when it can).
    """

    name: str
    kind: str
    image_paths: list
    label_path: Path | None
    source: str | None = None
    target_load_mm3: float | None = None
    achieved_load_mm3: float | None = None
    status: str = ""
    added: int | None = None
    removed: int | None = None
    provenance_path: Path | None = None
    problem: str = ""

    def to_dict(self) -> dict:
        """The row as JSON-ready values (paths relative to nothing: absolute strings)."""
        return {"case": self.name, "kind": self.kind, "source": self.source,
                "target_load_mm3": self.target_load_mm3,
                "achieved_load_mm3": self.achieved_load_mm3, "status": self.status,
                "added": self.added, "removed": self.removed, "problem": self.problem}


@dataclass
class LoadedCase:
    """The one case in memory: the result, its source on the same grid, what changed.

    Attributes
    ----------
    row : CaseRow
    result : Case
    source : Case or None
        The source case resampled onto the result's grid if it was on another one
        (``source_note`` says so); None for originals or when the source is not found.
    provenance : Provenance or None
    changes : Changes
        Lesions by origin and the origin map.
    difference : ndarray or None
        ``result - source`` per channel, float32, ``(C, *shape)``.
    source_note : str
        Where the source came from, or why there is none.
    """

    row: CaseRow
    result: Case
    source: Case | None
    provenance: Provenance | None
    changes: Changes
    difference: np.ndarray | None = None
    source_note: str = ""

    @property
    def name(self) -> str:
        return self.row.name


@dataclass
class ReviewDataset:
    """An nnU-Net v2 raw dataset opened for review (see the module's docstring).

    Build it with :meth:`open`.
    """

    root: Path
    rows: list = field(default_factory=list)
    recipe: Recipe = field(default_factory=Recipe)
    classes: list = field(default_factory=list)
    manifest: dict | None = None
    notes: list = field(default_factory=list)
    file_ending: str = ".nii.gz"
    n_channels: int = 1
    labels: dict = field(default_factory=dict)
    channel_names: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path) -> ReviewDataset:
        """Open the dataset at ``path`` (folder, ``dataset.json`` or ``imagesTr/``).

        Raises
        ------
        ReviewError
            Not an nnU-Net raw dataset, or its dataset.json is unusable (names the file).
        """
        root = find_dataset_root(path)
        if root is None:
            raise ReviewError(f"{Path(path).expanduser()}: not an nnU-Net v2 raw dataset "
                              "(expected a folder with dataset.json and imagesTr/, or its "
                              "dataset.json)")
        out = cls(root)
        out.refresh()
        return out

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(self.root, self.file_ending, self.n_channels)

    def refresh(self) -> None:
        """List the cases again (after files changed on disk)."""
        try:
            dataset = open_dataset(self.root)
        except DatasetError as exc:
            raise ReviewError(str(exc)) from None
        self.file_ending, self.n_channels = dataset.file_ending, dataset.n_channels
        self.labels = dict(dataset.labels or {})
        self.channel_names = dict(dataset.channel_names)
        self.notes = []
        self.manifest = self._read_manifest()
        self.recipe = self._read_recipe()
        try:
            self.classes = resolve_classes(dataset, self.recipe) or []
        except RecipeError as exc:
            self.notes.append(f"lesion classes: {exc}; every non-zero label counts")
            self.classes = sorted(v for v in self.labels.values() if v != 0)
        self.rows = [self._row(s) for s in dataset.cases]
        self._by_name = {r.name: r for r in self.rows}

    def _read_manifest(self) -> dict | None:
        path = self.root / "manifest.json"
        if not path.exists():
            return None
        try:
            return Manifest.load(path).data
        except ValueError as exc:
            self.notes.append(f"{exc}; cases are listed from the files alone")
            return None

    def _read_recipe(self) -> Recipe:
        """The run's recipe (manifest), else the dataset's lesionmix_recipe.json."""
        candidates = []
        if self.manifest and isinstance(self.manifest.get("recipe"), dict):
            candidates.append(("manifest.json", lambda: Recipe.from_dict(self.manifest["recipe"])))
        rfile = self.root / "lesionmix_recipe.json"
        if rfile.is_file():
            candidates.append((str(rfile), lambda: Recipe.from_json(rfile)))
        for where, make in candidates:
            try:
                return make()
            except (RecipeError, OSError, ValueError) as exc:
                self.notes.append(f"{where}: recipe not usable ({exc}); defaults used")
        return Recipe()

    def _row(self, s) -> CaseRow:
        row = CaseRow(s.name, "case", list(s.image_paths), s.label_path, problem=s.problem)
        man = self.manifest or {}
        entry = man.get("cases", {}).get(s.name)
        prov_path = self.layout.provenance_path(s.name)
        if entry is not None or prov_path.exists() or LMIX_PATTERN.search(s.name):
            row.kind = "synthesised"
            if prov_path.exists():
                row.provenance_path = prov_path
                self._from_provenance(row, prov_path)
            if entry is not None:
                row.source = entry.get("source", row.source)
                row.target_load_mm3 = entry.get("target_load_mm3", row.target_load_mm3)
                row.achieved_load_mm3 = entry.get("achieved_load_mm3", row.achieved_load_mm3)
                row.status = entry.get("synthesis", row.status) or row.status
        elif s.name in man.get("originals", {}) or s.name in man.get("reference_loads", {}):
            row.kind, row.status = "original", "original"
            ref = man.get("reference_loads", {}).get(s.name)
            if ref is not None:
                row.achieved_load_mm3 = float(ref["load_mm3"])
        return row

    def _from_provenance(self, row: CaseRow, path: Path) -> None:
        try:
            d = json.loads(path.read_text())
            ops = [o for o in d.get("operations", []) if o.get("accepted")]
            row.source = d["source"]["case"]
            row.target_load_mm3 = float(d["target_load_mm3"])
            row.achieved_load_mm3 = float(d["achieved_load_mm3"])
            row.status = d.get("status", "")
            row.added = sum(o.get("kind") == "populate" for o in ops)
            row.removed = sum(o.get("kind") == "inpaint" for o in ops)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.notes.append(f"{path}: not a readable provenance file ({exc})")

    # ------------------------------------------------------------------ access
    @property
    def names(self) -> list:
        return [r.name for r in self.rows]

    def row(self, name: str) -> CaseRow:
        try:
            return self._by_name[name]
        except KeyError:
            raise ReviewError(f"{self.root}: no case named {name!r}") from None

    def load(self, name: str, reuse: LoadedCase | None = None) -> LoadedCase:
        """Read case ``name``, its source and what changed.

        Parameters
        ----------
        name : str
        reuse : LoadedCase, optional
            The case shown before: if it holds this case or its source (stepping from an
            original to its synthesised variant and back), those volumes are not read
            again. Nothing else is kept between calls.

        Raises
        ------
        ReviewError
            The case's files are missing or unreadable (the message names the file).
        """
        row = self.row(name)
        if row.problem:
            raise ReviewError(f"case {name}: {row.problem}")
        known = _held(reuse)
        result = known.get(name)
        if result is None or result.label_path != str(row.label_path):
            try:
                result = Case.read(row.image_paths, row.label_path, name=name)
            except CaseError as exc:
                raise ReviewError(f"case {name}: {exc}") from None
        prov = None
        if row.provenance_path is not None:
            try:
                prov = Provenance.load(row.provenance_path)
            except ValueError as exc:
                self.notes.append(str(exc))
        source, note = self._read_source(row, prov, result, known)
        changes = lesion_changes(result, source, prov, self.classes,
                                 min_voxels=self.recipe.min_voxels,
                                 connectivity=self.recipe.connectivity)
        diff = difference_map(result, source) if source is not None else None
        if row.achieved_load_mm3 is None:
            row.achieved_load_mm3 = changes.load_mm3
        return LoadedCase(row, result, source, prov, changes, diff, note)

    def source_files(self, row: CaseRow, prov: Provenance | None = None):
        """(image paths, label path, where) of a synthesised case's source, or None.

        The copy inside this dataset comes first; else the files the provenance names.
        """
        if row.source is None:
            return None
        inside = self._by_name.get(row.source)
        if inside is not None and not inside.problem:
            return inside.image_paths, inside.label_path, f"{row.source} in this dataset"
        if prov is not None:
            imgs = [Path(p) for p in prov.source.get("image_paths") or []]
            label = prov.source.get("label_path")
            if imgs and label and all(p.exists() for p in imgs) and Path(label).exists():
                return imgs, Path(label), f"{row.source} from {Path(label).parent.parent}"
        return None

    def _read_source(self, row: CaseRow, prov, result: Case, known: dict):
        if row.kind != "synthesised":
            return None, ""
        files = self.source_files(row, prov)
        if files is None:
            return None, (f"source {row.source} not found (neither in this dataset nor where "
                          "the provenance says)")
        imgs, label, where = files
        held = known.get(row.source)
        if held is not None and held.label_path == str(label):
            return held, where
        try:
            source = Case.read(imgs, label, name=row.source)
        except CaseError as exc:
            return None, f"source {row.source} unreadable: {exc}"
        if source.labels.shape != result.labels.shape or \
                not source.geometry.matches(result.geometry):
            source = resample_case(source, result)
            where += " (resampled onto the case's grid)"
        return source, where


def _held(loaded: LoadedCase | None) -> dict:
    """Case name → Case of the volumes a loaded case holds as read from disk (a resampled
    source is not reusable)."""
    if loaded is None:
        return {}
    out = {loaded.name: loaded.result}
    if loaded.source is not None and "resampled" not in loaded.source_note:
        out[loaded.source.name] = loaded.source
    return out
