"""Tests of napari_lesionmix.core.inpaint: region, fill, seam, texture, ring label."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_lesionmix.core.inpaint import inpaint_patch, region_for, ring_label
from napari_lesionmix.core.recipe import InpaintOptions

METHODS = ("slices", "slice-axis", "3d")


def opts(method="slices", **kw) -> InpaintOptions:
    o = InpaintOptions(method=method, **kw)
    o.validate()
    return o


def ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float64)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius ** 2


def ramp(shape, weights=(1.0, 2.0, 3.0)) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float32)
    return sum(w * g for w, g in zip(weights[-len(shape):], grid, strict=True)).astype(np.float32)


def ring_of(region: np.ndarray, width: int = 2) -> np.ndarray:
    full = ndi.generate_binary_structure(region.ndim, region.ndim)
    return ndi.binary_dilation(region, full, iterations=width) & ~region


# ---------------------------------------------------------------------------- gradient fill
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,radius", [((32, 32, 32), 6), ((40, 40), 7)])
def test_hole_in_gradient_is_filled_with_the_gradient(method, shape, radius):
    truth = ramp(shape)
    region = ball(shape, [s / 2 for s in shape], radius)
    img = truth.copy()
    img[region] = -50.0                       # a "lesion" far outside the ramp's values
    out = inpaint_patch(img[None], region, opts(method, texture=False), np.random.default_rng(0))
    err = np.abs(out[0] - truth)[region].mean()
    assert err < 0.05 * np.ptp(truth), (method, err, np.ptp(truth))


def test_large_hole_in_gradient_3d_method_keeps_first_order_term():
    # a 20^3 hole in a 30^3 patch: the 3D fill carries the gradient term and is near exact on a
    # linear ramp; OpenCV's Telea (slices) is a weighted mean and stays within 5 %.
    shape = (30, 30, 30)
    truth = ramp(shape)
    region = np.zeros(shape, bool)
    region[5:25, 5:25, 5:25] = True
    for method, tol in (("3d", 0.01), ("slices", 0.05)):
        out = inpaint_patch(truth[None], region, opts(method, texture=False),
                            np.random.default_rng(0))
        assert np.abs(out[0] - truth)[region].mean() < tol * np.ptp(truth), method


def test_small_float_values_are_not_corrupted_by_opencv():
    # cv2's Telea adds up to ~1.5 absolute units to float images; z-scored intensities
    # must survive: a constant 0.3 stays 0.3.
    img = np.full((1, 16, 16, 16), 0.3, np.float32)
    region = ball((16, 16, 16), (8, 8, 8), 4)
    img[0][region] = -2.0
    for method in METHODS:
        out = inpaint_patch(img, region, opts(method, texture=False), np.random.default_rng(0))
        np.testing.assert_allclose(out[0][region], 0.3, atol=1e-5, err_msg=method)
    # and a ramp in z-score units keeps its precision
    truth = ramp((16, 16, 16)) / 100.0
    out = inpaint_patch(truth[None], region, opts("slices", texture=False),
                        np.random.default_rng(0))
    assert np.abs(out[0] - truth)[region].max() < 0.05 * np.ptp(truth)


# ---------------------------------------------------------------------------- outside the region
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("texture", [False, True])
def test_voxels_outside_region_are_bit_for_bit_unchanged(method, texture):
    rng = np.random.default_rng(1)
    img = rng.normal(100, 10, (2, 20, 22, 24)).astype(np.float32)
    region = ball((20, 22, 24), (9, 11, 12), 5) | ball((20, 22, 24), (3, 3, 3), 2)
    out = inpaint_patch(img, region, opts(method, texture=texture), np.random.default_rng(2))
    assert out.dtype == np.float32 and out.shape == img.shape
    assert out is not img
    np.testing.assert_array_equal(out[:, ~region], img[:, ~region])
    assert not np.array_equal(out[:, region], img[:, region])


@settings(max_examples=25, deadline=None)
@given(method=st.sampled_from(METHODS), ndim=st.sampled_from([2, 3]),
       seed=st.integers(0, 2**16), fill=st.floats(0.02, 0.6),
       texture=st.booleans(), with_known=st.booleans())
def test_property_outside_unchanged_inside_finite(method, ndim, seed, fill, texture, with_known):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(3, 10, ndim))
    img = rng.normal(0, 1, (1, *shape)).astype(np.float32)
    region = rng.random(shape) < fill
    known = (rng.random(shape) < 0.8) if with_known else None
    out = inpaint_patch(img, region, opts(method, texture=texture), rng, known=known)
    np.testing.assert_array_equal(out[:, ~region], img[:, ~region])
    assert np.isfinite(out).all()
    if not texture:   # no overshoot beyond the known values' range
        src = ~region if known is None else known & ~region
        if src.any() and region.any():
            assert out[0][region].min() >= img[0][src].min() - 1e-4
            assert out[0][region].max() <= img[0][src].max() + 1e-4


def test_empty_region_returns_an_unchanged_copy():
    img = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype(np.float32)
    out = inpaint_patch(img, np.zeros((8, 8, 8), bool), opts(), np.random.default_rng(0))
    assert out is not img
    np.testing.assert_array_equal(out, img)


def test_unknown_voxels_are_never_sources_and_stay_unchanged():
    shape = (24, 24, 24)
    truth = np.full(shape, 100.0, np.float32)
    img = truth.copy()
    img[:, :, :6] = 1e6                        # e.g. padding outside the image
    known = np.ones(shape, bool)
    known[:, :, :6] = False
    region = ball(shape, (12, 12, 10), 5)
    img[region] = 10.0
    for method in METHODS:
        out = inpaint_patch(img[None], region, opts(method, texture=False),
                            np.random.default_rng(0), known=known)
        np.testing.assert_allclose(out[0][region], 100.0, atol=1e-2, err_msg=method)
        np.testing.assert_array_equal(out[0][~region], img[~region])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="image"):
        inpaint_patch(np.zeros((1, 4, 4, 4), np.float32), np.zeros((4, 4, 5), bool), opts(),
                      np.random.default_rng(0))
    with pytest.raises(ValueError, match="known"):
        inpaint_patch(np.zeros((1, 4, 4), np.float32), np.ones((4, 4), bool), opts(),
                      np.random.default_rng(0), known=np.ones((4, 5), bool))


# ---------------------------------------------------------------------------- a lesion vanishes
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("texture", [False, True])
def test_dark_lesion_in_bright_region_disappears(method, ndim, texture):
    rng = np.random.default_rng(3)
    shape = (28,) * ndim
    noise = 2.0
    img = rng.normal(100.0, noise, shape).astype(np.float32)
    lesion = ball(shape, (14,) * ndim, 4)
    img[lesion] = rng.normal(40.0, noise, int(lesion.sum()))
    region = region_for(lesion, 1)
    out = inpaint_patch(img[None], region, opts(method, texture=texture), np.random.default_rng(4))
    surround = img[ring_of(region, 3)].mean()
    assert abs(out[0][region].mean() - surround) < 2 * noise


# ---------------------------------------------------------------------------- texture
@pytest.mark.parametrize("method", METHODS)
def test_texture_matches_the_ring_residual_and_off_is_smooth(method):
    rng = np.random.default_rng(5)
    shape = (30, 30, 30)
    img = rng.normal(100.0, 5.0, shape).astype(np.float32)
    lesion = ball(shape, (15, 15, 15), 6)
    img[lesion] = 50.0
    region = region_for(lesion, 1)
    ring = ring_of(region) & ~region
    resid_std = (img - ndi.gaussian_filter(img, 1.0, mode="nearest"))[ring].std()
    on = inpaint_patch(img[None], region, opts(method, texture=True), np.random.default_rng(6))
    off = inpaint_patch(img[None], region, opts(method, texture=False), np.random.default_rng(6))
    std_on, std_off = on[0][region].std(), off[0][region].std()
    assert 0.7 * resid_std < std_on < 1.3 * resid_std, (std_on, resid_std)
    assert std_off < 0.35 * resid_std, (std_off, resid_std)


def test_deterministic_for_a_seed_and_different_for_another():
    rng = np.random.default_rng(7)
    img = rng.normal(0, 1, (2, 16, 16, 16)).astype(np.float32)
    region = ball((16, 16, 16), (8, 8, 8), 4)
    for method in METHODS:
        a = inpaint_patch(img, region, opts(method), np.random.default_rng(11))
        b = inpaint_patch(img, region, opts(method), np.random.default_rng(11))
        c = inpaint_patch(img, region, opts(method), np.random.default_rng(12))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_texture_draws_a_fixed_amount_from_rng():
    img = np.random.default_rng(0).normal(size=(2, 12, 12, 12)).astype(np.float32)
    region = ball((12, 12, 12), (6, 6, 6), 3)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    inpaint_patch(img, region, opts(texture=True), r1)
    for _ in range(2):  # one field over the region's bounding box per channel
        r2.standard_normal((7, 7, 7))
    assert r1.random() == r2.random()
    r3, r4 = np.random.default_rng(9), np.random.default_rng(9)
    inpaint_patch(img, region, opts(texture=False), r3)
    assert r3.random() == r4.random()         # no draws without texture


# ---------------------------------------------------------------------------- channels
@pytest.mark.parametrize("method", METHODS)
def test_multichannel_fills_each_channel_independently(method):
    shape = (20, 20, 20)
    c0 = ramp(shape)
    c1 = (1000.0 - 3.0 * ramp(shape, (3.0, -1.0, 0.5))).astype(np.float32)
    img = np.stack([c0, c1])
    region = ball(shape, (10, 10, 10), 5)
    img[:, region] = [[-5.0], [7.0]]
    both = inpaint_patch(img, region, opts(method, texture=False), np.random.default_rng(0))
    for c in range(2):
        alone = inpaint_patch(img[c:c + 1], region, opts(method, texture=False),
                              np.random.default_rng(0))
        np.testing.assert_array_equal(both[c], alone[0])
        truth = (c0, c1)[c]
        assert np.abs(both[c] - truth)[region].mean() < 0.05 * np.ptp(truth)


# ---------------------------------------------------------------------------- seams
def test_slices_method_leaves_no_seam_between_slices():
    shape = (32, 32, 32)
    z, y, x = np.indices(shape, dtype=np.float32)
    smooth = (100 + 10 * np.sin(z / 6.0) + 8 * np.cos(y / 7.0) + 6 * np.sin(x / 5.0 + z / 9.0))
    smooth = smooth.astype(np.float32)
    lesion = ball(shape, (16, 16, 16), 7)
    img = smooth.copy()
    img[lesion] = 30.0
    region = region_for(lesion, 1)
    out = inpaint_patch(img[None], region, opts("slices", texture=False),
                        np.random.default_rng(0))[0]
    pair = region[1:] | region[:-1]           # slice-to-slice steps touching the region
    step_fill = np.abs(np.diff(out, axis=0))[pair].mean()
    step_true = np.abs(np.diff(smooth, axis=0))[pair].mean()
    assert step_fill < 1.6 * step_true, (step_fill, step_true)
    # and the fill follows the smooth background
    assert np.abs(out - smooth)[region].mean() < 0.1 * np.ptp(smooth)


def test_seam_smoothing_only_changes_the_region_and_smooths_its_edge():
    rng = np.random.default_rng(8)
    img = rng.normal(100, 5, (1, 24, 24, 24)).astype(np.float32)
    region = ball((24, 24, 24), (12, 12, 12), 6)
    a = inpaint_patch(img, region, opts(seam_sigma=0.0, texture=False), np.random.default_rng(0))
    b = inpaint_patch(img, region, opts(seam_sigma=2.0, texture=False), np.random.default_rng(0))
    np.testing.assert_array_equal(a[:, ~region], b[:, ~region])
    assert b[0][region].std() < a[0][region].std()


def test_2d_slice_methods_are_one_telea_fill():
    img = ramp((30, 30))[None]
    region = ball((30, 30), (15, 15), 6)
    a = inpaint_patch(img, region, opts("slices"), np.random.default_rng(0))
    b = inpaint_patch(img, region, opts("slice-axis", axis=2), np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)


def test_region_covering_whole_slices_falls_back_to_3d_fill():
    truth = ramp((12, 12, 12))
    region = np.zeros((12, 12, 12), bool)
    region[:3] = True                          # every axis-0 slice of the region is all hole
    out = inpaint_patch(truth[None], region, opts("slice-axis", axis=0, texture=False),
                        np.random.default_rng(0))
    assert np.abs(out[0] - truth)[region].mean() < 0.05 * np.ptp(truth)


# ---------------------------------------------------------------------------- ring label
def test_ring_label_picks_the_organ_and_ignores_other_lesions():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:18, 2:18, 2:18] = 1              # organ
    lesion = ball(labels.shape, (10, 10, 10), 3)
    other = ball(labels.shape, (10, 10, 15), 3) & ~ball(labels.shape, (10, 10, 10), 5)
    labels[lesion] = 2
    labels[other] = 3                         # another lesion class, right next to it
    region = region_for(lesion, 1)
    assert ring_label(labels, region, [2, 3]) == 1
    # with the lesions so close that they dominate the ring, they are still never chosen
    assert ring_label(labels, region, [2, 3], width=1) == 1


def test_ring_label_background_tie_and_no_candidate():
    labels = np.zeros((15, 15), np.int32)
    lesion = ball(labels.shape, (7, 7), 2)
    labels[lesion] = 5
    region = region_for(lesion, 1)
    assert ring_label(labels, region, [5]) == 0
    # a tie between 4 and 6 goes to the smaller value
    ring = ring_of(region, 1)
    vals = np.where(np.arange(15)[None, :] < 7, 4, 6) * np.ones((15, 1), int)
    tie = np.where(ring, vals, 5)
    tie[region] = 5
    n4, n6 = int((tie[ring] == 4).sum()), int((tie[ring] == 6).sum())
    if n4 != n6:                               # make it an exact tie
        extra = np.argwhere(ring & (tie == (4 if n4 > n6 else 6)))[: abs(n4 - n6)]
        tie[tuple(extra.T)] = 5
    assert ring_label(tie, region, [5], width=1) == 4
    # nothing but lesions around: 0
    assert ring_label(np.full((15, 15), 5), region, [5]) == 0
    # binary case: every non-zero label is a lesion
    assert ring_label(np.where(lesion, 1, 2), region, None) == 0


# ---------------------------------------------------------------------------- region
def test_region_for_dilates_with_full_connectivity_and_excludes_other_lesions():
    m = np.zeros((7, 7, 7), bool)
    m[3, 3, 3] = True
    assert region_for(m, 1).sum() == 27
    assert region_for(m, 1, connectivity="face").sum() == 7
    assert region_for(m, 2).sum() == 125
    np.testing.assert_array_equal(region_for(m, 0), m)
    other = np.zeros_like(m)
    other[2, :, :] = True
    r = region_for(m, 1, other)
    assert not (r & other).any() and r[m].all() and r.sum() == 18
    # the lesion itself stays even if a sloppy "other" mask overlaps it
    assert region_for(m, 1, m | other)[m].all()


def test_region_for_rejects_bad_input():
    with pytest.raises(ValueError, match="dilate"):
        region_for(np.ones((3, 3), bool), -1)
    with pytest.raises(ValueError, match="other_lesions"):
        region_for(np.ones((3, 3), bool), 1, np.ones((3, 4), bool))
