"""``lesionmix verify``: re-read every file of an output dataset and check it is trainable."""

from __future__ import annotations

from pathlib import Path

from ..core.case import Case
from ..core.errors import CaseError
from ..core.io_utils import parse_json
from .layout import LMIX_PATTERN, OutputLayout, list_output_cases
from .manifest import Manifest

__all__ = ["verify_output"]


def verify_output(root: str | Path, progress=None) -> tuple[int, list[str]]:
    """Re-read every file of an output dataset fully and check it is trainable.

    Checks: dataset.json has nnU-Net's fields; numTraining equals the cases found; every
    case has all its channels and its label; no hidden or temporary file in imagesTr or
    labelsTr; every file reads fully (gzip CRC and length, size against the header) with
    no NaN or Inf (both through :meth:`Case.read`); channels and labels share shape and
    geometry; every label value is declared in dataset.json; the manifest agrees with
    the files (every ``written`` entry's files exist with their recorded sizes, every
    synthesised case on disk has an entry and a provenance sidecar).

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
        meta = parse_json(djson.read_text(encoding="utf-8"))
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
                Case.read([str(p) for p in want], str(label), name=name, allowed_labels=allowed)
            except CaseError as exc:
                problems.append(f"{where}: {exc}")
        if progress is not None:
            progress(i + 1, len(cases))
    problems += _check_manifest(layout, cases)
    return len(cases), problems


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
