"""Opening a dataset for review: the case index and one loaded case."""

from __future__ import annotations

import gc
import json
import shutil
import weakref

import numpy as np
import pytest

from napari_lesionmix.review.index import ReviewDataset, ReviewError, find_dataset_root
from tests.review.review_helpers import BRAIN, generate


def _prov(export, name) -> dict:
    return json.loads((export / "provenance" / f"{name}.json").read_text())


@pytest.mark.parametrize("where", ["", "dataset.json", "imagesTr", "labelsTr"])
def test_open_from_folder_json_or_subfolder(export_ro, where):
    review = ReviewDataset.open(export_ro / where if where else export_ro)
    assert review.root == export_ro.resolve()
    assert len(review.rows) == 12


def test_not_a_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    with pytest.raises(ReviewError, match=str(tmp_path)):
        ReviewDataset.open(tmp_path)
    assert find_dataset_root(tmp_path) is None
    assert find_dataset_root(tmp_path / "missing.json") is None
    assert find_dataset_root(None) is None  # never raises


def test_index_rows_come_from_manifest_and_provenance(export_ro):
    review = ReviewDataset.open(export_ro)
    manifest = json.loads((export_ro / "manifest.json").read_text())
    synth = [r for r in review.rows if r.kind == "synthesised"]
    originals = [r for r in review.rows if r.kind == "original"]
    assert len(synth) == 6 and len(originals) == 6
    for row in synth:
        entry = manifest["cases"][row.name]
        prov = _prov(export_ro, row.name)
        ops = [o for o in prov["operations"] if o["accepted"]]
        assert row.source == entry["source"] == prov["source"]["case"]
        assert row.target_load_mm3 == entry["target_load_mm3"]
        assert row.achieved_load_mm3 == entry["achieved_load_mm3"]
        assert row.status == entry["synthesis"]
        assert row.added == sum(o["kind"] == "populate" for o in ops)
        assert row.removed == sum(o["kind"] == "inpaint" for o in ops)
    for row in originals:
        assert row.status == "original" and row.source is None
        assert row.achieved_load_mm3 == manifest["reference_loads"][row.name]["load_mm3"]
    # both directions occur in this export, so both counts are exercised
    assert any(r.added for r in synth) and any(r.removed for r in synth)


def test_any_nnunet_dataset_opens_and_loads_fill_in(tmp_path):
    plain = shutil.copytree(BRAIN, tmp_path / "Dataset001_Plain")
    review = ReviewDataset.open(plain / "dataset.json")
    assert [r.kind for r in review.rows] == ["case"] * 6
    assert review.rows[0].achieved_load_mm3 is None
    case = review.load("brain01")
    assert case.source is None and case.provenance is None
    assert review.rows[0].achieved_load_mm3 == pytest.approx(3152.0)
    assert {les.origin for les in case.changes.lesions} == {"lesion"}
    assert len(case.changes.lesions) == 13


def test_load_reads_result_and_source_on_one_grid(export_ro):
    review = ReviewDataset.open(export_ro)
    case = review.load("brain02_lmix0001")
    assert case.source is not None and "brain02 in this dataset" in case.source_note
    assert case.source.labels.shape == case.result.labels.shape
    assert case.source.geometry.matches(case.result.geometry)
    src = ReviewDataset.open(BRAIN)  # the dataset's copy of the source is the input's
    np.testing.assert_array_equal(case.source.channels, src.load("brain02").result.channels)


def test_only_the_current_case_stays_in_memory(export_ro):
    review = ReviewDataset.open(export_ro)
    case = review.load("brain01_lmix0000")
    ref = weakref.ref(case.result)
    del case
    gc.collect()
    assert ref() is None  # the dataset kept no reference to the voxels


def test_source_outside_the_dataset_comes_from_the_provenance(tmp_path):
    out = generate(tmp_path / "out", "--no-originals", n=3)
    review = ReviewDataset.open(out)
    assert [r.kind for r in review.rows] == ["synthesised"] * 3
    case = review.load(review.rows[0].name)
    assert case.source is not None and "from" in case.source_note


def test_missing_source_still_lists_changes_from_provenance(tmp_path):
    src = shutil.copytree(BRAIN, tmp_path / "in")
    out = generate(tmp_path / "out", "--no-originals", n=2, source=src)
    shutil.rmtree(src)
    review = ReviewDataset.open(out)
    name = next(r.name for r in review.rows if r.added)
    case = review.load(name)
    assert case.source is None and "not found" in case.source_note
    assert case.difference is None
    added = case.changes.of("added")
    assert len(added) == review.row(name).added
    assert all(les.donor and les.params for les in added)


def test_unreadable_case_names_the_file(export):
    label = export / "labelsTr" / "brain03_lmix0002.nii.gz"
    label.write_bytes(label.read_bytes()[:200])
    review = ReviewDataset.open(export)
    with pytest.raises(ReviewError, match="brain03_lmix0002"):
        review.load("brain03_lmix0002")
    (export / "labelsTr" / "brain04.nii.gz").unlink()
    review.refresh()
    assert "label" in review.row("brain04").problem
    with pytest.raises(ReviewError, match="brain04"):
        review.load("brain04")
