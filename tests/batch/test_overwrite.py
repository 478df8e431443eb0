"""Item 6: ``--overwrite`` only ever deletes what a lesionmix run recorded writing.

A folder without a manifest (e.g. the user's own nnU-Net dataset) is refused, not
emptied; a run's folder holding files that run never wrote is refused too, naming them,
before anything is read or deleted; a previous run's files are removed file by file.
"""

from __future__ import annotations

import json
import shutil

import pytest

from napari_lesionmix.batch.options import GenerateOptions, RunError
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.cli import main


def run(inp, out, n=4, **kw):
    kw.setdefault("progress", False)
    return generate(GenerateOptions(input=inp, output=out, n=n, **kw), say=lambda m: None)


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_users_own_dataset_is_not_deleted(nnunet_ds, tmp_path, capsys):
    theirs = tmp_path / "Dataset099_Mine"
    shutil.copytree(nnunet_ds, theirs)
    before = tree(theirs)
    rc = main(["generate", str(nnunet_ds), str(theirs), "--n", "2", "--overwrite",
               "--workers", "1", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no manifest.json" in err and "nothing was deleted" in err
    assert tree(theirs) == before


def test_files_the_run_did_not_write_are_refused_and_kept(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    assert run(nnunet_ds, out, n=4).exit_code == 0
    # a file named like a synthesised case that no run recorded or planned is not ours either
    (out / "labelsTr" / "sub00_lmix0099.nii.gz").write_bytes(b"old")
    mine = out / "imagesTr" / "extra99_0000.nii.gz"
    shutil.copyfile(nnunet_ds / "imagesTr" / "sub00_0000.nii.gz", mine)
    (out / "labelsTr" / "README.txt").write_text("mine")
    before = tree(out)
    for flag in ("overwrite", "resume"):
        with pytest.raises(RunError, match=r"extra99_0000\.nii\.gz.*README\.txt|README\.txt.*"
                                           r"extra99_0000\.nii\.gz") as err:
            run(nnunet_ds, out, n=4, **{flag: True})
        assert "not written by" in str(err.value) and "sub00_lmix0099" in str(err.value)
        assert tree(out) == before  # nothing deleted


def test_overwrite_removes_the_previous_run_file_by_file(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    assert run(nnunet_ds, out, n=6).exit_code == 0
    (out / "notes.txt").write_text("kept")
    (out / "extra").mkdir()
    (out / "extra" / "a.bin").write_bytes(b"x")
    s = run(nnunet_ds, out, n=2, overwrite=True, seed=3)
    assert s.exit_code == 0
    assert sorted(p.name for p in (out / "provenance").iterdir()) == \
        ["sub00_lmix0000.json", "sub01_lmix0001.json"]
    assert (out / "notes.txt").read_text() == "kept" and (out / "extra" / "a.bin").exists()
    assert verify_output(out)[1] == []
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 4 + 2


def test_overwrite_removes_unrecorded_cases_of_the_previous_plan(nnunet_ds, tmp_path):
    """A killed run leaves files of a planned case it never recorded: they are its own."""
    out = tmp_path / "out"
    assert run(nnunet_ds, out, n=6).exit_code == 0
    m = json.loads((out / "manifest.json").read_text())
    del m["cases"]["sub01_lmix0005"]  # as if killed before recording it
    (out / "manifest.json").write_text(json.dumps(m))
    assert run(nnunet_ds, out, n=2, overwrite=True).exit_code == 0
    assert not list(out.rglob("*lmix0005*"))
    assert verify_output(out)[1] == []
