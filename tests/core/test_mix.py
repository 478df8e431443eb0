"""Populate, inpaint, the loop to a target load, provenance and replay."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.edits import CaseContext, inpaint_edit, populate_edit
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.lesions import BankError, LesionBank, find_lesions, lesion_load
from napari_lesionmix.core.likelihood import LikelihoodError, LikelihoodMap
from napari_lesionmix.core.mix import replay, replay_from_files, synthesize
from napari_lesionmix.core.provenance import Provenance
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.core.transforms import LesionParams
from tests.conftest import blob_case


def _load(case, classes=(1,)):
    return lesion_load(case.labels, list(classes), case.geometry.spacing_zyx)[0]


def _outside_boxes_unchanged(before: Case, after: Case, prov: Provenance) -> bool:
    touched = np.zeros(before.labels.shape, bool)
    for op in prov.accepted:
        touched[tuple(slice(a, b) for a, b in op.box)] = True
    same_img = np.array_equal(before.channels[:, ~touched], after.channels[:, ~touched])
    return same_img and np.array_equal(before.labels[~touched], after.labels[~touched])


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 10_000))
    ndim = draw(st.sampled_from([2, 3]))
    shape = (24, 30, 30) if ndim == 3 else (48, 56)
    n = draw(st.integers(0, 4))
    return blob_case(shape=shape, n_lesions=n, seed=seed,
                     spacing=(1.0,) * ndim, channels=draw(st.integers(1, 2)),
                     lesion_radius=(1.2, 2.5))


PROP = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROP
@given(case=cases(), seed=st.integers(0, 2**32), factor=st.sampled_from([0.0, 0.4, 1.6, 2.5]))
def test_synthesis_properties(case, seed, factor):
    donor = blob_case(shape=case.labels.shape, n_lesions=4, seed=seed % 97,
                      channels=case.n_channels, lesion_radius=(1.2, 2.5), name="donor")
    bank = LesionBank.from_cases([donor, case], [1])
    recipe = Recipe(lesion_classes=[1], max_operations=60, populate={"min_inside": 0.8})
    start = _load(case)
    target = max(start * factor, 0.0) if start > 0 else 60.0 * factor
    before = case.copy()
    out = synthesize(case, bank, None, recipe, seed=seed, target_load=target)
    prov = out.provenance
    # the source is untouched, and everything outside the edited boxes is identical
    assert np.array_equal(case.channels, before.channels)
    assert _outside_boxes_unchanged(before, out.case, prov)
    # labels: only input labels and lesion classes
    assert set(np.unique(out.case.labels)) <= set(np.unique(before.labels)) | {1}
    # monotone load in each direction: removing, then (after going below) adding back
    loads = [start] + [op.load_mm3 for op in prov.operations]
    diffs = np.diff(loads)
    kinds = np.array([op.kind for op in prov.operations])
    if prov.direction == "populate":
        assert (diffs >= 0).all() and (kinds == "populate").all()
    if prov.direction == "inpaint":
        assert (diffs <= 0).all() and (kinds == "inpaint").all()
    if prov.direction == "inpaint+populate":
        first = int(np.argmax(kinds == "populate"))
        assert (kinds[:first] == "inpaint").all() and (kinds[first:] == "populate").all()
        assert (diffs[:first] <= 0).all() and (diffs[first:] >= 0).all()
        assert loads[first] < target - prov.tolerance_mm3  # it went below before adding
    assert prov.achieved_load_mm3 == pytest.approx(_load(out.case))
    assert prov.status in ("reached", "stuck", "cap", "no_lesions", "closest")
    # no step passes the far edge of the target band, except a last "closest" removal
    if prov.direction in ("populate", "inpaint+populate"):
        assert prov.achieved_load_mm3 <= target + prov.tolerance_mm3
    if prov.direction == "inpaint" and prov.status != "closest":
        assert prov.achieved_load_mm3 >= target - prov.tolerance_mm3
    if prov.status == "closest":
        before_last = loads[-2]
        assert abs(prov.achieved_load_mm3 - target) < abs(before_last - target)
    within = abs(prov.achieved_load_mm3 - target) <= prov.tolerance_mm3
    assert (prov.status == "reached") == within
    # replay gives the same arrays
    back = replay(json.loads(prov.to_json()), case, bank)
    assert np.array_equal(back.channels, out.case.channels)
    assert np.array_equal(back.labels, out.case.labels)


def test_reachable_target_is_met_within_tolerance_both_ways():
    case = blob_case(n_lesions=6, seed=3, lesion_radius=(1.2, 2.0))
    bank = LesionBank.from_cases([case], [1])
    start = _load(case)
    for factor in (2.0, 0.5):
        out = synthesize(case, bank, None, Recipe(tolerance=0.1), seed=1,
                         target_load=start * factor)
        p = out.provenance
        assert p.status == "reached", p.status
        assert abs(p.achieved_load_mm3 - start * factor) <= p.tolerance_mm3
        assert p.direction == ("populate" if factor > 1 else "inpaint")


def test_same_seed_identical_other_seed_differs():
    case = blob_case(n_lesions=3)
    bank = LesionBank.from_cases([case], [1])
    lmap = LikelihoodMap.from_cases([case], floor=0.05)
    r = Recipe(load_distribution="fixed", load={"value": 3 * _load(case)})
    a = synthesize(case, bank, lmap, r, seed=5)
    b = synthesize(case, bank, lmap, r, seed=5)
    c = synthesize(case, bank, lmap, r, seed=6)
    assert np.array_equal(a.case.channels, b.case.channels)
    assert np.array_equal(a.case.labels, b.case.labels)
    assert a.provenance.to_json() == b.provenance.to_json()
    assert not np.array_equal(a.case.labels, c.case.labels)


def test_named_output_uses_the_alignment_of_its_source_and_in_place_gives_the_same(tmp_path):
    # a run names each output; the map must still read the case by its source's
    # alignment (not align the output again, reading the map's whole reference case),
    # and synthesising into the case itself must give what a copy gives
    case = blob_case(n_lesions=3)
    bank = LesionBank.from_cases([case], [1])
    LikelihoodMap.from_cases([case], floor=0.05).save(tmp_path / "map.nii.gz")
    lmap = LikelihoodMap.load(tmp_path / "map.nii.gz")
    r = Recipe(load_distribution="fixed", load={"value": 3 * _load(case)})
    a = synthesize(case, bank, lmap, r, seed=5, name="case_lmix0000")
    assert a.case.name == "case_lmix0000" and a.provenance.accepted
    assert set(lmap.alignment) == {case.name} and lmap._reference is None
    source = case.copy()
    b = synthesize(source, bank, lmap, r, seed=5, name="case_lmix0000", in_place=True)
    assert b.case is source
    assert np.array_equal(a.case.channels, b.case.channels)
    assert np.array_equal(a.case.labels, b.case.labels)
    assert a.provenance.to_json() == b.provenance.to_json()


def test_spawned_seeds_do_not_depend_on_order():
    case = blob_case(n_lesions=3)
    bank = LesionBank.from_cases([case], [1])
    r = Recipe(load_distribution="fixed", load={"value": 2 * _load(case)})
    seeds = np.random.SeedSequence(11).spawn(3)
    fwd = [synthesize(case, bank, None, r, seed=s).case.labels for s in seeds]
    again = np.random.SeedSequence(11).spawn(3)
    rev = [synthesize(case, bank, None, r, seed=s).case.labels for s in reversed(again)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(fwd, rev))


def test_populate_places_where_the_map_says():
    case = blob_case(n_lesions=2, shape=(24, 40, 40))
    prob = np.zeros(case.labels.shape, np.float32)
    prob[8:16, 12:20, 22:30] = 1.0  # one small region of the foreground
    lmap = LikelihoodMap(prob, case.geometry)
    bank = LesionBank.from_cases([case], [1])
    out = synthesize(case, bank, lmap, Recipe(populate={"min_inside": 0.5}), seed=0,
                     target_load=4 * _load(case))
    centres = [op.center for op in out.provenance.accepted]
    assert centres
    assert all(8 <= z < 16 and 12 <= y < 20 and 22 <= x < 30 for z, y, x in centres)


def test_new_lesions_keep_the_gap_and_stay_inside():
    case = blob_case(n_lesions=3)
    bank = LesionBank.from_cases([case], [1])
    r = Recipe(populate={"min_gap": 2, "min_inside": 1.0})
    out = synthesize(case, bank, None, r, seed=2, target_load=3 * _load(case))
    assert len(out.provenance.accepted) > 0
    new = (out.case.labels == 1) & (case.labels != 1)
    assert not (new & ~case.foreground()).any()  # min_inside 1.0: all inside
    from scipy import ndimage as ndi
    grown = ndi.binary_dilation(case.labels == 1, np.ones((3, 3, 3)), iterations=2)
    assert not (new & grown).any()  # never within 2 voxels of an old lesion


def test_organ_lesions_go_in_the_organ_and_keep_context():
    case = blob_case(organ=True, n_lesions=2)
    bank = LesionBank.from_cases([case], [2])
    r = Recipe(lesion_classes=[2], organ_label=1, populate={"min_inside": 1.0})
    out = synthesize(case, bank, None, r, seed=4, target_load=3 * _load(case, [2]))
    assert out.provenance.accepted
    new = (out.case.labels == 2) & (case.labels != 2)
    assert (case.labels[new] == 1).all()
    # context outside new lesions untouched
    assert np.array_equal(out.case.labels[~new], case.labels[~new])
    # inpainting an organ lesion gives the organ label back
    inp = synthesize(case, bank, None, r, seed=4, target_load=0.0)
    assert (inp.case.labels == 2).sum() == 0
    assert (inp.case.labels[case.labels == 2] == 1).all()


def test_gui_path_fixed_params_soft_and_hard_blend():
    case = blob_case(n_lesions=2)
    bank = LesionBank.from_cases([case], [1])
    centre = tuple(int(c) for c in np.array(case.labels.shape) // 2)
    p = LesionParams.identity(3)
    for blend, outside_changed in (("hard", False), ("soft", True)):
        ctx = CaseContext(case, Recipe(populate={"blend": blend}))
        edit, why = populate_edit(case, bank[0], p, centre, ctx, check=False)
        assert why == ""
        sub = case.channels[(slice(None),) + edit.slices]
        mask = edit.labels == 1
        changed = edit.channels != sub
        assert changed[:, mask].any()
        assert bool(changed[:, ~mask & ~(case.labels[edit.slices] == 1)].any()) == outside_changed
    # a lesion put back where it came from with identity params changes (almost) nothing
    ctx = CaseContext(case, Recipe(populate={"blend": "hard"}))
    e = bank[0]
    edit, _ = populate_edit(case, e, p, e.lesion.centroid, ctx, check=False)
    assert np.array_equal(edit.labels, case.labels[edit.slices])
    assert np.allclose(edit.channels, case.channels[(slice(None),) + edit.slices], atol=1e-3)


def test_intensity_moves_between_cases_in_z_scores():
    dark = blob_case(n_lesions=2, seed=1, name="dark")
    bright = dark.copy()
    bright.name = "bright"
    fg = dark.foreground()
    bright.channels = np.where(fg, bright.channels * 3.0 + 50.0, 0).astype(np.float32)
    bank = LesionBank.from_cases([bright], [1])
    ctx = CaseContext(dark, Recipe(populate={"blend": "hard"}))
    e = bank[0]
    edit, _ = populate_edit(dark, e, LesionParams.identity(3), e.lesion.centroid, ctx, check=False)
    assert e.image[0][e.mask].mean() > 150  # in the bright case's units
    # mapped source z-score -> target intensity: the dark case's own values come back
    assert np.allclose(edit.channels, dark.channels[(slice(None),) + edit.slices], atol=1e-2)


def test_inpaint_edit_removes_one_lesion_and_undo_restores():
    case = blob_case(n_lesions=3)
    ctx = CaseContext(case, Recipe())
    lesions = find_lesions(case.labels, [1])
    before = case.copy()
    edit = inpaint_edit(case, lesions[0], ctx, noise_seed=1)
    undo = edit.apply(case)
    assert (case.labels[lesions[0].bbox] == 1).sum() == 0
    assert len(find_lesions(case.labels, [1])) == 2
    from napari_lesionmix.core.lesions import lesion_mask
    own = np.zeros(case.labels.shape, bool)
    own[lesions[0].bbox] = lesion_mask(before.labels, lesions[0])[0]
    bg = before.channels[0][case.foreground() & (before.labels == 0)]
    filled = case.channels[0][own]
    assert abs(filled.mean() - bg.mean()) < 3 * bg.std() / np.sqrt(8)  # dark lesion gone
    assert filled.std() > 0.3 * 2.0  # texture: not flat (noise std of the fixture is 2)
    undo.apply(case)
    assert np.array_equal(case.channels, before.channels) and np.array_equal(case.labels, before.labels)


def test_inpaint_leaves_voxels_outside_the_allowed_region_alone():
    """A lesion at the edge of the allowed region: its dilated ring is filled only where
    lesions may be; the background next to it keeps its values."""
    case = blob_case(n_lesions=0)
    fg = case.foreground()
    edge = fg & ~ndi.binary_erosion(fg)  # the outermost tissue voxels
    z, y, x = np.argwhere(edge)[len(np.argwhere(edge)) // 2]
    case.labels[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] = 1
    case.labels[~fg] = 0
    case.channels[0][case.labels == 1] = 50.0
    ctx = CaseContext(case, Recipe())
    lesion = find_lesions(case.labels, [1])[0]
    before = case.copy()
    inpaint_edit(case, lesion, ctx, noise_seed=2).apply(case)
    assert np.array_equal(case.channels[0][~fg], before.channels[0][~fg])
    assert (case.labels == 1).sum() == 0
    assert not np.array_equal(case.channels[0][fg], before.channels[0][fg])


def test_case_without_lesions_inpaints_nothing_and_populates_from_the_bank():
    empty = blob_case(n_lesions=0, name="empty")
    donor = blob_case(n_lesions=3, name="donor")
    bank = LesionBank.from_cases([donor], [1])
    out = synthesize(empty, bank, None, Recipe(), seed=0, target_load=0.0)
    assert out.provenance.operations == [] and np.array_equal(out.case.labels, empty.labels)
    out = synthesize(empty, bank, None, Recipe(), seed=0, target_load=80.0)
    assert out.provenance.achieved_load_mm3 > 0


def test_empty_bank_and_zero_map_are_clear_errors():
    case = blob_case(n_lesions=0)
    with pytest.raises(BankError, match="empty"):
        synthesize(case, LesionBank(), None, Recipe(), seed=0, target_load=50.0)
    bank = LesionBank.from_cases([blob_case(n_lesions=2)], [1])
    prob = np.zeros(case.labels.shape, np.float32)
    prob[0, 0, 0] = 1  # only outside the body
    with pytest.raises(LikelihoodError, match="zero everywhere"):
        synthesize(case, bank, LikelihoodMap(prob, case.geometry), Recipe(), seed=0, target_load=50.0)


def test_cap_and_no_fit_are_recorded():
    case = blob_case(n_lesions=1)
    bank = LesionBank.from_cases([case], [1])
    r = Recipe(max_operations=3, populate={"min_inside": 1.0, "max_tries": 2})
    out = synthesize(case, bank, None, r, seed=0, target_load=1e6)
    assert out.provenance.status in ("cap", "stuck")
    assert len(out.provenance.operations) == 3


def test_replay_from_files(tmp_path):
    from napari_lesionmix.core.image_io import write_image
    cases = []
    for s in range(2):
        c = blob_case(seed=s, n_lesions=2 + s, name=f"c{s}")
        ip, lp = tmp_path / f"c{s}_0000.nii.gz", tmp_path / f"c{s}.nii.gz"
        write_image(c.channels[0], c.geometry, ip)
        write_image(c.labels, c.geometry, lp)
        cases.append(Case.read([ip], lp, name=f"c{s}"))
    bank = LesionBank.from_cases(cases, [1])
    out = synthesize(cases[0], bank, None, Recipe(), seed=9, target_load=3 * _load(cases[0]))
    prov_path = tmp_path / "c0_lmix0000.json"
    out.provenance.to_json(prov_path)
    back = replay_from_files(prov_path)
    assert np.array_equal(back.channels, out.case.channels)
    assert np.array_equal(back.labels, out.case.labels)


def test_2d_case_synthesis():
    case = blob_case(shape=(64, 64), n_lesions=3)
    bank = LesionBank.from_cases([case], [1])
    out = synthesize(case, bank, None, Recipe(), seed=1, target_load=2 * _load(case))
    assert out.case.labels.ndim == 2 and out.provenance.achieved_load_mm3 > _load(case)


def test_lesion_keeps_its_size_in_mm_on_a_finer_grid():
    coarse = blob_case(shape=(16, 20, 20), n_lesions=2, spacing=(2.0, 2.0, 2.0), name="coarse")
    fine = blob_case(shape=(32, 40, 40), n_lesions=0, name="fine")  # 1 mm
    bank = LesionBank.from_cases([coarse], [1])
    ctx = CaseContext(fine, Recipe(populate={"blend": "hard"}))
    centre = tuple(int(c) for c in np.array(fine.labels.shape) // 2)
    edit, _ = populate_edit(fine, bank[0], LesionParams.identity(3), centre, ctx, check=False)
    mm3 = (edit.labels == 1).sum() * 1.0
    assert 0.7 < mm3 / bank[0].lesion.volume_mm3 < 1.4


@pytest.mark.parametrize("ext", [".mha", ".nrrd", ".nii.gz"])
def test_geometry_survives_read_synthesize_write(tmp_path, ext):
    from napari_lesionmix.core.image_io import write_image
    c, s = np.cos(0.3), np.sin(0.3)
    oblique_lps = (-c, -s, 0.0, s, -c, 0.0, 0.0, 0.0, 1.0)  # rotated, x and y flipped
    geo = Geometry((0.7, 0.9, 2.5), (-91.25, 120.5, -33.75), oblique_lps)
    src = blob_case(n_lesions=3)
    ip, lp = tmp_path / f"c_0000{ext}", tmp_path / f"c{ext}"
    write_image(src.channels[0], geo, ip)
    write_image(src.labels, geo, lp)
    case = Case.read([ip], lp, name="c")
    bank = LesionBank.from_cases([case], [1])
    out = synthesize(case, bank, None, Recipe(), seed=0, target_load=2 * _load(case))
    assert out.provenance.accepted
    op, ol = tmp_path / f"o_0000{ext}", tmp_path / f"o{ext}"
    out.case.write([op], ol)
    back = Case.read([op], ol, name="o")
    assert np.array_equal(back.labels, out.case.labels)
    assert np.allclose(back.channels, out.case.channels)
    if ext == ".mha":  # MetaImage stores float64 geometry: exact
        assert back.geometry == geo
    else:  # NIfTI stores float32; NRRD direction×spacing: the format's own precision
        assert back.geometry.matches(geo, rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------- review regressions
def test_lesion_clipped_at_the_border_is_counted_as_written():
    rng = np.random.default_rng(0)
    shape = (20, 40, 40)
    img = (100 + rng.normal(0, 5, shape)).astype(np.float32)  # foreground reaches the border
    lab = np.zeros(shape, np.uint8)
    lab[8:13, 15:20, 15:20] = 1
    src = Case.from_arrays(img[None], lab, name="src")
    recipe = Recipe(lesion_classes=[1], populate={"min_inside": 0.5})
    bank = LesionBank.from_recipe([src], recipe)
    for seed in range(10):
        out = synthesize(src, bank, None, recipe, seed=seed, target_load=1500.0)
        assert out.provenance.achieved_voxels == int((out.case.labels == 1).sum())
        for op in out.provenance.accepted:
            assert op.voxels <= bank[bank.index_of(op.entry)].lesion.voxels * 1.8 ** 3 + 50


def test_lesion_free_target_still_keeps_the_gap_without_declared_classes():
    healthy = blob_case(n_lesions=0, name="healthy")
    donor = blob_case(n_lesions=3, name="donor")
    bank = LesionBank.from_cases([donor], None)  # classes from the data: [1]
    out = synthesize(healthy, bank, None, Recipe(), seed=0, target_load=400.0)
    p = out.provenance
    assert p.lesion_classes == [1]
    assert p.achieved_voxels == int((out.case.labels == 1).sum())
    from scipy import ndimage as ndi
    _, n = ndi.label(out.case.labels == 1, np.ones((3, 3, 3)))
    assert n == len(p.accepted)  # min_gap kept: no two new lesions merged
    back = replay(p.to_dict(), healthy, bank)
    assert np.array_equal(back.labels, out.case.labels)


def test_size_estimate_uses_millimetres_across_spacings():
    fine = blob_case(shape=(40, 56, 56), n_lesions=2, spacing=(0.5, 0.5, 0.5), name="fine",
                     lesion_radius=(3.0, 5.0))
    coarse = blob_case(n_lesions=0, name="coarse")  # 1 mm
    bank = LesionBank.from_cases([fine], [1])
    target = 1.5 * max(e.lesion.volume_mm3 for e in bank.entries)
    out = synthesize(coarse, bank, None, Recipe(tolerance=0.3), seed=1, target_load=target)
    reasons = [o.reason for o in out.provenance.operations]
    assert out.provenance.accepted, reasons


def test_class_wider_than_the_target_label_type_widens_it():
    donor = blob_case(n_lesions=2, name="donor")
    donor.labels = np.where(donor.labels == 1, 300, 0).astype(np.uint16)
    target = blob_case(n_lesions=0, name="target")
    assert target.labels.dtype == np.uint8
    bank = LesionBank.from_cases([donor], [300])
    out = synthesize(target, bank, None, Recipe(lesion_classes=[300]), seed=0, target_load=200.0)
    assert out.case.labels.dtype == np.uint16 and (out.case.labels == 300).any()
    assert target.labels.dtype == np.uint8  # the source is untouched


def test_no_allowed_voxel_names_the_reason():
    case = blob_case(n_lesions=0)
    bank = LesionBank.from_cases([blob_case(organ=True, n_lesions=2)], [2])
    with pytest.raises(LikelihoodError, match="organ label 1 is absent"):
        synthesize(case, bank, None, Recipe(lesion_classes=[2], organ_label=1), seed=0,
                   target_load=100.0)


def test_map_on_another_grid_is_read_through_physical_space():
    case = blob_case(n_lesions=2, shape=(24, 40, 40))
    # the map lives on a 2 mm grid shifted by 4 mm; it covers one block of the case
    geo = Geometry((2.0, 2.0, 2.0), (4.0, 4.0, 4.0), tuple(np.eye(3).ravel()))
    prob = np.zeros((12, 20, 20), np.float32)
    prob[3:6, 5:9, 9:13] = 1.0  # physical z 10-14, y 14-20, x 22-28 mm
    bank = LesionBank.from_cases([case], [1])
    out = synthesize(case, bank, LikelihoodMap(prob, geo), Recipe(populate={"min_inside": 0.5}),
                     seed=0, target_load=3 * _load(case))
    centres = np.array([op.center for op in out.provenance.accepted])
    assert len(centres)
    assert (centres[:, 0] >= 9).all() and (centres[:, 0] <= 15).all()
    assert (centres[:, 2] >= 21).all() and (centres[:, 2] <= 29).all()


def test_inpaint_removes_the_closest_lesion_last_when_none_fits_the_band():
    lab = np.zeros((20, 40, 40), np.uint8)
    lab[5:10, 5:10, 5:8] = 1  # 75 voxels
    lab[12:17, 20:25, 20:23] = 1  # 75 voxels
    img = np.where(lab > 0, 50.0, 100.0).astype(np.float32)
    case = Case.from_arrays(img[None], lab, name="two")
    # no bank to refill from. Target 100 +- 5: removing either lesion passes below the
    # band, but 75 is closer to 100 than 150 is, so one goes, last
    out = synthesize(case, LesionBank(), None, Recipe(), seed=0, target_load=100.0)
    assert out.provenance.status == "closest" and len(out.provenance.operations) == 1
    assert out.provenance.achieved_load_mm3 == 75.0
    # target 125 +- 6.25: 75 is no closer to 125 than 150 is: nothing is removed
    out = synthesize(case, LesionBank(), None, Recipe(), seed=0, target_load=125.0)
    assert out.provenance.status == "stuck" and out.provenance.operations == []


def test_closest_never_empties_a_case_whose_target_is_above_zero():
    lab = np.zeros((20, 40, 40), np.uint8)
    lab[5:10, 5:10, 5:10] = 1  # 125 voxels
    img = np.where(lab > 0, 50.0, 100.0).astype(np.float32)
    case = Case.from_arrays(img[None], lab, name="one")
    out = synthesize(case, LesionBank(), None, Recipe(), seed=0, target_load=40.0)
    assert out.provenance.status == "stuck" and out.provenance.achieved_voxels == 125
    out = synthesize(case, LesionBank(), None, Recipe(), seed=0, target_load=0.0)
    assert out.provenance.status == "reached" and out.provenance.achieved_voxels == 0


def test_loads_are_reached_by_removing_then_adding_back():
    """A few large lesions and a target between the loads they allow: the loop removes one
    (going below the band) and populates smaller ones back up into it."""
    case = blob_case(shape=(32, 48, 48), n_lesions=2, seed=4, lesion_radius=(3.5, 4.5))
    donor = blob_case(shape=(32, 48, 48), n_lesions=4, seed=9, lesion_radius=(1.5, 2.5),
                      name="donor")
    bank = LesionBank.from_cases([donor], [1])
    sizes = sorted(les.volume_mm3 for les in find_lesions(case.labels, [1]))
    target = sum(sizes) - 0.5 * sizes[0]  # halfway into the smaller lesion
    for seed in range(4):
        out = synthesize(case, bank, None, Recipe(), seed=seed, target_load=target)
        prov = out.provenance
        assert prov.status == "reached" and prov.direction == "inpaint+populate"
        kinds = [op.kind for op in prov.accepted]
        assert kinds[0] == "inpaint" and set(kinds[1:]) == {"populate"}
        back = replay(prov.to_dict(), case, bank)
        assert np.array_equal(back.channels, out.case.channels)
        assert np.array_equal(back.labels, out.case.labels)


def test_one_location_search_for_the_engine_and_the_gui():
    """find_location (what the GUI's "Sample from heatmap" calls) chooses what populate_step
    chooses from the same draws, never a voxel of an existing lesion, and every centre it
    returns passes the engine's own check."""
    import numpy as np

    from napari_lesionmix.core.edits import check_location, find_location, prepare_lesion
    from napari_lesionmix.core.mix import location_sampler, populate_step
    from napari_lesionmix.core.transforms import sample_params

    case = blob_case(n_lesions=3, shape=(24, 40, 40))
    bank = LesionBank.from_cases([case], [1])
    recipe = Recipe(populate={"min_gap": 1})
    # a map that is high on the existing lesions: a search over the whole map would land there
    lmap = LikelihoodMap((case.labels == 1).astype(np.float32) + 0.01, case.geometry)
    ctx = CaseContext(case, recipe)
    sampler = location_sampler(case, lmap, ctx)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        entry = bank[bank.pick(rng, recipe.populate.pick)]
        params = sample_params(rng, recipe.populate, case.ndim)
        prep = prepare_lesion(entry, params, ctx)
        center, reason, tries = find_location(case, prep, sampler, ctx, np.random.default_rng(
            [seed, 1]), recipe.populate.max_tries)
        if center is None:
            assert reason and tries == recipe.populate.max_tries
            continue
        assert reason == "" and 1 <= tries <= recipe.populate.max_tries
        assert case.labels[tuple(int(c) for c in center)] != 1
        assert check_location(case, prep, center, ctx) == ""
        # populate_step, from the same draws, takes the same location
        work = case.copy()
        rng2 = np.random.default_rng(seed)
        op = populate_step(work, bank, sampler, CaseContext(work, recipe), rng2)
        rng3 = np.random.default_rng(seed)
        entry3 = bank[bank.pick(rng3, recipe.populate.pick)]
        prep3 = prepare_lesion(entry3, sample_params(rng3, recipe.populate, case.ndim), ctx)
        c3, _, t3 = find_location(case, prep3, sampler, ctx, rng3, recipe.populate.max_tries)
        if op.accepted:
            assert tuple(op.center) == tuple(c3) and op.tries == t3
        else:
            assert c3 is None
