"""The Review dock's tally of decisions, Clear, Refresh after another process removed
cases, and Remove rejected… (asked, then done as ``lesionmix remove-rejected`` does)."""

from __future__ import annotations

import json
import re

import pytest
from qtpy.QtCore import Qt

from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.cli import main
from tests.review.dock_helpers import answer_next_box, cell, click, click_case, press

pytestmark = pytest.mark.gui


def _files_of(root, name) -> list:
    """The case's image channels, label and provenance (not its variants')."""
    pattern = re.compile(rf"{name}(_\d{{4}})?\.(nii\.gz|json)$")
    return sorted(p.name for d in ("imagesTr", "labelsTr", "provenance")
                  for p in (root / d).iterdir() if pattern.match(p.name))


def _reject(qtbot, dock, name, note="") -> None:
    click_case(qtbot, dock, name)
    qtbot.keyClicks(dock.note, note)
    click(qtbot, dock.reject_btn)


def test_the_tally_counts_decisions_and_clear_withdraws_one(dock, qtbot, export):
    assert dock.progress.text().startswith("12 cases: 0 accepted · 0 rejected")
    assert not dock.remove_btn.isEnabled()  # nothing rejected
    _reject(qtbot, dock, "brain04_lmix0003", "blob in the ventricle")
    assert "1 rejected" in dock.progress.text() and "11 undecided" in dock.progress.text()
    assert dock.remove_btn.isEnabled()
    click_case(qtbot, dock, "brain02_lmix0001")
    click(qtbot, dock.flag_btn)
    assert "1 flagged" in dock.progress.text()
    press(qtbot, dock, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)  # clear
    assert "0 flagged" in dock.progress.text()
    assert dock.verdict.text().startswith("<b>withdrawn</b> by alice")
    row = dock.cases.names.index("brain02_lmix0001")
    assert cell(dock.cases, row, "decision") == ""
    click_case(qtbot, dock, "brain04_lmix0003")
    click(qtbot, dock.clear_btn)
    assert "0 rejected" in dock.progress.text() and not dock.remove_btn.isEnabled()
    events = json.loads((export / "qa" / "decisions" / "alice.json").read_text())["events"]
    assert [e["decision"] for e in events] == ["reject", "flag", "clear", "clear"]


def test_remove_rejected_from_the_dock_asks_then_leaves_a_trainable_dataset(dock, qtbot,
                                                                         export):
    _reject(qtbot, dock, "brain05_lmix0004", "nearly empty")
    _reject(qtbot, dock, "brain02", "motion")  # an original; shown when removing
    before = {n: _files_of(export, n) for n in ("brain05_lmix0004", "brain02")}
    assert all(before.values())
    splits = (export / "splits_final.json").read_text()
    # Cancel: nothing changes
    seen = []
    answer_next_box(qtbot, "Cancel", seen)
    click(qtbot, dock.remove_btn)
    assert "brain05_lmix0004: rejected by alice (nearly empty)" in seen[0]
    assert "brain02: rejected by alice (motion)" in seen[0]
    assert "1 case(s) synthesised from a removed original stay (brain02_lmix0001)" in seen[0]
    assert {n: _files_of(export, n) for n in before} == before
    assert (export / "splits_final.json").read_text() == splits
    assert dock.cases.rowCount() == 12
    # Remove
    answer_next_box(qtbot, "Remove 2", seen)
    click(qtbot, dock.remove_btn)
    assert len(seen) == 2
    assert all(_files_of(export, n) == [] for n in before)
    assert dock.cases.rowCount() == 10 and "brain02" not in dock.cases.names
    assert dock.session.current.name == "brain02_lmix0001"  # the next row of the table
    assert "Last removal: 2 case(s) removed, numTraining 12 → 10" in dock.progress.text()
    assert "splits_final.json: made again" in dock.progress.toolTip()
    assert "0 rejected" in dock.progress.text() and not dock.remove_btn.isEnabled()
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["removed"]["brain02"]["note"] == "motion"
    assert all("brain02" not in fold["train"] + fold["val"]
               for fold in json.loads((export / "splits_final.json").read_text()))
    assert verify_output(export) == (10, [])


def test_refresh_reads_cases_removed_by_the_command(dock, qtbot, export):
    _reject(qtbot, dock, "brain03_lmix0002", "too many removed")
    assert dock.session.current.name == "brain03_lmix0002"
    assert main(["remove-rejected", str(export)]) == 0  # in a terminal, meanwhile
    click(qtbot, dock.refresh_btn)
    assert dock.cases.rowCount() == 11 and "brain03_lmix0002" not in dock.cases.names
    assert dock.session.current.name == "brain04"
    press(qtbot, dock, Qt.Key.Key_PageUp)
    assert dock.session.current.name == "brain03"


def test_then_next_moves_on_after_a_decision(dock, qtbot, export):
    click(qtbot, dock.advance)
    assert dock.advance.isChecked()
    click_case(qtbot, dock, "brain01_lmix0000")
    click(qtbot, dock.accept_btn)
    assert dock.session.current.name == "brain02"  # the next row
    # only the undecided: each decision takes the case out and shows the next one left
    box = dock.filters.boxes["decision"]
    box.setFocus()
    qtbot.keyClicks(box, "und")
    assert box.currentText() == "undecided" and dock.cases.rowCount() == 11
    press(qtbot, dock, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)  # reject brain02
    assert dock.cases.rowCount() == 10 and "brain02" not in dock.cases.names
    assert dock.session.current.name == "brain02_lmix0001"
    click(qtbot, dock.clear_btn)  # Clear stays on the case
    assert dock.session.current.name == "brain02_lmix0001"
    events = json.loads((export / "qa" / "decisions" / "alice.json").read_text())["events"]
    assert [(e["case"], e["decision"]) for e in events] == [
        ("brain01_lmix0000", "accept"), ("brain02", "reject"), ("brain02_lmix0001", "clear")]
