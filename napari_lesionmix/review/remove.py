"""Remove the rejected cases of a dataset consistently, and finish the job if interrupted.

What "consistently" covers: the case's files (every channel in ``imagesTr/``, the label
in ``labelsTr/``, the provenance sidecar), its manifest entry (moved from ``cases`` or
``originals`` to ``removed``, with the decision that removed it), ``numTraining`` in
``dataset.json``, and every fold of ``splits_final.json`` when the dataset has one.

How it survives an interruption: the plan (cases and files) is written first to
``.lesionmix/remove.json``; then each step runs in this order, each one idempotent:

1. delete the files (the dataset now disagrees with its numTraining, so nnU-Net and
   ``lesionmix verify`` refuse it rather than train on a rejected case);
2. the manifest, rewritten atomically;
3. ``dataset.json``, numTraining counted from the files on disk, rewritten atomically;
4. ``splits_final.json``, made again by the run's grouping rule for the cases left (or,
   without a manifest, with the removed cases dropped from each fold), atomically;
5. the plan file is deleted: done.

Run again after an interruption, the command finds the plan file and completes that
same plan before it looks at new decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..batch.layout import OutputLayout, list_output_cases
from ..batch.splits import SplitError, grouped_splits
from ..core.io_utils import atomic_write_text
from .decisions import DecisionStore
from .index import ReviewDataset
from .summary import qa_state

__all__ = ["RemovalPlan", "plan_removal", "pending_removal", "remove_rejected", "JOURNAL",
           "SPLITS_FILE"]

JOURNAL = Path(".lesionmix") / "remove.json"
SPLITS_FILE = "splits_final.json"


@dataclass
class RemovalPlan:
    """The cases to remove, their files (relative to the dataset) and why."""

    cases: list = field(default_factory=list)
    files: list = field(default_factory=list)
    why: dict = field(default_factory=dict)
    created: str = ""

    def to_dict(self) -> dict:
        return {"cases": self.cases, "files": self.files, "why": self.why,
                "created": self.created}


@dataclass
class RemovalResult:
    """What :func:`remove_rejected` did."""

    plan: RemovalPlan
    resumed: bool = False
    deleted: int = 0
    num_training: tuple = (0, 0)
    splits: str = ""
    warnings: list = field(default_factory=list)


def pending_removal(root) -> dict | None:
    """The plan of an interrupted removal, or None."""
    path = Path(root) / JOURNAL
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable removal plan ({exc}); delete it only after "
                         "checking the dataset with `lesionmix verify`") from None


def plan_removal(review: ReviewDataset, store: DecisionStore | None = None) -> RemovalPlan:
    """The cases whose current decision is ``reject`` (stale decisions do not count)."""
    state = qa_state(review, store)
    plan = RemovalPlan(created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    for name in state.cases_with("reject"):
        row, v = review.row(name), state.verdicts[name]
        files = list(row.image_paths) + ([row.label_path] if row.label_path else [])
        if row.provenance_path is not None:
            files.append(row.provenance_path)
        plan.cases.append(name)
        plan.files += [Path(p).relative_to(review.root).as_posix() for p in files]
        plan.why[name] = {"decision": "reject", "reviewer": v.reviewer, "time": v.time,
                          "note": v.note}
    return plan


def remove_rejected(root, store: DecisionStore | None = None, dry_run: bool = False,
                    say=None) -> list:
    """Finish an interrupted removal, then remove the cases rejected now.

    Returns
    -------
    list of RemovalResult
        One per plan carried out (the interrupted one first); with ``dry_run`` the plan
        of the rejected cases only, nothing changed.
    """
    say = say or (lambda msg: None)
    root = Path(root).resolve()
    results = []
    pending = pending_removal(root)
    if pending is not None and not dry_run:
        say(f"finishing an interrupted removal of {len(pending['cases'])} case(s)")
        plan = RemovalPlan(pending["cases"], pending["files"], pending.get("why", {}),
                           pending.get("created", ""))
        results.append(_carry_out(root, plan, resumed=True))
    review = ReviewDataset.open(root)
    plan = plan_removal(review, store or DecisionStore(root))
    if dry_run:
        return [RemovalResult(plan)]
    if plan.cases:
        results.append(_carry_out(root, plan))
    return results


def _carry_out(root: Path, plan: RemovalPlan, resumed: bool = False) -> RemovalResult:
    out = RemovalResult(plan, resumed=resumed)
    journal = root / JOURNAL
    if not resumed:
        atomic_write_text(journal, json.dumps(plan.to_dict(), indent=1) + "\n")
    for rel in plan.files:  # 1. files
        p = root / rel
        if p.exists():
            p.unlink()
            out.deleted += 1
    _update_manifest(root, plan)  # 2.
    out.num_training = _update_dataset_json(root)  # 3.
    out.splits, out.warnings = _update_splits(root, set(plan.cases))  # 4.
    journal.unlink(missing_ok=True)  # 5.
    return out


def _update_manifest(root: Path, plan: RemovalPlan) -> None:
    path = root / "manifest.json"
    if not path.exists():
        return
    data = json.loads(path.read_text())
    removed = data.setdefault("removed", {})
    changed = False
    for name in plan.cases:
        for section in ("cases", "originals"):
            entry = data.get(section, {}).pop(name, None)
            if entry is not None:
                removed[name] = {"was": section, "entry": entry, **plan.why.get(name, {}),
                                 "removed": plan.created}
                changed = True
    if changed:
        data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def _update_dataset_json(root: Path) -> tuple:
    """numTraining from the cases on disk; returns (before, after)."""
    path = root / "dataset.json"
    meta = json.loads(path.read_text())
    layout = OutputLayout(root, meta["file_ending"], len(meta["channel_names"]))
    cases, _ = list_output_cases(layout)
    before = meta.get("numTraining")
    if before != len(cases):
        meta["numTraining"] = len(cases)
        atomic_write_text(path, json.dumps(meta, indent=2) + "\n")
    return before, len(cases)


def _update_splits(root: Path, removed: set) -> tuple[str, list]:
    """splits_final.json for the cases left.

    With a manifest the split is made again by the run's own rule (folds over the
    original cases left, each synthesised case training only with its source); a
    synthesised case whose original was removed trains in every fold (no fold validates on
    its source, so it cannot leak). Without a manifest the removed cases are dropped from
    every fold of the existing file. When no split without leaks is left (fewer than two
    originals), the file is removed, as ``lesionmix generate`` does, and the reason given.
    """
    path = root / SPLITS_FILE
    if not path.exists():
        return "", []
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        data = json.loads(manifest_path.read_text())
        originals = list(data.get("originals", {}))
        written = {n: e["source"] for n, e in data.get("cases", {}).items()
                   if e.get("status") == "written"}
        orphans = sorted(n for n, src in written.items() if src not in originals)
        try:
            new = grouped_splits(originals, {n: s for n, s in written.items()
                                             if n not in orphans})
        except SplitError as exc:
            path.unlink()
            return f"{path.name} removed: {exc}", [
                f"{path.name}: no split without leaks is left ({exc}); nnU-Net would split "
                "at random, so train on fold 'all' or add cases"]
        for fold in new:
            fold["train"] = sorted(fold["train"] + orphans)
        note = (f"{path.name}: made again over {len(originals)} original case(s) in "
                f"{len(new)} folds" + (f"; {len(orphans)} case(s) whose original was removed "
                                       "train in every fold" if orphans else ""))
    else:
        folds = json.loads(path.read_text())
        new = [{**fold, **{k: [c for c in fold.get(k, []) if c not in removed]
                           for k in ("train", "val")}} for fold in folds]
        note = f"{path.name}: removed cases dropped from {len(new)} fold(s)"
    warnings = [f"{path}: fold {i} has no validation case left; make the splits again "
                "before training" for i, fold in enumerate(new) if not fold["val"]]
    if new != json.loads(path.read_text()):
        atomic_write_text(path, json.dumps(new, indent=1) + "\n")
        return note, warnings
    return f"{path.name}: unchanged", warnings
