"""``lesionmix qa`` and ``lesionmix remove-rejected``; the review package stays Qt-free;
the reader opens a whole dataset."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from napari_lesionmix._reader import napari_get_reader
from napari_lesionmix.cli import build_parser, main


@pytest.mark.parametrize("command", ["qa", "qc", "remove-rejected"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    action = next(a for a in build_parser()._actions if a.dest == "command")
    for act in action.choices[command]._actions:
        if act.dest == "help":
            continue
        assert act.help, act.dest
        for flag in act.option_strings:
            assert flag in text
        if act.option_strings and not isinstance(act, argparse._StoreTrueAction):
            assert "default" in act.help.lower() or "(default:" in text


def test_qa_records_and_summarises(export, capsys):
    assert main(["qa", str(export), "--reject", "brain05_lmix0004", "--note", "empty",
                 "--reviewer", "alice"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("brain05_lmix0004"))
    assert "reject" in line and "alice" in line and "empty" in line
    assert "12 case(s): 0 accepted, 1 rejected, 0 flagged, 11 undecided" in out
    assert "would remove: brain05_lmix0004" in out
    assert main(["qa", str(export), "--accept", "brain05_lmix0004", "brain01",
                 "--reviewer", "bob"]) == 0
    out = capsys.readouterr().out
    assert "2 accepted, 0 rejected" in out and "reviewers disagree" in out
    assert main(["qa", str(export / "dataset.json"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    case = next(c for c in data["cases"] if c["case"] == "brain05_lmix0004")
    assert case["decision"] == "accept" and len(case["history"]) == 2
    assert data["counts"]["accept"] == 2


def test_qa_prints_blinded_test_scores(export, capsys):
    from napari_lesionmix.review.blinded import BlindedSession
    from napari_lesionmix.review.index import ReviewDataset

    s = BlindedSession.new(ReviewDataset.open(export), "carol", n=8, seed=1)
    for t in s.trials[:4]:
        s.answer(t.id, t.truth)
    assert main(["qa", str(export)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith(f"blinded test {s.path.name} (carol, 4/8 answered): 4/4 correct")
    assert main(["qa", str(export), "--json"]) == 0
    (b,) = json.loads(capsys.readouterr().out)["blinded"]
    assert (b["rater"], b["n"], b["correct"]) == ("carol", 4, 4)


def test_qa_refuses_unknown_cases_and_records_nothing(export, capsys):
    assert main(["qa", str(export), "--reject", "brain01", "nope"]) == 2
    assert "no case named nope" in capsys.readouterr().err
    assert not (export / "qa").exists()
    assert main(["qa", str(export.parent)]) == 2
    assert "not an nnU-Net v2 raw dataset" in capsys.readouterr().err


def test_remove_rejected_then_verify(export, capsys):
    main(["qa", str(export), "--reject", "brain05_lmix0004", "brain03", "--reviewer", "a"])
    capsys.readouterr()
    assert main(["remove-rejected", str(export), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove brain03: rejected by a" in out and "nothing changed" in out
    assert (export / "labelsTr" / "brain03.nii.gz").exists()
    assert main(["remove-rejected", str(export)]) == 0
    out = capsys.readouterr().out
    assert "2 case(s) removed, 5 file(s) deleted; numTraining 12 -> 10" in out
    assert main(["verify", str(export)]) == 0
    assert main(["qa", str(export)]) == 0
    assert "2 case(s) already removed: brain03, brain05_lmix0004" in capsys.readouterr().out
    assert main(["remove-rejected", str(export)]) == 0
    assert "no rejected case to remove" in capsys.readouterr().out


def test_review_package_imports_no_napari_and_no_qt():
    code = ("import sys; import napari_lesionmix.review.commands, napari_lesionmix.review.qc, "
            "napari_lesionmix.review.blinded, napari_lesionmix.review.remove, "
            "napari_lesionmix._dataset_reader; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_reader_accepts_a_dataset_and_opens_its_first_case(export_ro, tmp_path):
    for where in (export_ro, export_ro / "dataset.json", export_ro / "imagesTr",
                  str(export_ro / "labelsTr")):
        reader = napari_get_reader(where)
        assert reader is not None, where
    from napari_lesionmix._dataset_reader import first_case_layers

    layers = first_case_layers(export_ro)
    assert [(kw["name"], kind) for _, kw, kind in layers] == \
        [("brain01_0000", "image"), ("brain01", "labels")]
    assert layers[0][1]["metadata"]["lesionmix_dataset"] == str(export_ro.resolve())
    # other JSON files and plain folders are not ours
    (tmp_path / "x.json").write_text("{}")
    assert napari_get_reader(tmp_path / "x.json") is None
    assert napari_get_reader(tmp_path) is None
    assert napari_get_reader(export_ro / "provenance" / "brain01_lmix0000.json") is None


def test_resume_refuses_an_output_with_removed_cases(export, capsys):
    from tests.review.review_helpers import BRAIN

    assert main(["qa", str(export), "--reject", "brain05_lmix0004", "--reviewer", "a"]) == 0
    assert main(["remove-rejected", str(export)]) == 0
    before = sorted(p.name for p in (export / "imagesTr").iterdir())
    capsys.readouterr()
    code = main(["generate", str(BRAIN), str(export), "--n", "6", "--workers", "1",
                 "--no-progress", "--resume", "--recipe", str(BRAIN / "lesionmix_recipe.json")])
    err = capsys.readouterr().err
    assert code != 0 and "removed from this output after review" in err
    assert sorted(p.name for p in (export / "imagesTr").iterdir()) == before
    assert main(["verify", str(export)]) == 0
