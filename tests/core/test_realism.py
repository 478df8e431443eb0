"""Realism of populated and inpainted lesions: containment, shape, intensity, texture,
placement by surroundings, loads reached both ways."""

import numpy as np
from scipy import ndimage as ndi

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.edits import CaseContext, check_location, prepare_lesion
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


# ---------------------------------------------------------------- intensity and texture
def _ball_patch(rng, noise=0.0, radius=5, size=21, lesion=50.0, tissue=100.0, offset=0.0):
    g = np.indices((size,) * 3) - size // 2
    ball = (g ** 2).sum(0) <= radius ** 2
    img = np.where(ball, lesion, tissue) + offset + rng.normal(0, noise, ball.shape)
    return img.astype(np.float32)[None], ball


def test_brightness_scales_the_contrast_to_the_surroundings_not_the_raw_intensity():
    from dataclasses import replace

    from napari_lesionmix.core.transforms import augment
    image, ball = _ball_patch(np.random.default_rng(0), offset=1000.0)  # a big baseline
    params = replace(LesionParams.identity(3), brightness=1.1)
    img, m = augment(image, ball, params, brightness="contrast")
    assert np.allclose(img[0][m], 1045.0) and np.allclose(img[0][~m], 1100.0)
    img, m = augment(image, ball, params, brightness="raw")  # the paper's: raw x 1.1
    assert np.allclose(img[0][m], 1155.0) and np.allclose(img[0][~m], 1210.0)


def test_resampling_keeps_the_lesions_contrast_and_texture_when_restored():
    from dataclasses import replace

    from napari_lesionmix.core.appearance import interior, texture
    from napari_lesionmix.core.transforms import augment
    rng = np.random.default_rng(1)
    image, ball = _ball_patch(rng, noise=4.0, radius=6, size=25)
    params = replace(LesionParams.identity(3), rotate=(30.0, 20.0, 0.0), scale=1.4)
    donor_contrast = image[0][ball].mean() - 100.0
    donor_grain = texture(image, interior(ball))[0]
    for restore, lo, hi in ((False, 0.0, 0.85), (True, 0.9, 1.1)):
        img, m = augment(image, ball, params, restore=restore, level=[100.0])
        assert lo < texture(img, interior(m))[0] / donor_grain < hi
        assert 0.9 < (img[0][m].mean() - 100.0) / donor_contrast < 1.1


def _two_tissue_case(seed=0, n_lesions=4):
    """Bright tissue (100) in the upper half of the foreground, dark (70) in the lower;
    dark lesions (40) only ever in the bright half."""
    rng = np.random.default_rng(seed)
    shape = (24, 48, 48)
    img = np.zeros(shape, np.float32)
    img[2:-2, 2:24, 2:-2] = 100.0
    img[2:-2, 24:-2, 2:-2] = 70.0
    lab = np.zeros(shape, np.uint8)
    placed = 0
    while placed < n_lesions:
        c = rng.integers([6, 7, 7], [18, 18, 41])
        box = tuple(slice(v - 2, v + 2) for v in c)
        if lab[tuple(slice(b.start - 2, b.stop + 2) for b in box)].any():
            continue
        lab[box] = 1
        img[box] = 40.0
        placed += 1
    img += rng.normal(0, 2.0, shape).astype(np.float32) * (img > 0)
    return Case.from_arrays(img[None], lab, name=f"two{seed}")


def test_lesions_land_where_the_surroundings_look_like_their_own():
    case = _two_tissue_case()
    shares = {}
    for tol in (0.7, 0.0):
        recipe = Recipe(lesion_classes=[1], populate={"surround_tol": tol})
        bank = LesionBank.from_recipe([case], recipe)
        new = np.zeros(case.labels.shape, bool)
        for seed in range(4):  # no likelihood map: uniform over the foreground
            out = synthesize(case, bank, None, recipe, seed=seed, target_load=900.0).case
            new |= (out.labels == 1) & (case.labels != 1)
        shares[tol] = new[:, :24].sum() / new.sum()
    assert shares[0.7] > 0.95 and shares[0.0] < 0.8


def test_a_lesion_keeps_its_contrast_to_the_tissue_of_its_new_place():
    donor = _two_tissue_case(seed=3)
    target = _two_tissue_case(seed=4, n_lesions=1)
    part = target.channels[:, :, :24, :24]
    part += 30.0 * (part > 0)  # the target's tissue is brighter in one quarter (a bias)
    z_donor = -60.0 / donor.intensity_stats()[0, 1]  # lesions 40 in tissue 100
    errors = {}
    for mode in ("contrast", "raw"):
        recipe = Recipe(lesion_classes=[1], populate={"brightness_p": 0.0, "noise_p": 0.0,
                                                      "brightness_mode": mode,
                                                      "surround_tol": 0.0})
        bank = LesionBank.from_recipe([donor], recipe)
        out = synthesize(target, bank, None, recipe, seed=0, target_load=300.0).case
        err = []
        for new in _new_components(target, out):
            ring = ndi.binary_dilation(new, FULL, iterations=2) & ~new & (out.labels == 0)
            ring &= out.channels[0] > 0
            contrast = out.channels[0][new].mean() - out.channels[0][ring].mean()
            err.append(abs(contrast / target.intensity_stats()[0, 1] / z_donor - 1))
        errors[mode] = np.mean(err)
    assert errors["contrast"] < 0.1 < errors["raw"]


