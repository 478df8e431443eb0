"""``generate`` end to end in this process: layout, manifest, resume, overwrite, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_lesionmix.batch.dataset import open_dataset
from napari_lesionmix.batch.layout import output_name
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions, RunError
from napari_lesionmix.batch.prepare import prepare
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.tasks import PLAN_FILE
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.mix import case_seeds
from napari_lesionmix.core.provenance import Provenance
from napari_lesionmix.core.recipe import Recipe
from tests.batch.helpers import make_nnunet


def run(inp, out, n=6, **kw) -> object:
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return generate(GenerateOptions(input=inp, output=out, n=n, **kw), say=lambda m: None)


def arrays(out: Path) -> dict:
    """Every NIfTI under imagesTr/labelsTr of an output, by relative path."""
    return {p.relative_to(out).as_posix(): read_image(p)[0]
            for d in ("imagesTr", "labelsTr") for p in sorted((out / d).glob("*.nii.gz"))}


def test_generate_layout_manifest_provenance(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    s = run(nnunet_ds, out, n=6)
    assert s.exit_code == 0 and s.written == 6 and s.originals == 4
    names = [output_name(f"sub{k % 4:02d}", k, 6) for k in range(6)]
    assert names[5] == "sub01_lmix0005"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 10 and meta["file_ending"] == ".nii.gz"
    assert meta["channel_names"] == {"0": "ch0", "1": "ch1"}
    assert meta["labels"] == {"background": 0, "lesion": 1}
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "complete" and set(m.written()) == set(names)
    assert m.data["plan"]["n"] == 6 and m.data["plan"]["seed"] == 0
    assert m.data["versions"]["numpy"] == np.__version__
    # reference loads: every training case, the zero-load one included
    assert m.data["reference_loads"]["sub03"]["load_mm3"] == 0.0
    for k, name in enumerate(names):
        e = m.cases[name]
        assert e["k"] == k and e["source"] == f"sub{k % 4:02d}"
        prov = Provenance.load(out / "provenance" / f"{name}.json")
        assert prov.target_load_mm3 == pytest.approx(e["target_load_mm3"])
        assert prov.achieved_load_mm3 == pytest.approx(e["achieved_load_mm3"])
        assert prov.seed["spawn_key"] == list(case_seeds(0, 6)[k].spawn_key)
        assert Path(prov.source["label_path"]).is_absolute()
        # the source's exact geometry and dtype
        src_img, src_geo, src_dt = read_image(nnunet_ds / "imagesTr" / f"{e['source']}_0000.nii.gz")
        img, geo, dt = read_image(out / "imagesTr" / f"{name}_0000.nii.gz")
        assert geo == src_geo and dt == src_dt == "int16" and img.shape == src_img.shape
        lab, lgeo, _ = read_image(out / "labelsTr" / f"{name}.nii.gz")
        assert lgeo == src_geo
        assert int((lab == 1).sum()) == e["achieved_voxels"]
    # originals copied byte for byte
    for p in (nnunet_ds / "imagesTr").iterdir():
        assert (out / "imagesTr" / p.name).read_bytes() == p.read_bytes()
    assert (out / "loads.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / ".lesionmix" / "bank.npz").exists()
    n, problems = verify_output(out)
    assert n == 10 and problems == []


def test_targets_follow_recipe_distribution(nnunet_ds, tmp_path):
    recipe = tmp_path / "r.json"
    Recipe(load_distribution="fixed", load={"value": 300.0}, seed=5).to_json(recipe)
    run(nnunet_ds, tmp_path / "out", n=4, recipe=recipe, seed=9)
    m = Manifest.load(tmp_path / "out" / "manifest.json")
    assert m.data["plan"]["seed"] == 9 and m.data["recipe"]["seed"] == 9
    assert {e["target_load_mm3"] for e in m.cases.values()} == {300.0}


def test_no_originals_and_compression(nnunet_ds, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(nnunet_ds, a, n=3, originals=False, compression=1)
    run(nnunet_ds, b, n=3, originals=False, compression=9)
    assert json.loads((a / "dataset.json").read_text())["numTraining"] == 3
    assert not (a / "imagesTr" / "sub00_0000.nii.gz").exists()
    A, B = arrays(a), arrays(b)
    assert A.keys() == B.keys() and all(np.array_equal(A[k], B[k]) for k in A)
    assert verify_output(a)[1] == []


def test_streamed_map_and_bank_equal_the_engine_builders(nnunet_ds):
    ds = open_dataset(nnunet_ds)
    recipe = Recipe(likelihood={"sigma_mm": 1.5, "floor": 0.05})
    prep = prepare(ds, recipe)
    cases = [Case.read([str(p) for p in c.image_paths], str(c.label_path), name=c.name)
             for c in ds.cases]
    ref = LikelihoodMap.from_recipe(cases, prep.recipe)
    assert np.array_equal(prep.lmap.prob, ref.prob) and prep.lmap.geometry == ref.geometry
    from napari_lesionmix.core.lesions import LesionBank
    bank = LesionBank.from_recipe(cases, prep.recipe)
    assert [e.key for e in bank.entries] == [e.key for e in prep.bank.entries]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(bank.entries, prep.bank.entries))
    assert prep.recipe.lesion_classes == [1]
    assert [prep.loads[c.name]["load_voxels"] for c in ds.cases][-1] == 0


def test_output_with_files_is_an_error(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="already holds files"):
        run(nnunet_ds, out)
    with pytest.raises(RunError, match="no manifest"):
        run(nnunet_ds, out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_bad_input_stops_before_writing(nnunet_ds, tmp_path):
    (nnunet_ds / "labelsTr" / "sub02.nii.gz").unlink()
    out = tmp_path / "out"
    with pytest.raises(RunError, match="sub02") as exc:
        run(nnunet_ds, out)
    assert "nothing was written" in str(exc.value)
    assert not out.exists()


def test_skip_bad_goes_on_and_lists_skipped(nnunet_ds, tmp_path):
    (nnunet_ds / "labelsTr" / "sub02.nii.gz").unlink()
    out = tmp_path / "out"
    s = run(nnunet_ds, out, n=4, skip_bad=True)
    assert s.exit_code == 0 and [b["case"] for b in s.skipped] == ["sub02"]
    assert "sub02" in s.line()
    m = Manifest.load(out / "manifest.json")
    assert m.data["skipped"][0]["case"] == "sub02"
    assert "missing label file" in m.data["skipped"][0]["problem"]
    # sources are the 3 good cases, k mod 3
    assert [m.cases[n]["source"] for n in sorted(m.cases, key=lambda n: m.cases[n]["k"])] == \
        ["sub00", "sub01", "sub03", "sub00"]
    assert not (out / "imagesTr" / "sub02_0000.nii.gz").exists()
    assert verify_output(out)[1] == []


def test_overwrite_replaces_previous_run(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    run(nnunet_ds, out, n=6)
    (out / "notes.txt").write_text("kept")
    s = run(nnunet_ds, out, n=2, overwrite=True, seed=3)
    assert s.exit_code == 0
    assert sorted(p.name for p in (out / "labelsTr").iterdir() if "lmix" in p.name) == \
        ["sub00_lmix0000.nii.gz", "sub01_lmix0001.nii.gz"]
    assert len(list((out / "provenance").iterdir())) == 2
    assert (out / "notes.txt").read_text() == "kept"
    assert verify_output(out)[1] == []


def test_resume_refuses_a_different_plan(nnunet_ds, tmp_path):
    out = tmp_path / "out"
    run(nnunet_ds, out, n=3)
    for change, word in (({"n": 4}, "n:"), ({"seed": 1}, "seed"), ({"compression": 3}, "compression")):
        kw = {"n": 3, **change}
        with pytest.raises(RunError, match=word):
            run(nnunet_ds, out, resume=True, **kw)
    recipe = tmp_path / "r.json"
    Recipe(tolerance=0.2).to_json(recipe)
    with pytest.raises(RunError, match="recipe_hash"):
        run(nnunet_ds, out, n=3, resume=True, recipe=recipe)
    (nnunet_ds / "labelsTr" / "sub00.nii.gz").touch()  # input changed
    with pytest.raises(RunError, match="input_fingerprint"):
        run(nnunet_ds, out, n=3, resume=True)


def test_resume_repairs_unfinished_cases(nnunet_ds, tmp_path):
    clean, out = tmp_path / "clean", tmp_path / "out"
    run(nnunet_ds, clean, n=6)
    run(nnunet_ds, out, n=6)
    m = Manifest.load(out / "manifest.json")
    # simulate a crash: one case lost its manifest entry (files orphaned), one lost a
    # file after its entry, one left a temporary file and half its files
    del m.cases["sub01_lmix0001"]
    m.save()
    (out / "labelsTr" / "sub02_lmix0002.nii.gz").unlink()
    m = Manifest.load(out / "manifest.json")
    del m.cases["sub03_lmix0003"]
    m.save()
    (out / "labelsTr" / "sub03_lmix0003.nii.gz").unlink()
    (out / "provenance" / "sub03_lmix0003.json").unlink()
    tmp = out / "imagesTr" / ".sub03_lmix0003_0000.abcd.tmp.nii.gz"
    tmp.write_bytes(b"partial")
    s = run(nnunet_ds, out, n=6, resume=True)
    assert s.exit_code == 0 and s.reused == 3 and s.written == 3
    assert not tmp.exists()
    A, B = arrays(clean), arrays(out)
    assert A.keys() == B.keys() and all(np.array_equal(A[k], B[k]) for k in A)
    assert verify_output(out)[1] == []
    # nothing left to do: a second resume reuses everything
    s2 = run(nnunet_ds, out, n=6, resume=True)
    assert s2.reused == 6 and s2.written == 0 and s2.exit_code == 0


def test_failed_case_is_recorded_and_exit_code_1(nnunet_ds, tmp_path, monkeypatch):
    import napari_lesionmix.batch.tasks as tasks

    real = tasks.synthesize

    def flaky(case, *a, name=None, **kw):
        if name == "sub01_lmix0001":
            raise RuntimeError("boom")
        return real(case, *a, name=name, **kw)

    monkeypatch.setattr(tasks, "synthesize", flaky)
    out = tmp_path / "out"
    s = run(nnunet_ds, out, n=3)
    assert s.exit_code == 1 and s.failed[0]["case"] == "sub01_lmix0001"
    assert "boom" in s.failed[0]["error"]
    m = Manifest.load(out / "manifest.json")
    assert m.cases["sub01_lmix0001"]["status"] == "failed" and m.data["state"] == "incomplete"
    assert not (out / "labelsTr" / "sub01_lmix0001.nii.gz").exists()
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 4 + 2
    assert verify_output(out)[1] == []
    monkeypatch.setattr(tasks, "synthesize", real)
    s = run(nnunet_ds, out, n=3, resume=True)
    assert s.exit_code == 0 and s.written == 1 and s.reused == 2


def test_organ_dataset_default_classes(tmp_path):
    ds = make_nnunet(tmp_path / "liver", n_cases=3, organ=True, channels=1)
    recipe = tmp_path / "r.json"
    Recipe(organ_label=1).to_json(recipe)
    out = tmp_path / "out"
    s = run(ds, out, n=3, recipe=recipe)
    assert s.exit_code == 0
    plan = json.loads((out / ".lesionmix" / PLAN_FILE).read_text())
    assert plan["recipe"]["lesion_classes"] == [2] and plan["recipe"]["organ_label"] == 1
    assert verify_output(out)[1] == []


def test_output_inside_input_rejected(nnunet_ds):
    with pytest.raises(RunError, match="must not"):
        run(nnunet_ds, nnunet_ds)
    with pytest.raises(RunError, match="imagesTr"):
        run(nnunet_ds, nnunet_ds / "imagesTr" / "x")


def test_batch_and_cli_import_no_napari_or_qt():
    import subprocess
    import sys
    code = ("import sys, napari_lesionmix.batch, napari_lesionmix.cli, "
            "napari_lesionmix.batch.executors, napari_lesionmix.batch.plot\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]\n"
            "assert not bad, bad")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
