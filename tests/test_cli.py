"""The `lesionmix` command line: help, stats, likelihood, replay, verify, demo, exit codes."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from napari_lesionmix.cli import build_parser, main
from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.likelihood import LikelihoodMap
from tests.batch.helpers import make_nnunet


@pytest.fixture
def ds(tmp_path):
    return make_nnunet(tmp_path / "in", n_cases=3, channels=1)


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", ["generate", "stats", "likelihood", "replay", "verify",
                                     "splits", "demo"])
def test_help_explains_every_option_with_default(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    sub = _subparsers()[command]
    for action in sub._actions:
        if action.dest == "help":
            continue
        for flag in action.option_strings or [action.metavar or action.dest]:
            assert flag in text, flag
        assert action.help, f"{command} {action.dest} has no help"
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                   argparse._VersionAction))
        if action.option_strings and not action.required and not flag:
            # the default is stated in words, or added as "(default: X)"
            assert "default" in action.help.lower() or f"(default: {action.default})" in \
                re.sub(r"\s+", " ", text), (command, action.dest)


def test_generate_exit_codes(ds, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(ds), str(out), "--n", "3", "--workers", "1",
                 "--no-progress"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("done: 3/3 synthesised cases complete")
    # OUTPUT holds files
    assert main(["generate", str(ds), str(out), "--n", "3", "--workers", "1"]) == 2
    assert "already holds files" in capsys.readouterr().err
    # bad input: reported by name and file, nothing written
    (ds / "labelsTr" / "sub01.nii.gz").write_bytes(b"\x1f\x8b garbage")
    out2 = tmp_path / "out2"
    assert main(["generate", str(ds), str(out2), "--n", "3", "--workers", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad case sub01" in err and "sub01.nii.gz" in err and not out2.exists()
    assert main(["generate", str(ds), str(out2), "--n", "2", "--workers", "1", "--skip-bad",
                 "--no-progress"]) == 0
    assert "1 bad input case(s) skipped: sub01" in capsys.readouterr().out
    assert main(["verify", str(out2)]) == 0


def test_resume_and_overwrite_exclusive(ds, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["generate", str(ds), str(tmp_path / "o"), "--n", "1", "--resume", "--overwrite"])


def test_stats_table_json_and_plot(ds, tmp_path, capsys):
    png = tmp_path / "loads.png"
    assert main(["stats", str(ds), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "sub00" in out and "load ml" in out and "voxels" in out and "tertiles" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["stats", str(ds), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["case"]: r for r in data["cases"]}
    lab, geo, _ = read_image(ds / "labelsTr" / "sub00.nii.gz")
    assert rows["sub00"]["load_voxels"] == int((lab == 1).sum())
    assert rows["sub00"]["load_mm3"] == pytest.approx((lab == 1).sum() * geo.voxel_volume)
    assert rows["sub02"]["load_mm3"] == 0 and rows["sub00"]["lesions"] >= 1
    assert data["summary"]["cases"] == 3


def test_stats_names_every_label_with_its_volume(tmp_path, capsys):
    ds = make_nnunet(tmp_path / "liver", n_cases=2, organ=True, channels=1)
    assert main(["stats", str(ds)]) == 0
    captured = capsys.readouterr()
    assert "labels: 1 liver (lesion class), 2 tumour (lesion class)" in captured.out
    assert "liver ml" in captured.out and "tumour ml" in captured.out
    assert "label 1 ('liver') is counted as a lesion class" in captured.err
    assert main(["stats", str(ds), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(x["value"], x["name"]) for x in data["labels"]] == [(1, "liver"), (2, "tumour")]
    lab, geo, _ = read_image(ds / "labelsTr" / "sub00.nii.gz")
    row = data["cases"][0]
    for value in (1, 2):
        assert row["label_mm3"][str(value)] == pytest.approx((lab == value).sum()
                                                             * geo.voxel_volume)
    recipe = tmp_path / "r.json"
    recipe.write_text('{"organ_label": 1}')
    assert main(["stats", str(ds), "--recipe", str(recipe)]) == 0
    captured = capsys.readouterr()
    assert "1 liver (organ), 2 tumour (lesion class)" in captured.out
    assert "counted as a lesion class" not in captured.err


def test_a_dataset_recipe_is_used_unless_another_is_given(tmp_path, capsys):
    """A dataset that ships lesionmix_recipe.json (as the plugin adopts it) gets it from
    stats, likelihood and generate too; --recipe still wins."""
    ds = make_nnunet(tmp_path / "liver", n_cases=2, organ=True, channels=1)
    (ds / "lesionmix_recipe.json").write_text('{"organ_label": 1, "lesion_classes": [2]}')
    assert main(["stats", str(ds)]) == 0
    captured = capsys.readouterr()
    assert "1 liver (organ), 2 tumour (lesion class)" in captured.out
    assert f"recipe: {ds / 'lesionmix_recipe.json'} (the dataset's own" in captured.err
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert main(["stats", str(ds), "--recipe", str(plain)]) == 0
    captured = capsys.readouterr()
    assert "1 liver (lesion class)" in captured.out and "dataset's own" not in captured.err
    out = tmp_path / "out"
    assert main(["generate", str(ds), str(out), "--n", "2", "--workers", "1",
                 "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["organ_label"] == 1 and manifest["recipe"]["lesion_classes"] == [2]


def test_likelihood_map(ds, tmp_path, capsys):
    path = tmp_path / "map.nii.gz"
    assert main(["likelihood", str(ds), "-o", str(path), "--sigma", "2", "--floor", "0.1"]) == 0
    lmap = LikelihoodMap.load(path)
    lab, geo, _ = read_image(ds / "labelsTr" / "sub00.nii.gz")
    assert lmap.shape == lab.shape and lmap.geometry.matches(geo)
    assert lmap.prob.max() == pytest.approx(1.0) and lmap.prob.min() == 0.0
    assert main(["likelihood", str(ds), "-o", str(path)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err


def test_replay_rebuilds_the_case_exactly(ds, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(ds), str(out), "--n", "3", "--workers", "1",
                 "--no-progress"]) == 0
    for name in ("sub00_lmix0000", "sub01_lmix0001", "sub02_lmix0002"):
        prov = out / "provenance" / f"{name}.json"
        dest = tmp_path / "replayed"
        assert main(["replay", str(prov), "-o", str(dest)]) == 0
        for rel in (f"imagesTr/{name}_0000.nii.gz", f"labelsTr/{name}.nii.gz"):
            a, ga, da = read_image(out / rel)
            b, gb, db = read_image(dest / rel)
            assert np.array_equal(a, b) and ga == gb and da == db, rel
    assert main(["replay", str(out / "provenance" / "sub00_lmix0000.json"), "-o", str(dest)]) == 2


def test_verify_finds_problems(ds, tmp_path, capsys):
    out = tmp_path / "out"
    main(["generate", str(ds), str(out), "--n", "2", "--workers", "1", "--no-progress"])
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    img = out / "imagesTr" / "sub01_lmix0001_0000.nii.gz"
    data = img.read_bytes()
    img.write_bytes(data[: len(data) - 20])
    (out / "labelsTr" / ".x.tmp.nii.gz").write_bytes(b"")
    import shutil
    shutil.copy(out / "labelsTr" / "sub00.nii.gz", out / "labelsTr" / "sub99.nii.gz")
    shutil.copy(out / "imagesTr" / "sub00_0000.nii.gz", out / "imagesTr" / "sub99_0000.nii.gz")
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert "sub01_lmix0001_0000.nii.gz" in text and "truncated" in text
    assert ".x.tmp.nii.gz" in text
    assert "numTraining is 5 but 6" in text


def test_verify_refuses_nan_in_a_float_image(ds, tmp_path, capsys):
    from napari_lesionmix.core.image_io import write_image
    out = tmp_path / "out"
    main(["generate", str(ds), str(out), "--n", "1", "--workers", "1", "--no-progress"])
    img = out / "imagesTr" / "sub00_lmix0000_0000.nii.gz"
    arr, geo, _ = read_image(img)
    arr = arr.astype(np.float32)
    arr[3, 4, 5] = np.nan
    write_image(arr, geo, img, overwrite=True)
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert "sub00_lmix0000_0000.nii.gz" in text and "NaN" in text


def test_demo_without_a_display_says_what_to_do(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "xvfb-run -a .venv/bin/lesionmix demo" in err
    monkeypatch.setenv("DISPLAY", ":987")  # named, but nothing listens there
    assert main(["demo"]) == 2
    assert "cannot open the display :987" in capsys.readouterr().err


def test_demo_without_napari(monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "napari" else real(name, *a))
    assert main(["demo"]) == 2
    assert "needs napari" in capsys.readouterr().err