# ---------------------------------------------------------------- inpainted texture
def test_an_inpainted_site_has_the_grain_of_the_same_tissue_around_it():
    from napari_lesionmix.core.inpaint import inpaint_patch
    from napari_lesionmix.core.recipe import InpaintOptions
    rng = np.random.default_rng(3)
    shape = (30, 40, 40)
    z, y, x = np.indices(shape)
    wm = y < 24  # the site's tissue: flat, fine grain
    img = np.where(wm, 100.0 + rng.normal(0, 2.0, shape),  # next to it: folded and grainy
                   60.0 + 15.0 * np.sin(x / 1.5) * np.cos(z / 2.0) + rng.normal(0, 6.0, shape))
    region = ((z - 15) ** 2 + (y - 19) ** 2 + (x - 20) ** 2) <= 16  # a site in WM near GM
    img[region] = 40.0
    out = inpaint_patch(img.astype(np.float32)[None], region, InpaintOptions(),
                        np.random.default_rng(0))[0]
    hp = out - ndi.gaussian_filter(out, 1.0)
    grain_here = hp[region].std()
    grain_wm = (img - ndi.gaussian_filter(img, 1.0))[wm & ~region & (y < 12)].std()
    assert 0.75 < grain_here / grain_wm < 1.35


# ---------------------------------------------------------------- cases not in one space
def _turned(case: Case, degrees: float = 30.0, shift=(0.0, 6.0, 4.0)) -> Case:
    """The same arrays under a header turned about the middle of the grid: the anatomy
    moves in physical space (an oblique head)."""
    from napari_lesionmix.core.geometry import Geometry
    a = np.radians(degrees)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    g = case.geometry
    centre = g.index_to_physical((np.array(case.labels.shape) - 1) / 2.0)
    origin = centre + rot @ (np.asarray(g.origin) - centre) + np.asarray(shift)
    geo = Geometry(g.spacing, tuple(origin), tuple((rot @ g.direction_matrix).ravel()))
    return Case.from_arrays(case.channels, case.labels, geo, name=case.name + "_turned")


def _head(seed, name):
    case = blob_case(shape=(28, 40, 40), n_lesions=4, seed=seed, name=name,
                     lesion_radius=(1.5, 2.5))
    z = np.indices(case.labels.shape)[0]
    case.channels[0] *= np.where(z < 14, 1.0, 1.3).astype(np.float32)  # not symmetric
    return case


def test_a_case_in_another_space_is_registered_for_the_map_and_read_through_it(tmp_path):
    from napari_lesionmix.core.likelihood import LikelihoodMap
    a, b = _head(1, "a"), _head(2, "b")
    turned = _turned(b)
    lmap = LikelihoodMap.from_cases([a, turned], [1], sigma_mm=2.0, floor=0.0)
    assert lmap.alignment["a"].kind == "physical"
    info = lmap.alignment["b_turned"]
    assert info.kind == "registered" and info.before < 0.9 <= info.dice
    assert any("b_turned" in n and "registered" in n for n in lmap.notices)
    flat = LikelihoodMap.from_cases([a, turned], [1], sigma_mm=2.0, floor=0.0, align="none")
    assert flat.alignment is None and flat.notices == []
    # the turned case reads the map as its unturned self does (same arrays), not as its
    # header says
    straight = LikelihoodMap.from_cases([a, b], [1], sigma_mm=2.0, floor=0.0).for_case(b).prob
    err = {name: np.abs(m.for_case(turned).prob - straight).sum() / straight.sum()
           for name, m in (("aligned", lmap), ("physical", flat))}
    assert err["aligned"] < 0.1 < 0.5 < err["physical"]
    # saved and read back: the same alignment, the same map on the case
    lmap.save(tmp_path / "map.nii.gz")
    back = LikelihoodMap.load(tmp_path / "map.nii.gz")
    assert back.alignment["b_turned"].params == info.params
    np.testing.assert_allclose(back.for_case(turned).prob, lmap.for_case(turned).prob,
                               atol=1e-6)


def test_a_case_that_cannot_be_aligned_uses_its_own_map_and_the_user_is_told():
    from napari_lesionmix.core.likelihood import LikelihoodMap
    a = _head(1, "a")
    odd = blob_case(shape=(28, 40, 40), n_lesions=3, seed=7, name="odd")
    odd.channels[0] = np.where(np.indices(odd.labels.shape)[2] < 6, 100.0, 0.0)  # a slab
    odd.labels[:] = 0
    odd.labels[10:13, 10:13, 2:5] = 1
    lmap = LikelihoodMap.from_cases([a, odd], [1], floor=0.05, align="register")
    assert lmap.alignment["odd"].kind == "own"
    assert any("odd" in n and "own lesion map" in n for n in lmap.notices)
    own = lmap.for_case(odd)
    assert own.prob[odd.labels == 1].max() == 1.0  # its own lesions lead its map
    assert own.prob[odd.foreground()].min() > 0  # and the floor reaches all of it
