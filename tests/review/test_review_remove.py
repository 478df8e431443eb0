"""Removing rejected cases: consistent, resumable, accepted by verify and by nnU-Net."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core import io_utils
from napari_lesionmix.review import remove as remove_mod
from napari_lesionmix.review.decisions import DecisionStore, case_fingerprint
from napari_lesionmix.review.index import ReviewDataset
from napari_lesionmix.review.remove import JOURNAL, pending_removal, remove_rejected

REJECT = ("brain05_lmix0004", "brain06")  # a synthesised case and an original


def _decide(root, decisions: dict, reviewer="alice"):
    review = ReviewDataset.open(root)
    store = DecisionStore(root, reviewer)
    for name, decision in decisions.items():
        row = review.row(name)
        store.decide(name, decision, f"note {name}",
                     case_fingerprint(row.image_paths, row.label_path))


def _leak_free(root, folds) -> None:
    """Every fold validates on original cases only, no synthesised case trains where its
    source is validated on, every original is in every fold, every case on disk trains
    somewhere and nothing else is named."""
    manifest = json.loads((root / "manifest.json").read_text())
    originals, cases = set(manifest["originals"]), manifest["cases"]
    on_disk = set(ReviewDataset.open(root).names)
    for fold in folds:
        assert set(fold["val"]) <= originals and fold["val"]
        assert originals <= set(fold["train"]) | set(fold["val"]) <= on_disk
        assert not set(fold["train"]) & set(fold["val"])
        for name in fold["train"]:
            if name in cases:
                assert cases[name]["source"] not in fold["val"], (name, fold)
    assert set().union(*(fold["train"] for fold in folds)) == on_disk


def _state(root) -> dict:
    """Everything removal touches: file names, manifest sections, dataset.json, splits."""
    manifest = json.loads((root / "manifest.json").read_text())
    return {
        "files": sorted(p.relative_to(root).as_posix() for d in ("imagesTr", "labelsTr",
                                                                   "provenance")
                        for p in (root / d).iterdir()),
        "cases": sorted(manifest["cases"]), "originals": sorted(manifest["originals"]),
        "removed": sorted(manifest.get("removed", {})),
        "num": json.loads((root / "dataset.json").read_text())["numTraining"],
        "splits": json.loads((root / "splits_final.json").read_text()),
    }


def test_remove_rejected_keeps_the_dataset_consistent(export):
    _leak_free(export, json.loads((export / "splits_final.json").read_text()))
    _decide(export, {REJECT[0]: "reject", REJECT[1]: "reject", "brain01_lmix0000": "flag",
                     "brain02_lmix0001": "accept"})
    before = _state(export)
    (plan,) = remove_rejected(export, dry_run=True)
    assert plan.plan.cases == sorted(REJECT) and _state(export) == before  # dry run
    (res,) = remove_rejected(export)
    assert res.plan.cases == sorted(REJECT)
    assert res.deleted == 3 + 2  # image, label, provenance; image, label
    assert res.num_training == (12, 10)
    after = _state(export)
    assert not [f for f in after["files"] if any(f.split("/")[1].startswith(n + ".")
                                                 or f.split("/")[1].startswith(n + "_0")
                                                 for n in REJECT)]
    assert REJECT[0] not in after["cases"] and REJECT[1] not in after["originals"]
    assert after["removed"] == sorted(REJECT) and after["num"] == 10
    _leak_free(export, after["splits"])
    # brain06 (an original) is gone: its variant trains in every fold
    assert all("brain06_lmix0005" in fold["train"] for fold in after["splits"])
    removed = json.loads((export / "manifest.json").read_text())["removed"][REJECT[0]]
    assert (removed["reviewer"], removed["note"], removed["was"]) == \
        ("alice", f"note {REJECT[0]}", "cases")
    n, problems = verify_output(export)
    assert (n, problems) == (10, [])
    assert not (export / JOURNAL).exists()
    assert remove_rejected(export) == []  # nothing left to do


def _interrupt_at(monkeypatch, k: int):
    """Make the k-th file deletion or JSON write of the removal raise KeyboardInterrupt."""
    calls = {"n": 0}
    real_unlink, real_write = Path.unlink, io_utils.atomic_write_text

    def tick():
        calls["n"] += 1
        if calls["n"] == k:
            raise KeyboardInterrupt

    def unlink(self, *a, **kw):
        if self.parent.name in ("imagesTr", "labelsTr", "provenance", ".lesionmix"):
            tick()
        return real_unlink(self, *a, **kw)

    def write(path, text, *a, **kw):
        tick()
        return real_write(path, text, *a, **kw)

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(remove_mod, "atomic_write_text", write)
    return calls


@pytest.mark.slow
def test_an_interrupted_removal_is_finished_by_running_again(export, tmp_path, monkeypatch):
    _decide(export, {n: "reject" for n in REJECT})
    clean = Path(shutil.copytree(export, tmp_path / "clean"))
    remove_rejected(clean)
    want = _state(clean)
    # steps: journal, 5 deletions, manifest, dataset.json, splits, journal deletion
    for k in range(1, 11):
        ds = Path(shutil.copytree(export, tmp_path / f"k{k}"))
        with monkeypatch.context() as m:
            _interrupt_at(m, k)
            with pytest.raises(KeyboardInterrupt):
                remove_rejected(ds)
        if k > 1 and k < 10:  # the plan is on disk and the dataset is mid-way
            assert pending_removal(ds)["cases"] == sorted(REJECT)
        results = remove_rejected(ds)
        assert _state(ds) == want, k
        assert verify_output(ds) == (10, []), k
        assert not (ds / JOURNAL).exists()
        if 1 < k < 10:
            assert results[0].resumed
    # interrupted after every step but the last, the dataset is never silently usable
    # with a rejected case: verify fails until the rerun
    ds = Path(shutil.copytree(export, tmp_path / "mid"))
    with monkeypatch.context() as m:
        _interrupt_at(m, 3)
        with pytest.raises(KeyboardInterrupt):
            remove_rejected(ds)
    assert verify_output(ds)[1]


def test_without_a_manifest_removed_cases_leave_each_fold(export):
    folds = json.loads((export / "splits_final.json").read_text())
    _decide(export, {n: "reject" for n in REJECT})
    (export / "manifest.json").unlink()
    for p in (export / "provenance").iterdir():  # a plain nnU-Net dataset with a split
        p.unlink()
    (res,) = remove_rejected(export)
    assert res.num_training == (12, 10)
    new = json.loads((export / "splits_final.json").read_text())
    for old, fold in zip(folds, new):
        assert fold["train"] == [c for c in old["train"] if c not in REJECT]
        assert fold["val"] == [c for c in old["val"] if c not in REJECT]
    assert verify_output(export) == (10, [])


def test_too_few_originals_left_removes_the_split_and_says_so(export):
    keep = "brain01"
    _decide(export, {n: "reject" for n in ReviewDataset.open(export).names
                     if n != keep and "_lmix" not in n})
    (res,) = remove_rejected(export)
    assert not (export / "splits_final.json").exists()
    assert "removed" in res.splits and any("fold 'all'" in w for w in res.warnings)
    assert verify_output(export)[1] == []


def test_stale_and_flagged_cases_are_not_removed(export):
    _decide(export, {"brain01_lmix0000": "flag", "brain02_lmix0001": "reject"})
    review = ReviewDataset.open(export)
    row = review.row("brain02_lmix0001")
    other = review.row("brain03_lmix0002")
    shutil.copyfile(other.label_path, row.label_path)  # regenerated since the decision
    shutil.copyfile(other.image_paths[0], row.image_paths[0])
    assert remove_rejected(export, dry_run=True)[0].plan.cases == []


SCRIPT = """
import sys
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

if __name__ == "__main__":
    verify_dataset_integrity(sys.argv[1], num_processes=1)
    print("NNUNET-OK")
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("nnunetv2") is None,
                    reason="nnunetv2 is not installed")
def test_nnunet_accepts_the_dataset_after_removal(export, tmp_path):
    import os
    import subprocess
    import sys

    _decide(export, {n: "reject" for n in REJECT})
    remove_rejected(export)
    script = tmp_path / "verify_nnunet.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, nnUNet_raw=str(tmp_path), nnUNet_preprocessed=str(tmp_path),
               nnUNet_results=str(tmp_path))
    res = subprocess.run([sys.executable, str(script), str(export)], capture_output=True,
                         text=True, env=env, timeout=300, encoding="utf-8",
                         errors="replace")
    assert res.returncode == 0 and "NNUNET-OK" in res.stdout, res.stdout + res.stderr
