"""The review session (the Review dock's model) without a display."""

from __future__ import annotations

import pytest

from napari_lesionmix.core import case as case_mod
from napari_lesionmix.review.decisions import DecisionStore
from napari_lesionmix.review.session import ReviewSession


@pytest.fixture
def session(export):
    s = ReviewSession(reviewer="alice")
    s.open(export / "dataset.json")
    return s


def test_open_lists_every_case_and_loads_none(session):
    assert len(session.visible()) == 12 and session.current is None
    statuses = session.choices("status")
    assert "original" in statuses and "reached" in statuses
    assert set(statuses) <= {"original", "reached", "stuck", "cap", "closest", "no_lesions"}
    assert session.choices("decision") == ["accept", "reject", "flag", "undecided"]


def test_filter_and_sort(session):
    session.set_filter("kind", ["synthesised"])
    assert len(session.visible()) == 6
    session.sort("achieved", descending=True)
    loads = [r.achieved_load_mm3 for r in session.visible()]
    assert loads == sorted(loads, reverse=True)
    session.sort("source")
    assert [r.source for r in session.visible()] == sorted(r.source for r in session.visible())
    session.set_filter("source", ["brain02"])
    assert [r.name for r in session.visible()] == ["brain02_lmix0001"]
    session.set_filter("source", None)
    session.set_filter("kind", None)
    session.sort("added")  # originals have no count: they go last
    assert all(r.added is None for r in session.visible()[6:])
    with pytest.raises(ValueError):
        session.set_filter("colour", ["red"])


def test_next_and_previous_stay_inside_the_visible_rows(session):
    seen = []
    session.case_changed.connect(lambda c: seen.append(None if c is None else c.name))
    session.set_filter("kind", ["synthesised"])
    names = [r.name for r in session.visible()]
    assert session.next().name == names[0]
    assert session.next().name == names[1]
    assert session.previous().name == names[0]
    assert session.previous().name == names[0]  # stays at the top, nothing reloaded
    assert seen == names[:2] + names[:1]
    for _ in range(10):
        session.next()
    assert session.current.name == names[-1]


def test_stepping_between_a_source_and_its_variant_reads_once(session, monkeypatch):
    reads = []
    real = case_mod.Case.read.__func__

    def counting(cls, *a, **kw):
        reads.append(kw.get("name"))
        return real(cls, *a, **kw)

    monkeypatch.setattr(case_mod.Case, "read", classmethod(counting))
    session.go("brain03")
    session.next()  # brain03_lmix0002, made from brain03
    assert session.current.name == "brain03_lmix0002"
    assert session.current.source.name == "brain03"
    session.previous()
    assert reads == ["brain03", "brain03_lmix0002"]


def test_decide_saves_at_once_and_tells_the_views(session, export):
    decided, rows = [], []
    session.decision_changed.connect(decided.append)
    session.rows_changed.connect(lambda: rows.append(1))
    with pytest.raises(ValueError, match="open a case"):
        session.decide("reject")
    session.go("brain05_lmix0004")
    session.decide("reject", "nearly empty")
    assert decided == ["brain05_lmix0004"] and rows
    assert DecisionStore(export, "bob").verdicts()["brain05_lmix0004"].note == "nearly empty"
    session.set_filter("decision", ["reject"])
    assert [r.name for r in session.visible()] == ["brain05_lmix0004"]
    # another reviewer's decision appears on refresh
    DecisionStore(export, "bob").decide("brain01", "flag", "check")
    session.set_filter("decision", None)
    session.refresh()
    assert session.verdict("brain01").reviewer == "bob"
    # a new session (napari restarted) sees the decisions
    again = ReviewSession("carol")
    again.open(export)
    assert again.verdict("brain05_lmix0004").decision == "reject"


def test_select_lesion(session):
    picked = []
    session.lesion_selected.connect(picked.append)
    session.go("brain02_lmix0001")
    added = [i for i, les in enumerate(session.current.changes.lesions)
             if les.origin == "added"]
    session.select_lesion(added[0])
    assert picked[-1].origin == "added" and picked[-1].donor
    with pytest.raises(IndexError):
        session.select_lesion(999)
    session.select_lesion(None)
    assert picked[-1] is None


def test_unreadable_case_keeps_the_previous_one(session, export):
    msgs = []
    session.message.connect(lambda level, text: msgs.append((level, text)))
    session.go("brain01")
    (export / "imagesTr" / "brain02_0000.nii.gz").write_bytes(b"not a nifti")
    assert session.go("brain02") is None
    assert session.current.name == "brain01"
    assert msgs and msgs[-1][0] == "error" and "brain02_0000.nii.gz" in msgs[-1][1]
