"""What changed in a case: lesions by origin, donors, the difference map."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.lesions import find_lesions
from napari_lesionmix.core.provenance import Operation, Provenance
from napari_lesionmix.review.changes import (
    ORIGIN_CODES,
    describe_params,
    difference_map,
    lesion_changes,
    resample_case,
)
from napari_lesionmix.review.index import ReviewDataset
from tests.conftest import blob_case

PARAMS = {"flip": [False, True, False], "rotate": [0.0, 30.0, 0.0], "scale": 1.25,
          "elastic_sigma": 0.0, "elastic_magnitude": 0.0, "elastic_seed": 1,
          "brightness": 0.95, "noise_std": 0.02, "noise_seed": 2}


def _edited():
    """A source with lesions; the result loses the first and gains a cube elsewhere."""
    source = blob_case(shape=(20, 28, 28), n_lesions=2, seed=3, name="src")
    lesions = find_lesions(source.labels, [1], source.geometry.spacing_zyx, 3)
    result = source.copy()
    result.name = "src_lmix0000"
    gone = lesions[0]
    result.labels[gone.bbox][source.labels[gone.bbox] == 1] = 0
    result.channels[(slice(None),) + gone.bbox] += 7.0
    cube = (slice(3, 6), slice(12, 15), slice(4, 7))
    assert not source.labels[cube].any()
    result.labels[cube] = 1
    result.channels[(slice(None),) + cube] = 40.0
    ops = [Operation("inpaint", True, lesion=gone.to_dict(), noise_seed=5, voxels=-gone.voxels,
                     box=[[s.start, s.stop] for s in gone.bbox]),
           Operation("populate", False, reason="no location found", entry="d:1:9"),
           Operation("populate", True, entry="donor7:1:4", params=PARAMS, center=[4, 13, 5],
                     voxels=27, box=[[1, 8], [10, 17], [2, 9]])]
    prov = Provenance({}, "h", {}, {"case": "src"}, 0.0, 0.0, operations=ops,
                      bank_sources={"donor7:1:4": {"case": "donor7"}}, lesion_classes=[1])
    return source, result, prov, gone, lesions[1]


def test_origins_from_source_and_provenance():
    source, result, prov, gone, kept = _edited()
    ch = lesion_changes(result, source, prov, [1])
    assert ch.counts() == {"kept": 1, "added": 1, "removed": 1}
    added = ch.of("added")[0]
    assert (added.donor, added.donor_case, added.params, added.operation) == \
        ("donor7:1:4", "donor7", PARAMS, 2)
    assert added.voxels == 27
    removed = ch.of("removed")[0]
    assert removed.voxels == gone.voxels and removed.operation == 0
    assert ch.of("kept")[0].voxels == kept.voxels
    # the origin map: kept and added on the result, removed where the source had it
    assert (ch.origin == ORIGIN_CODES["added"]).sum() == 27
    assert (ch.origin == ORIGIN_CODES["removed"]).sum() == gone.voxels
    assert (ch.origin == ORIGIN_CODES["kept"]).sum() == kept.voxels
    # positions in mm follow the geometry
    np.testing.assert_allclose(added.centroid_mm, result.geometry.index_to_physical(
        added.centroid))


def test_origins_from_provenance_alone():
    _, result, prov, gone, _ = _edited()
    ch = lesion_changes(result, None, prov, [1])
    assert ch.counts() == {"kept": 1, "added": 1, "removed": 1}
    assert ch.of("added")[0].donor == "donor7:1:4"
    assert ch.of("removed")[0].voxels == gone.voxels


def test_without_source_or_provenance_every_lesion_is_listed():
    source, *_ = _edited()
    ch = lesion_changes(source, None, None, [1])
    assert {les.origin for les in ch.lesions} == {"lesion"} and len(ch.lesions) == 2


def test_tiny_added_spot_is_listed_not_hidden():
    """An accepted populate that left fewer than min_voxels still changes the labels."""
    source, result, prov, *_ = _edited()
    result.labels[15, 5, 20] = 1
    prov.operations.append(Operation("populate", True, entry="donor7:1:2", params=PARAMS,
                                     center=[15, 5, 20], voxels=1, box=[[13, 18], [3, 8],
                                                                        [18, 23]]))
    ch = lesion_changes(result, source, prov, [1])
    tiny = [les for les in ch.of("added") if les.voxels == 1]
    assert len(tiny) == 1 and "below min_voxels" in tiny[0].describe()


def test_describe_params_in_words():
    text = describe_params(PARAMS)
    assert text == "flip y; rotate 30° about y; scale 1.25; brightness 0.95; noise 0.020"


def test_difference_map_and_resampling():
    source, result, *_ = _edited()
    diff = difference_map(result, source)
    assert diff.shape == result.channels.shape and diff.dtype == np.float32
    changed = np.any(diff != 0, axis=0)
    assert changed[3:6, 12:15, 4:7].all()
    # moving the source's origin by whole voxels shifts it on the result's grid
    g = source.geometry
    moved = Case(source.channels, source.labels,
                 Geometry(g.spacing, (g.origin[0] + 2.0, g.origin[1], g.origin[2]), g.direction))
    on_grid = resample_case(moved, result)
    np.testing.assert_allclose(on_grid.channels[0][:, :, 2:], source.channels[0][:, :, :-2],
                               atol=1e-4)
    np.testing.assert_array_equal(on_grid.labels[:, :, 2:], source.labels[:, :, :-2])
    assert on_grid.geometry == result.geometry


@pytest.fixture(scope="module")
def loaded(export_ro):
    review = ReviewDataset.open(export_ro)
    return [review.load(r.name) for r in review.rows if r.kind == "synthesised"]


def test_every_synthesised_case_accounts_for_its_operations(loaded):
    for case in loaded:
        prov, row = case.provenance, case.row
        counts = case.changes.counts()
        assert counts["added"] == row.added and counts["removed"] == row.removed, row.name
        ops = {les.operation for les in case.changes.lesions if les.operation is not None}
        accepted = {i for i, o in enumerate(prov.operations) if o.accepted}
        assert ops == accepted, row.name
        added_vox = int((case.changes.origin == ORIGIN_CODES["added"]).sum())
        removed_vox = int((case.changes.origin == ORIGIN_CODES["removed"]).sum())
        assert added_vox - removed_vox == prov.achieved_voxels - prov.start_voxels, row.name


def test_difference_only_inside_the_edited_boxes(loaded):
    for case in loaded:
        inside = np.zeros(case.result.labels.shape, bool)
        for op in case.provenance.accepted:
            inside[tuple(slice(a, b) for a, b in op.box)] = True
        changed = np.any(case.difference != 0, axis=0)
        assert not (changed & ~inside).any(), case.name
        assert changed.any(), case.name
