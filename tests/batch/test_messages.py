"""Item 11: what used to end in a traceback, a silent loss or a silent "reached" now ends in
a message that names the file and the problem (exit code 2 for bad input or options)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from napari_lesionmix.batch.dataset import open_dataset, validate
from napari_lesionmix.batch.layout import MAX_N
from napari_lesionmix.cli import main
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet
from tests.faults import small_disk

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset009_Msg", n_cases=2,
                       shape=(8, 12, 12), channels=1)


@pytest.fixture
def done(ds, tmp_path):
    out = tmp_path / "done"
    assert main(["generate", str(ds), str(out), "--n", "2", "--workers", "1",
                 "--no-progress"]) == 0
    return out


def run(args, capsys, code):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    assert rc == code, (rc, cap.err)
    assert "Traceback" not in cap.err
    return cap.err


def test_read_only_output(ds, tmp_path, capsys):
    with small_disk(tmp_path, 1 << 20) as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk.root)], check=True)
        err = run(["generate", ds, disk.root / "out", "--n", "1", "--no-progress"], capsys, 2)
        assert "cannot be written" in err
        err = run(["generate", ds, disk.root, "--n", "1", "--no-progress"], capsys, 2)
        assert "cannot be written" in err


def test_output_is_a_file(ds, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert "is a file" in run(["generate", ds, f, "--n", "1"], capsys, 2)
    assert "is a file" in run(["generate", ds, f / "sub", "--n", "1"], capsys, 2)


@pytest.mark.parametrize("bad", [{"cases": []}, {"cases": {"x": 3}}, {"plan": "no"},
                                 {"originals": [1]}])
def test_a_manifest_of_the_wrong_shape(ds, done, capsys, bad):
    m = json.loads((done / "manifest.json").read_text())
    m.update(bad)
    (done / "manifest.json").write_text(json.dumps(m))
    key = next(iter(bad))
    err = run(["generate", ds, done, "--n", "2", "--resume", "--no-progress"], capsys, 2)
    assert "manifest.json" in err and key in err
    run(["verify", done], capsys, 1)
    assert "manifest.json" in run(["splits", done], capsys, 2)


def test_deeply_nested_json_everywhere(ds, done, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    assert "deep.json" in run(["generate", ds, tmp_path / "o1", "--n", "1", "--recipe", deep],
                              capsys, 2)
    assert "deep.json" in run(["replay", deep, "-o", tmp_path / "r"], capsys, 2)
    shutil.copyfile(deep, done / "manifest.json")
    assert "manifest.json" in run(["generate", ds, done, "--n", "2", "--resume"], capsys, 2)
    run(["verify", done], capsys, 1)
    bad_ds = tmp_path / "bad_ds"
    shutil.copytree(ds, bad_ds)
    shutil.copyfile(deep, bad_ds / "dataset.json")
    assert "dataset.json" in run(["stats", bad_ds], capsys, 2)


def test_likelihood_to_an_unknown_format(ds, tmp_path, capsys):
    err = run(["likelihood", ds, "-o", tmp_path / "map.txt"], capsys, 2)
    assert "map.txt" in err and ".nii.gz" in err
    assert not (tmp_path / "map.txt").exists()


def test_organ_label_not_in_the_dataset(ds, tmp_path, capsys):
    recipe = tmp_path / "r.json"
    Recipe(organ_label=7).to_json(recipe)
    err = run(["generate", ds, tmp_path / "o", "--n", "1", "--recipe", recipe], capsys, 2)
    assert "organ_label" in err and "7" in err
    assert not (tmp_path / "o").exists()


def test_n_has_an_upper_bound(ds, tmp_path, capsys):
    err = run(["generate", ds, tmp_path / "o", "--n", str(10 ** 12)], capsys, 2)
    assert "--n" in err and f"{MAX_N:,}" in err
    assert not (tmp_path / "o").exists()


def test_dicom_folders_and_dangling_links_are_reported(tmp_path):
    src = make_nnunet(tmp_path / "src", n_cases=3, shape=(8, 12, 12), channels=1)
    paired = tmp_path / "paired"
    (paired / "images").mkdir(parents=True)
    (paired / "labels").mkdir()
    for i in range(3):
        shutil.copyfile(src / "imagesTr" / f"sub0{i}_0000.nii.gz",
                        paired / "images" / f"sub0{i}.nii.gz")
        shutil.copyfile(src / "labelsTr" / f"sub0{i}.nii.gz", paired / "labels" / f"sub0{i}.nii.gz")
    (paired / "images" / "sub00.nii.gz").unlink()
    (paired / "images" / "sub00").mkdir()  # a DICOM series folder
    (paired / "images" / "sub00" / "IM0001.dcm").write_bytes(b"\0" * 200)
    (paired / "images" / "sub01.nii.gz").unlink()
    os.symlink(tmp_path / "gone.nii.gz", paired / "images" / "sub01.nii.gz")
    os.symlink(tmp_path / "gone2.nii.gz", paired / "labels" / "sub03.nii.gz")
    ds = open_dataset(paired)
    good, bad = validate(ds)
    problems = {b.name: b.problem for b in bad}
    assert [g.name for g in good] == ["sub02"]
    assert "sub00" in problems and "folder" in problems["sub00"]
    assert "sub01" in problems and "symbolic link" in problems["sub01"]
    assert "sub03" in problems and "symbolic link" in problems["sub03"]


def test_resume_after_an_interrupt_while_the_bank_is_saved(ds, tmp_path, monkeypatch):
    from napari_lesionmix.batch.options import GenerateOptions
    from napari_lesionmix.batch.runner import generate
    from napari_lesionmix.core.lesions import LesionBank

    def interrupted(self, path):
        raise KeyboardInterrupt

    out = tmp_path / "out"
    monkeypatch.setattr(LesionBank, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(GenerateOptions(input=ds, output=out, n=2, progress=False), say=lambda m: None)
    monkeypatch.undo()
    s = generate(GenerateOptions(input=ds, output=out, n=2, resume=True, progress=False),
                 say=lambda m: None)
    assert s.exit_code == 0
    assert np.isfinite(s.seconds)
