"""Connected components, lesion measures and the lesion bank."""

import numpy as np
import pytest

from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.lesions import (
    BankError,
    LesionBank,
    find_lesions,
    lesion_load,
    lesion_mask,
)
from tests.conftest import blob_case


def test_diagonal_voxels_join_with_full_connectivity_only():
    lab = np.zeros((6, 6, 6), np.uint8)
    lab[1, 1, 1:4] = 1
    lab[2, 2, 4] = 1  # touches (1,1,3) by a corner
    assert len(find_lesions(lab, [1], min_voxels=1)) == 1
    assert len(find_lesions(lab, [1], min_voxels=1, connectivity="face")) == 2


def test_eight_connectivity_in_2d_and_min_voxels():
    lab = np.zeros((8, 8), np.uint8)
    lab[1, 1] = lab[2, 2] = lab[3, 3] = 1
    lab[6, 6] = 1
    les = find_lesions(lab, [1], min_voxels=3)
    assert [les_.voxels for les_ in les] == [3]


def test_measures_use_spacing_and_classes_are_separate():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:4, 2:5, 2:6] = 1  # 24 voxels
    lab[6:8, 6:8, 6:8] = 2
    les = find_lesions(lab, [1, 2], spacing_zyx=(2.0, 1.0, 0.5))
    assert [(x.label, x.voxels, x.volume_mm3) for x in les] == [(1, 24, 24.0), (2, 8, 8.0)]
    first = les[0]
    assert first.bbox == (slice(2, 4), slice(2, 5), slice(2, 6))
    assert np.allclose(first.centroid, (2.5, 3.0, 3.5))
    assert lab[first.seed] == 1
    assert lesion_load(lab, [1, 2], (2.0, 1.0, 0.5)) == (32.0, 32)
    assert lesion_load(lab, [2]) == (8.0, 8)


def test_lesion_mask_finds_the_component_in_its_box_only():
    lab = np.zeros((12, 12), np.uint8)
    lab[1:4, 1:4] = 1
    lab[1:4, 6:9] = 1
    les = find_lesions(lab, [1])
    mask, box = lesion_mask(lab, les[1], pad=2)
    assert mask.sum() == 9
    full = np.zeros_like(lab, bool)
    full[box] = mask
    assert np.array_equal(np.argwhere(full), np.argwhere(lab[:, 5:] == 1) + [0, 5])


def test_bank_holds_patches_with_margin_and_stats():
    cases = [blob_case(seed=s, n_lesions=2, name=f"c{s}") for s in range(2)]
    bank = LesionBank.from_cases(cases, [1], margin=3)
    assert len(bank) == 4
    e = bank[0]
    assert e.image.shape[0] == 1 and e.image.shape[1:] == e.mask.shape
    assert e.mask.sum() == e.lesion.voxels
    # the margin keeps context on every side (unless the image ends there)
    assert not e.mask[0].any() and not e.mask[-1].any()
    assert e.stats.shape == (1, 2) and e.stats[0, 1] > 0
    # lesion voxels in the patch are the dark ones
    assert e.image[0][e.mask].mean() < e.image[0][~e.mask & (e.image[0] > 0)].mean()
    assert bank.index_of(e.key) == 0
    assert set(bank.loads_by_case()) == {"c0", "c1"}


def test_bank_round_trips_through_a_file(tmp_path):
    bank = LesionBank.from_cases([blob_case(n_lesions=3)], [1])
    bank.save(tmp_path / "bank.npz")
    back = LesionBank.load(tmp_path / "bank.npz")
    assert len(back) == len(bank)
    for a, b in zip(bank.entries, back.entries):
        assert a.key == b.key and np.array_equal(a.image, b.image)
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.stats, b.stats)
    (tmp_path / "junk.npz").write_bytes(b"not a bank")
    with pytest.raises(BankError, match="junk.npz"):
        LesionBank.load(tmp_path / "junk.npz")


def test_pick_modes():
    bank = LesionBank.from_cases([blob_case(n_lesions=4, lesion_radius=(1.2, 4.0))], [1])
    rng = np.random.default_rng(1)
    uniform = np.bincount([bank.pick(rng) for _ in range(4000)], minlength=len(bank))
    assert uniform.min() > 0.7 * uniform.max()
    sized = np.bincount([bank.pick(rng, "size") for _ in range(4000)], minlength=len(bank))
    vols = np.array([e.lesion.voxels for e in bank.entries])
    assert np.argmax(sized) == np.argmax(vols)
    with pytest.raises(BankError, match="empty"):
        LesionBank().pick(rng)


def test_case_without_lesions_adds_nothing():
    case = Case.from_arrays(np.ones((8, 8, 8), np.float32), np.zeros((8, 8, 8), np.uint8),
                            Geometry.identity(3))
    assert len(LesionBank.from_cases([case], [1])) == 0


def test_reference_loads_include_lesion_free_cases(tmp_path):
    empty = blob_case(n_lesions=0, name="empty")
    full = blob_case(n_lesions=3, name="full")
    bank = LesionBank.from_cases([empty, full], [1])
    loads = bank.loads_by_case()
    assert loads == {"empty": 0.0, "full": lesion_load(full.labels, [1])[0]}
    bank.save(tmp_path / "b.npz")
    assert LesionBank.load(tmp_path / "b.npz").loads_by_case() == loads


def test_sizes_and_centroids_equal_scipys_measurements():
    """find_lesions measures each component in its own box; the figures are scipy's
    (sum_labels, center_of_mass) over the whole volume, to the last bit."""
    from scipy import ndimage as ndi

    from napari_lesionmix.core.lesions import structure

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(30):
        shape = tuple(int(x) for x in rng.integers(5, 50, size=int(rng.integers(2, 4))))
        lab = (ndi.gaussian_filter(rng.random(shape), 1.5) > 0.55).astype(np.uint8)
        lab[rng.random(shape) > 0.97] = 2
        conn = "full" if trial % 2 else "face"
        for les in find_lesions(lab, [1, 2], min_voxels=3, connectivity=conn):
            binary = lab == les.label
            comp, _ = ndi.label(binary, structure=structure(lab.ndim, conn))
            assert les.voxels == int(ndi.sum_labels(binary, comp, les.component))
            assert les.centroid == tuple(float(c) for c in
                                         ndi.center_of_mass(binary, comp, les.component))
            checked += 1
    assert checked > 500
