"""The logic behind the "Synthesise and export" dock: reference loads and the export.

No Qt and no napari here: the dock calls these functions in thread workers, and the
tests call them directly.

The export writes the layout ``lesionmix generate`` makes (see
:mod:`napari_lesionmix.batch.export`): ``imagesTr/``, ``labelsTr/``, ``provenance/``,
``dataset.json``, ``manifest.json``, ``loads.png`` and ``.lesionmix/`` (bank, map,
plan). Output ``k`` of ``n`` is named ``<case>_lmix<k>`` and uses the seed stream
``case_seeds(recipe.seed, n)[k]``, the command line's rule. Every file is written
atomically and a case's manifest entry is written last, so a stopped export leaves only
complete cases and a manifest that lists exactly them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..batch.dataset import Dataset
from ..batch.export import (
    Manifest,
    OutputLayout,
    file_sizes,
    output_name,
    package_versions,
    write_dataset_json,
)
from ..batch.runner import cleanup
from ..batch.tasks import BANK_FILE, MAP_FILE, PLAN_FILE
from ..core.case import Case
from ..core.image_io import IMAGE_SUFFIXES, read_image
from ..core.io_utils import atomic_write_text, is_temporary
from ..core.lesions import LesionBank, lesion_classes_of, lesion_load
from ..core.likelihood import LikelihoodMap
from ..core.mix import case_seeds, synthesize
from ..core.recipe import Recipe

__all__ = [
    "ExportError",
    "ExportSummary",
    "check_output",
    "dataset_labels",
    "export_case",
    "label_files_of",
    "loads_from_files",
]


class ExportError(ValueError):
    """The export cannot start (the output folder, the bank). Nothing was written."""


# ------------------------------------------------------------------------------ reference
def label_files_of(folder: str | Path) -> list[Path]:
    """The label files of a folder of training labels or of a dataset folder.

    An nnU-Net v2 raw dataset gives its ``labelsTr/`` files, a paired folder its
    ``labels/`` files, any other folder its own image files. Hidden and temporary
    files are skipped.

    Parameters
    ----------
    folder : path-like

    Returns
    -------
    list of Path
        Sorted.

    Raises
    ------
    ExportError
        The folder does not exist or holds no image file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ExportError(f"{root}: no such folder")
    for sub in ("labelsTr", "labels"):
        if (root / sub).is_dir():
            root = root / sub
            break
    files = sorted(p for p in root.iterdir()
                   if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)
                   and not p.name.startswith(".") and not is_temporary(p))
    if not files:
        raise ExportError(f"{root}: holds no NIfTI, NRRD or MetaImage label file")
    return files


