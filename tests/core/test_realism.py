"""Realism of populated and inpainted lesions: containment, shape, intensity, texture,
placement by surroundings, loads reached both ways."""

import numpy as np
from scipy import ndimage as ndi

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.edits import CaseContext, check_location, place_edit, prepare_lesion
from napari_lesionmix.core.lesions import LesionBank
from napari_lesionmix.core.mix import replay, synthesize
from napari_lesionmix.core.recipe import Recipe
from napari_lesionmix.core.transforms import LesionParams
from tests.conftest import blob_case

FULL = np.ones((3, 3, 3), bool)


def _new_components(before: Case, after: Case, label: int = 1):
    added = (after.labels == label) & (before.labels != label)
    lab, n = ndi.label(after.labels == label, FULL)
    return [lab == i for i in range(1, n + 1) if (added & (lab == i)).any()]


# ---------------------------------------------------------------- containment
def test_a_lesion_the_volume_border_would_cut_is_refused():
    rng = np.random.default_rng(0)
    shape = (20, 40, 40)
    img = (100 + rng.normal(0, 5, shape)).astype(np.float32)  # foreground up to the border
    lab = np.zeros(shape, np.uint8)
    lab[8:13, 15:20, 15:20] = 1
    case = Case.from_arrays(img[None], lab, name="src")
    recipe = Recipe(lesion_classes=[1])
    bank = LesionBank.from_recipe([case], recipe)
    ctx = CaseContext(case, recipe)
    prep = prepare_lesion(bank[0], LesionParams.identity(3), ctx)
    assert check_location(case, prep, (10, 30, 30), ctx) == ""
    assert check_location(case, prep, (10, 30, 38), ctx) == "cut by the volume border"
    assert check_location(case, prep, (0, 30, 30), ctx) == "cut by the volume border"
    for seed in range(6):  # and the loop never writes a lesion against a face
        out = synthesize(case, bank, None, recipe, seed=seed, target_load=800.0).case
        for comp in _new_components(case, out):
            assert not any(comp.take(0, axis=a).any() or comp.take(-1, axis=a).any()
                           for a in range(3))


def test_nothing_is_written_outside_the_organ_and_other_lesions_keep_their_values():
    case = blob_case(shape=(24, 36, 36), n_lesions=3, organ=True, seed=2, lesion_radius=(2, 3))
    recipe = Recipe(lesion_classes=[2], organ_label=1, populate={"min_inside": 0.5,
                                                                 "min_gap": 0})
    bank = LesionBank.from_recipe([case], recipe)
    organ = case.labels > 0
    old = case.labels == 2
    for seed in range(8):
        out = synthesize(case, bank, None, recipe, seed=seed, target_load=3000.0).case
        assert not ((out.labels == 2) & ~organ).any()       # no tumour over background
        assert np.array_equal(out.channels[:, ~organ], case.channels[:, ~organ])
        assert np.array_equal(out.channels[:, old], case.channels[:, old])


def test_no_fragment_smaller_than_min_voxels_is_created():
    donor = blob_case(n_lesions=4, seed=5, lesion_radius=(1.0, 2.5))
    target = blob_case(n_lesions=1, seed=6, name="t")
    recipe = Recipe(lesion_classes=[1], min_voxels=6,
                    populate={"scale": [0.5, 0.8], "elastic_p": 1.0, "elastic_magnitude": 3.0})
    bank = LesionBank.from_recipe([donor], recipe)
    written = 0
    for seed in range(10):
        out = synthesize(target, bank, None, recipe, seed=seed, target_load=600.0)
        comps = _new_components(target, out.case)
        written += len(comps)
        assert all(c.sum() >= recipe.min_voxels for c in comps)
        assert out.provenance.achieved_voxels == int((out.case.labels == 1).sum())
        back = replay(out.provenance.to_dict(), target, bank)
        assert np.array_equal(back.labels, out.case.labels)
    assert written > 10


# ---------------------------------------------------------------- shape
def _identical_slices(mask):
    pairs = [(mask[k].any() and mask[k + 1].any(), np.array_equal(mask[k], mask[k + 1]))
             for k in range(mask.shape[0] - 1)]
    both = [same for full, same in pairs if full]
    return np.mean(both)


def test_a_thick_slice_lesion_is_rounded_on_thin_slices_not_a_stack_of_slabs():
    from napari_lesionmix.core.transforms import augment
    # a ball of radius 7 mm sampled on 3 mm slices (1 mm in plane), shown on 1 mm slices
    z, y, x = np.mgrid[-4:5, -10:11, -10:11].astype(float)
    ball = (3 * z) ** 2 + y ** 2 + x ** 2 <= 49
    image = np.where(ball, 50.0, 100.0).astype(np.float32)[None]
    ident = LesionParams.identity(3)
    masks = {mode: augment(image, ball, ident, spacing=(3, 1, 1), target_spacing=(1, 1, 1),
                           mask_interpolation=mode)[1] for mode in ("linear", "distance")}
    assert _identical_slices(masks["linear"]) > 0.6       # slabs of three equal slices
    assert _identical_slices(masks["distance"]) < 0.35    # a rounded shape
    truth = 4 / 3 * np.pi * 7 ** 3
    assert 0.7 * truth < masks["distance"].sum() < 1.3 * truth
    # on its own grid, without a transform, both give the mask back
    for mode in ("linear", "distance"):
        back = augment(image, ball, ident, mask_interpolation=mode)[1]
        crop = lambda m: m[ndi.find_objects(m.astype(int))[0]]  # noqa: E731
        assert np.array_equal(crop(back), crop(ball))
