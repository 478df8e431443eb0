"""The lesion likelihood map: building, resampling, smoothing, floor and sampling."""

import numpy as np
import pytest

from napari_lesionmix.core.case import Case, Geometry
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


def test_floor_makes_unseen_foreground_possible_and_placement_restricts():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[4, 4, 4] = 1
    case = _case(lab)
    lmap = LikelihoodMap.from_cases([case], floor=0.01)
    assert lmap.prob.min() == pytest.approx(0.01)
    place = np.zeros((8, 8, 8), bool)
    place[:4] = True
    with pytest.raises(LikelihoodError, match="zero everywhere"):
        LikelihoodMap.from_cases([case], placement=place)
    lmap = LikelihoodMap.from_cases([case], floor=0.05, placement=place)
    # no lesion inside the placement: the floor alone makes it uniform there
    assert lmap.prob[4:].max() == 0 and lmap.prob[:4].min() == lmap.prob[:4].max() == 1.0
    place[4, 4, 4] = True
    lmap = LikelihoodMap.from_cases([case], floor=0.05, placement=place)
    assert lmap.prob[4, 4, 4] == 1.0 and lmap.prob[:4].min() == pytest.approx(0.05)


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
    from napari_lesionmix.core.case import write_image
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
    from napari_lesionmix.core.case import write_image
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[3, 3, 3] = 1
    p = tmp_path / "l.nii.gz"
    write_image(lab, Geometry.identity(3), p)
    lmap = LikelihoodMap.from_label_files([p], floor=0.02)
    assert lmap.prob[3, 3, 3] == 1.0
    assert lmap.prob.min() == pytest.approx(0.02)  # unseen places become possible


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