def loads_from_files(paths, lesion_classes=None, organ_label=None,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Per-case lesion loads (mm³) of label files, read one at a time.

    Parameters
    ----------
    paths : sequence of path-like
    lesion_classes : list of int, optional
        Default: every non-zero label of each file except ``organ_label``.
    organ_label : int, optional
    progress : callable(done, total), optional

    Returns
    -------
    dict
        file name (without extension) → load in mm³, in the order of ``paths``.

    Examples
    --------
    >>> loads_from_files([])
    {}
    """
    out: dict = {}
    paths = [Path(p) for p in paths]
    for i, p in enumerate(paths):
        labels, geometry, _ = read_image(p)
        classes = lesion_classes_of(labels, lesion_classes, organ_label)
        out[_stem(p)] = lesion_load(labels, classes, geometry.spacing_zyx)[0]
        if progress is not None:
            progress(i + 1, len(paths))
    return out


def _stem(path: Path) -> str:
    for ext in IMAGE_SUFFIXES:
        if path.name.lower().endswith(ext):
            return path.name[: -len(ext)]
    return path.name


def dataset_labels(case: Case, label_path: str | Path | None = None) -> tuple[dict, dict, dict]:
    """``channel_names``, ``labels`` and other fields for the output's dataset.json.

    When ``label_path`` lies in an nnU-Net dataset's ``labelsTr/`` whose dataset.json
    declares every label value of the case, that file's fields are used; otherwise the
    channels are named after ``case.channel_names`` and the labels
    ``{"background": 0, "label_1": 1, ...}`` up to the largest value in the case.

    Returns
    -------
    (channel_names, labels, meta) : dict, dict, dict
    """
    top = int(case.labels.max()) if case.labels.size else 0
    if label_path is not None:
        djson = Path(label_path).parent.parent / "dataset.json"
        try:
            meta = json.loads(djson.read_text())
            labels = {str(k): int(v) for k, v in meta["labels"].items()}
            channels = dict(meta["channel_names"])
            if len(channels) == case.n_channels and case.label_values() <= set(labels.values()):
                return channels, labels, meta
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    channels = {str(c): (case.channel_names[c] if c < len(case.channel_names) else str(c))
                for c in range(case.n_channels)}
    labels = {"background": 0, **{f"label_{v}": v for v in range(1, top + 1)}}
    return channels, labels, {}


# ------------------------------------------------------------------------------ output
def check_output(output: str | Path, overwrite: bool = False) -> Path:
    """Check that ``output`` can receive an export, creating nothing.

    Parameters
    ----------
    output : path-like
        The dataset folder to write (created if missing).
    overwrite : bool
        Allow a folder that holds a previous export (its LesionMix files are replaced).

    Returns
    -------
    Path
        The absolute output folder.

    Raises
    ------
    ExportError
        A file is in the way, the folder cannot be created or written, or it already
        holds files (without ``overwrite``).
    """
    if not str(output).strip():
        raise ExportError("choose an output folder")
    out = Path(output).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: is a file, not a folder")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ExportError(f"{out}: cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot be written: no write permission on {ancestor}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out}: already holds files; choose an empty or new folder, or "
                          "tick 'replace a previous export'")
    return out


@dataclass
class ExportSummary:
    """How an export ended.

    Attributes
    ----------
    output : Path
    planned, written : int
        Synthesised cases asked for and written.
    failed : list of dict
        ``{"case", "error"}`` per failed case.
    cancelled : bool
        Stopped by the user before every case was done.
    state : str
        The manifest's final state: complete, incomplete or interrupted.
    names : list of str
        The written cases, in output order.
    """

    output: Path
    planned: int = 0
    written: int = 0
    failed: list = field(default_factory=list)
    cancelled: bool = False
    state: str = "running"
    names: list = field(default_factory=list)

    def line(self) -> str:
        """One line for the status label."""
        parts = [f"{self.written}/{self.planned} case(s) written to {self.output}"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({self.failed[0]['error']})")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts)


def export_case(case: Case, bank: LesionBank, lmap: LikelihoodMap | None, recipe: Recipe,
                reference_loads, output: str | Path, n: int, *, originals: bool = True,
                overwrite: bool = False, channel_names: dict | None = None,
                labels: dict | None = None, meta: dict | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                after_case: Callable[[int, str], None] | None = None) -> ExportSummary:
    """Write ``n`` synthesised versions of ``case`` as an nnU-Net v2 raw dataset.

    Output ``k`` is ``synthesize(case, bank, lmap, recipe, seed=case_seeds(recipe.seed,
    n)[k], reference_loads=reference_loads)``, named ``output_name(case.name, k, n)``.

    Parameters
    ----------
    case : Case
        The source case (not modified).
    bank : LesionBank
        Lesions to populate with.
    lmap : LikelihoodMap or None
        Where lesions go (None: uniform over the allowed region).
    recipe : Recipe
    reference_loads : sequence of float
        The distribution's reference loads in mm³ (``recipe.load.reference`` wins).
    output : path-like
        The dataset folder.
    n : int
        Number of synthesised cases.
    originals : bool
        Also write the source case under its own name (the command line's default).
    overwrite : bool
        Replace the LesionMix files of a previous export in ``output``.
    channel_names, labels, meta : dict, optional
        dataset.json fields (default: :func:`dataset_labels`).
    progress : callable(done, total), optional
        Called before each case and at the end.
    should_stop : callable() -> bool, optional
        Checked before each case: True stops the export after the case in progress.
    after_case : callable(k, name), optional
        Called once case ``k`` is complete (files and manifest entry written).

    Returns
    -------
    ExportSummary

    Raises
    ------
    ExportError
        Before anything is written: bad ``n``, unusable output, empty bank.
    """
    if n < 1:
        raise ExportError(f"the number of cases must be at least 1, got {n}")
    if len(bank) == 0:
        raise ExportError(f"case {case.name!r}: the lesion bank is empty; nothing to populate "
                          "with")
    out = check_output(output, overwrite)
    if channel_names is None or labels is None:
        channel_names, labels, meta = dataset_labels(case, case.label_path)
    layout = OutputLayout(out, ".nii.gz", case.n_channels)
    names = [output_name(case.name, k, n) for k in range(n)]
    if case.name in names:
        raise ExportError(f"case name {case.name!r} clashes with an output name")
    seeds = case_seeds(recipe.seed, n)
    reference = [float(v) for v in reference_loads]
    plan = {"input": case.label_path or f"napari layers of case {case.name}",
            "input_layout": "napari", "sources": [case.name], "skipped": [], "n": int(n),
            "seed": int(recipe.seed), "recipe_hash": recipe.hash(),
            "file_ending": layout.file_ending, "originals": bool(originals),
            "compression": None}

    if overwrite and layout.has_files():
        layout.remove_owned()
    for d in (layout.images, layout.labels, layout.provenance, layout.work):
        d.mkdir(parents=True, exist_ok=True)
    bank.save(layout.work / BANK_FILE)
    if lmap is not None:
        lmap.save(layout.work / MAP_FILE, overwrite=True)
    atomic_write_text(layout.work / PLAN_FILE, json.dumps(
        {"plan": plan, "recipe": recipe.to_dict(), "reference_loads_mm3": reference}, indent=1))
    classes = lesion_classes_of(case.labels, recipe.lesion_classes, recipe.organ_label)
    mm3, vox = lesion_load(case.labels, classes, case.geometry.spacing_zyx)
    manifest = Manifest.new(layout.manifest, plan=plan, recipe=recipe.to_dict(),
                            versions=package_versions(), cases={}, skipped=[],
                            executor="napari thread worker")
    manifest.data["reference_loads"] = {case.name: {"load_mm3": mm3, "load_voxels": vox,
                                                    "lesions": len(bank)}}
    manifest.data["reference_loads_mm3"] = reference
    manifest.save()
    summary = ExportSummary(out, planned=n)
    try:
        if originals:
            files = layout.image_paths(case.name) + [layout.label_path(case.name)]
            case.write(files[:-1], files[-1], overwrite=True)
            manifest.data["originals"] = {case.name: {"files": [layout.rel(p) for p in files],
                                                      "sizes": file_sizes(files)}}
            manifest.save()
        for k, name in enumerate(names):
            if should_stop is not None and should_stop():
                summary.cancelled = True
                break
            if progress is not None:
                progress(k, n)
            _one_case(case, bank, lmap, recipe, reference, layout, manifest, k, name,
                      seeds[k], summary)
            if after_case is not None and name in summary.names:
                after_case(k, name)
        else:
            if progress is not None:
                progress(n, n)
    except BaseException:
        summary.cancelled = True
        raise
    finally:
        _finish(layout, manifest, names, summary, case.name, channel_names, labels,
                meta or {}, reference)
    return summary


def _one_case(case, bank, lmap, recipe, reference, layout, manifest, k, name, seed,
              summary) -> None:
    t0 = time.perf_counter()
    try:
        res = synthesize(case, bank, lmap, recipe, seed=seed, reference_loads=reference,
                         name=name)
        t1 = time.perf_counter()
        res.case.write(layout.image_paths(name), layout.label_path(name), overwrite=True)
        res.provenance.to_json(layout.provenance_path(name), overwrite=True)
        t2 = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - recorded per case, like the command line
        error = f"{type(exc).__name__}: {exc}"
        summary.failed.append({"case": name, "error": error})
        manifest.record(name, {"k": k, "source": case.name, "status": "failed",
                               "error": error})
        return
    prov = res.provenance
    files = layout.case_files(name)
    manifest.record(name, {
        "k": k, "source": case.name, "status": "written",
        "target_load_mm3": float(prov.target_load_mm3),
        "start_load_mm3": float(prov.start_load_mm3),
        "achieved_load_mm3": float(prov.achieved_load_mm3),
        "achieved_voxels": int(prov.achieved_voxels), "synthesis": prov.status,
        "operations": len(prov.accepted), "seconds": {"synthesis": t1 - t0, "write": t2 - t1},
        "worker_pid": os.getpid(),
        "files": [layout.rel(p) for p in files], "sizes": file_sizes(files)})
    summary.written += 1
    summary.names.append(name)


def _finish(layout, manifest, names, summary, source, channel_names, labels, meta,
            reference) -> None:
    """Clean-up, dataset.json, loads.png and the manifest's final state."""
    cleanup(layout, manifest, names, keep={source})
    written = manifest.written()
    done = sum(1 for nm in names if nm in written)
    n_orig = len(manifest.data.get("originals", {}))
    dataset = Dataset(layout.root, "napari", [], dict(channel_names), dict(labels),
                      layout.file_ending, dict(meta))
    write_dataset_json(dataset, layout, n_orig + done,
                       description="LesionMix augmented dataset (napari-lesionmix)")
    summary.state = ("interrupted" if summary.cancelled else
                     "complete" if done == len(names) else "incomplete")
    manifest.data["state"] = summary.state
    manifest.data["failed"] = summary.failed
    manifest.save()
    try:
        from ..batch.plot import plot_loads
        plot_loads(layout.plot, reference,
                   [written[nm]["target_load_mm3"] for nm in names if nm in written],
                   [written[nm]["achieved_load_mm3"] for nm in names if nm in written],
                   title=f"{layout.root.name}: {done} synthesised case(s)")
    except Exception:  # noqa: BLE001 - a plot never fails the export
        pass
