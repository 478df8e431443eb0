"""The lesion likelihood map: building, resampling, smoothing, floor and sampling."""

import numpy as np
import pytest

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.likelihood import LikelihoodError, LikelihoodMap
from tests.conftest import blob_case


def _case(labels, geometry=None, name="x"):
    img = np.where(labels >= 0, 100.0, 0).astype(np.float32)
    return Case.from_arrays(img, labels.astype(np.uint8), geometry or Geometry.identity(labels.ndim),
                            name=name)


def test_brain_style_map_is_the_normalised_sum_of_masks():
    a = np.zeros((6, 6, 6), np.uint8)
    a[2, 2, 2] = 1
    a[3, 3, 3] = 1
    b = np.zeros((6, 6, 6), np.uint8)
    b[2, 2, 2] = 1
    lmap = LikelihoodMap.from_cases([_case(a), _case(b)], lesion_classes=[1])
    assert lmap.prob[2, 2, 2] == 1.0 and lmap.prob[3, 3, 3] == 0.5
    assert lmap.prob.sum() == 1.5


def test_organ_style_map_sums_the_organ_with_its_lesions():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[1:5, 1:5, 1:5] = 1
    lab[2, 2, 2] = 2
    lmap = LikelihoodMap.from_cases([_case(lab)], lesion_classes=[2], organ_label=1)
    assert lmap.prob[2, 2, 2] == 1.0 and lmap.prob[1, 1, 1] == 1.0 and lmap.prob[0, 0, 0] == 0


def test_cases_on_another_grid_are_resampled_through_physical_space():
    ref = np.zeros((10, 10, 10), np.uint8)
    ref[4, 4, 4] = 1
    # same physical point (x=4, y=4, z=4 mm) on a grid with 2 mm spacing and shifted origin
    other = np.zeros((6, 6, 6), np.uint8)
    other[2, 2, 2] = 1
    geo = Geometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    lmap = LikelihoodMap.from_cases([_case(ref), _case(other, geo)], lesion_classes=[1])
    assert lmap.shape == (10, 10, 10)
    assert lmap.prob[4, 4, 4] == 1.0


def test_smoothing_in_mm_respects_anisotropic_spacing():
    lab = np.zeros((21, 21, 21), np.uint8)
    lab[10, 10, 10] = 1
    geo = Geometry.identity(3, spacing=(1.0, 1.0, 3.0))  # z voxels are 3 mm
    lmap = LikelihoodMap.from_cases([_case(lab, geo)], sigma_mm=3.0)
    p = lmap.prob
    # 3 mm away: one voxel along z, three voxels along x: same value
    assert np.isclose(p[11, 10, 10], p[10, 10, 13], rtol=0.05)
    assert p[10, 10, 10] == 1.0


def test_floor_is_a_share_of_the_mass_and_placement_restricts():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[4, 4, 4] = 1
    case = _case(lab)
    lmap = LikelihoodMap.from_cases([case], floor=0.25)
    # 25 % of the mass spread over the 512 foreground voxels, 75 % on the lesion voxel
    mass = lmap.prob / lmap.prob.sum()
    assert mass[4, 4, 4] == pytest.approx(0.75 + 0.25 / 512, rel=1e-5)
    assert mass.min() == pytest.approx(0.25 / 512, rel=1e-5)
    place = np.zeros((8, 8, 8), bool)
    place[:4] = True
    with pytest.raises(LikelihoodError, match="zero everywhere"):
        LikelihoodMap.from_cases([case], placement=place)
    lmap = LikelihoodMap.from_cases([case], floor=0.05, placement=place)
    # no lesion inside the placement: the floor alone makes it uniform there
    assert lmap.prob[4:].max() == 0 and lmap.prob[:4].min() == lmap.prob[:4].max() == 1.0
    place[4, 4, 4] = True
    lmap = LikelihoodMap.from_cases([case], floor=0.05, placement=place)
    mass = lmap.prob / lmap.prob.sum()
    assert lmap.prob[4, 4, 4] == 1.0 and mass[4:].sum() == pytest.approx(0.95 + 0.05 / 257)
    assert mass[:4].sum() == pytest.approx(0.05 * 256 / 257, rel=1e-5)


def test_floor_share_of_the_draws_goes_anywhere_in_the_allowed_region():
    """The promise of the recipe field: floor 0.05 = 5 % of the draws uniform."""
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:4, 2:4, 2:4] = 1
    lmap = LikelihoodMap.from_cases([_case(lab)], sigma_mm=1.0, floor=0.05)
    rng = np.random.default_rng(0)
    draws = np.array([lmap.sample(rng) for _ in range(20000)])
    far = (np.abs(draws - 2.5) > 4).any(axis=1)  # beyond the smoothed lesion's reach
    uniform_far = np.mean((np.abs(np.indices((10,) * 3).reshape(3, -1).T - 2.5) > 4).any(1))
    assert far.mean() == pytest.approx(0.05 * uniform_far, abs=0.005)


def test_a_one_case_map_still_has_somewhere_to_put_a_lesion():
    """One training case: its map is its own lesions, which placement excludes. The
    recipe's default floor leaves the rest of its foreground to draw from."""
    from napari_lesionmix.core.edits import CaseContext
    from napari_lesionmix.core.mix import location_sampler
    from napari_lesionmix.core.recipe import Recipe

    case = blob_case(n_lesions=3)
    recipe = Recipe()
    assert recipe.likelihood.floor > 0
    lmap = LikelihoodMap.from_recipe([case], recipe)
    ctx = CaseContext(case, recipe)
    sampler = location_sampler(case, lmap, ctx)
    rng = np.random.default_rng(1)
    hits = [sampler.sample(rng) for _ in range(50)]
    assert all(case.labels[h] == 0 and ctx.allowed[h] for h in hits)
    with pytest.raises(LikelihoodError, match="zero everywhere"):
        location_sampler(case, LikelihoodMap.from_recipe(
            [case], recipe.replace(likelihood={"floor": 0.0})), ctx)


