"""QA decisions: saved at once, surviving restarts, shared by several reviewers."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import pytest

from napari_lesionmix.review.decisions import DecisionStore, case_fingerprint
from napari_lesionmix.review.index import ReviewDataset
from napari_lesionmix.review.summary import fingerprints, qa_state


def test_decision_is_on_disk_when_decide_returns(tmp_path):
    store = DecisionStore(tmp_path, reviewer="alice")
    store.decide("c1", "reject", "  lesion in a ventricle ")
    data = json.loads(store.path.read_text())
    assert data["reviewer"] == "alice"
    (event,) = data["events"]
    assert (event["case"], event["decision"], event["note"]) == \
        ("c1", "reject", "lesion in a ventricle")
    assert event["time"].endswith("+00:00")
    # a new store (a restart) reads it back
    v = DecisionStore(tmp_path, reviewer="bob").verdicts()["c1"]
    assert (v.decision, v.reviewer, v.note) == ("reject", "alice", "lesion in a ventricle")
    assert not [p for p in store.folder.iterdir() if p.name.endswith(".tmp.json")]


def test_latest_decision_of_any_reviewer_counts_and_history_stays(tmp_path):
    alice, bob = DecisionStore(tmp_path, "alice"), DecisionStore(tmp_path, "bob")
    alice.decide("c1", "reject", "odd")
    bob.decide("c1", "accept")
    alice.decide("c2", "flag", "check the border")
    alice.decide("c3", "accept")
    alice.decide("c3", "clear")
    v = alice.verdicts()
    assert (v["c1"].decision, v["c1"].reviewer) == ("accept", "bob")
    assert [e.decision for e in v["c1"].history] == ["reject", "accept"]
    assert v["c1"].disagreement and not v["c2"].disagreement
    assert v["c2"].decision == "flag" and v["c3"].decision == ""


def test_bad_decision_and_unreadable_reviewer_file(tmp_path):
    store = DecisionStore(tmp_path, "alice")
    with pytest.raises(ValueError, match="accept, reject, flag"):
        store.decide("c1", "maybe")
    store.decide("c1", "accept")
    broken = store.folder / "carol.json"
    broken.write_text("{ not json")
    v = store.verdicts()
    assert v["c1"].decision == "accept"
    assert any("carol.json" in p for p in store.problems)


def test_reviewer_names_become_safe_file_names(tmp_path):
    store = DecisionStore(tmp_path, "Dr. A/B Smith")
    store.decide("c1", "flag")
    assert store.path.parent == tmp_path / "qa" / "decisions"
    assert store.verdicts()["c1"].reviewer == "Dr. A/B Smith"


def _decide_many(root, reviewer, prefix, n, start):
    while time.time() < start:
        time.sleep(0.001)
    store = DecisionStore(root, reviewer)
    for i in range(n):
        store.decide(f"{prefix}{i:03d}", "reject" if i % 2 else "accept", f"{reviewer} {i}")


@pytest.mark.parametrize("same_reviewer", [False, True])
def test_simultaneous_reviewers_lose_nothing(tmp_path, same_reviewer):
    """Four processes decide 40 cases each at the same moment: all 160 events remain."""
    ctx = mp.get_context("spawn")
    start = time.time() + 2.0
    names = ["alice"] * 4 if same_reviewer else ["alice", "bob", "carol", "dan"]
    procs = [ctx.Process(target=_decide_many, args=(tmp_path, who, f"p{k}_", 40, start))
             for k, who in enumerate(names)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    events = DecisionStore(tmp_path, "x").events()
    assert len(events) == 160
    assert len(DecisionStore(tmp_path, "x").verdicts()) == 160


def test_regenerated_case_makes_old_decision_stale(export):
    review = ReviewDataset.open(export)
    row = review.row("brain01_lmix0000")
    store = DecisionStore(export, "alice")
    store.decide(row.name, "reject", fingerprint=case_fingerprint(row.image_paths,
                                                                  row.label_path))
    assert qa_state(review, store).decision(row.name) == "reject"
    # the case is replaced by other content under the same name
    other = review.row("brain02_lmix0001")
    os.replace(other.label_path, row.label_path)
    fps = fingerprints(review)
    v = store.verdicts(fps)[row.name]
    assert v.stale and v.effective == ""
    assert qa_state(review, store).cases_with("reject") == []


def test_reviewer_files_follow_the_umask(tmp_path):
    """Other reviewers must be able to read a reviewer's file (shared group folders)."""
    old = os.umask(0o002)
    try:
        store = DecisionStore(tmp_path, "alice")
        store.decide("c1", "accept")
    finally:
        os.umask(old)
    assert store.path.stat().st_mode & 0o777 == 0o664


def test_decisions_in_the_same_millisecond_keep_their_order(tmp_path, monkeypatch):
    from napari_lesionmix.review import decisions

    monkeypatch.setattr(decisions, "_now", lambda: "2026-01-01T00:00:00.000+00:00")
    store = DecisionStore(tmp_path, "alice")
    for _ in range(5):  # the event ids are random: any order but the file's would show
        store.decide("c1", "accept")
        store.decide("c1", "clear")
        store.decide("c2", "clear")
        store.decide("c2", "reject")
    v = DecisionStore(tmp_path, "bob").verdicts()
    assert v["c1"].decision == "" and v["c2"].decision == "reject"