def test_sampling_follows_the_map():
    prob = np.zeros((5, 5), np.float32)
    prob[1, 1] = 1.0
    prob[3, 4] = 3.0
    lmap = LikelihoodMap(prob, Geometry.identity(2))
    rng = np.random.default_rng(0)
    hits = [lmap.sample(rng) for _ in range(4000)]
    assert set(hits) == {(1, 1), (3, 4)}
    frac = sum(h == (3, 4) for h in hits) / len(hits)
    assert 0.72 < frac < 0.78


def test_sampling_onto_another_grid_maps_physical_points():
    prob = np.zeros((4, 4, 4), np.float32)
    prob[1, 2, 3] = 1
    lmap = LikelihoodMap(prob, Geometry.identity(3, spacing=(2.0, 2.0, 2.0)))
    target = Geometry.identity(3)
    assert lmap.sample(np.random.default_rng(0), target, (8, 8, 8)) == (2, 4, 6)
    assert lmap.sample(np.random.default_rng(0), target, (4, 4, 4)) is None


def test_save_and_load_keep_values_and_geometry(tmp_path):
    case = blob_case(spacing=(0.8, 0.9, 2.0))
    lmap = LikelihoodMap.from_cases([case], sigma_mm=2.0)
    lmap.save(tmp_path / "map.nii.gz")
    back = LikelihoodMap.load(tmp_path / "map.nii.gz")
    assert back.geometry.matches(lmap.geometry)
    assert np.allclose(back.prob, lmap.prob, atol=1e-7)
    with pytest.raises(FileExistsError):
        lmap.save(tmp_path / "map.nii.gz")


def test_all_zero_map_is_an_error():
    with pytest.raises(LikelihoodError, match="zero everywhere"):
        LikelihoodMap(np.zeros((4, 4)), Geometry.identity(2))


def test_from_label_files_matches_from_cases(tmp_path):
    from napari_lesionmix.core.image_io import write_image
    cases = [blob_case(seed=s, name=f"c{s}") for s in range(3)]
    paths = []
    for c in cases:
        p = tmp_path / f"{c.name}.nii.gz"
        write_image(c.labels, c.geometry, p)
        paths.append(p)
    seen = []
    a = LikelihoodMap.from_label_files(paths, sigma_mm=1.0, progress=lambda i, n: seen.append((i, n)))
    b = LikelihoodMap.from_cases(cases, sigma_mm=1.0)
    assert np.allclose(a.prob, b.prob)
    assert seen[-1] == (3, 3)


def test_floor_from_label_files_covers_the_grid(tmp_path):
    from napari_lesionmix.core.image_io import write_image
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[3, 3, 3] = 1
    p = tmp_path / "l.nii.gz"
    write_image(lab, Geometry.identity(3), p)
    lmap = LikelihoodMap.from_label_files([p], floor=0.02)
    assert lmap.prob[3, 3, 3] == 1.0
    mass = lmap.prob / lmap.prob.sum()
    assert mass.min() == pytest.approx(0.02 / 216, rel=1e-5)  # unseen places become possible


def test_from_arrays_without_copy_shares_valid_arrays():
    ch = np.ones((1, 4, 5, 6), np.float32)
    lab = np.zeros((4, 5, 6), np.uint8)
    case = Case.from_arrays(ch, lab, copy=False)
    case.labels[0, 0, 0] = 1
    case.channels[0, 0, 0, 0] = 5
    assert lab[0, 0, 0] == 1 and ch[0, 0, 0, 0] == 5
    other = Case.from_arrays(ch, lab)
    other.labels[1, 1, 1] = 1
    assert lab[1, 1, 1] == 0


def _per_voxel_draws(prob, allowed, occupied, seed, n):
    """What a cumulative table of every voxel draws: the sampler's reference."""
    keep = (prob.ravel() > 0) & allowed.ravel() & ~occupied.ravel()
    flat = np.flatnonzero(keep)
    cdf = np.cumsum(prob.ravel()[flat], dtype=np.float64)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        u = rng.random() * cdf[-1]
        out.append(int(flat[min(int(np.searchsorted(cdf, u, side="right")), flat.size - 1)]))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_case_sampler_draws_the_voxels_a_per_voxel_table_draws(seed):
    # the sampler keeps a running total per block of voxels, not per voxel; the same
    # seed must still give the same voxels, also over several of its build steps, with
    # empty stretches and values over many orders of magnitude (rounding decides)
    r = np.random.default_rng(seed)
    shape = (40, 160, 170) if seed == 0 else tuple(int(s) for s in r.integers(1, 50, 3))
    prob = (r.random(shape, dtype=np.float32) ** 4) * np.float32(10.0) ** r.integers(
        -7, 1, shape).astype(np.float32)
    prob[r.random(shape) < 0.5] = 0
    prob[: shape[0] // 3] = 0
    prob.flat[-1] = 1.0  # the maximum, so the map keeps these values
    allowed = r.random(shape) < 0.9
    occupied = r.random(shape) < 0.1
    allowed.flat[-1], occupied.flat[-1] = True, False
    lmap = LikelihoodMap(prob, Geometry.identity(3))
    sampler = lmap.sampler_for(lmap.geometry, shape, allowed, occupied)
    rng = np.random.default_rng(seed)
    got = [int(np.ravel_multi_index(sampler.sample(rng), shape)) for _ in range(2000)]
    assert got == _per_voxel_draws(prob, allowed, occupied, seed, 2000)
    flat, cdf = sampler.table.table()
    assert sampler.mass == cdf[-1]
