"""Tests of the blend weights used to insert a lesion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_lesionmix.core.blend import blend, blend_weights


def ball(shape, centre, radius):
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def test_hard_is_the_mask():
    m = ball((9, 9, 9), (4, 4, 4), 2.5)
    a = blend_weights(m, "hard", 1.0)
    assert a.dtype == np.float32 and a.shape == m.shape
    np.testing.assert_array_equal(a, m.astype(np.float32))


def test_sigma_zero_means_hard():
    m = ball((11, 11), (5, 5), 3)
    np.testing.assert_array_equal(blend_weights(m, "soft", 0.0), m.astype(np.float32))


@pytest.mark.parametrize("ndim", [2, 3])
def test_soft_is_one_inside_and_falls_off_outside(ndim):
    shape = (15,) * ndim
    m = ball(shape, (7,) * ndim, 3)
    a = blend_weights(m, "soft", 1.0)
    assert a.dtype == np.float32 and a.shape == m.shape
    assert np.all(a[m] == 1.0)
    assert np.all((a >= 0) & (a <= 1))
    outside = ~m
    assert a[outside].max() < 1.0 and a[outside].max() > 0.2  # a real fall-off next to it
    # decreasing with the distance to the mask
    dist = ndi.distance_transform_edt(~m)
    near = a[(dist > 0) & (dist <= 1)].mean()
    mid = a[(dist > 1.5) & (dist <= 2.5)].mean()
    far = a[dist > 5].max()
    assert near > mid > far
    assert far < 1e-3
    # the lesion's own edge is feathered: its first outer layer stays mostly lesion
    assert 0.5 < near < 1.0 and mid < 0.5
    # matches the definition: the mask grown by one voxel, Gaussian-smoothed, 1 inside
    grown = ndi.binary_dilation(m, ndi.generate_binary_structure(ndim, ndim))
    ref = ndi.gaussian_filter(grown.astype(np.float32), 1.0, mode="constant")
    ref[m] = 1
    np.testing.assert_allclose(a, ref, atol=1e-6)


def test_larger_sigma_spreads_further():
    m = ball((31, 31), (15, 15), 4)
    a1 = blend_weights(m, "soft", 1.0)
    a3 = blend_weights(m, "soft", 3.0)
    assert a3[~m].sum() > a1[~m].sum()


def test_bad_mode_and_sigma():
    m = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="mode"):
        blend_weights(m, "feather")
    with pytest.raises(ValueError, match="sigma"):
        blend_weights(m, "soft", -1.0)


def test_blend_mixes_channels():
    bg = np.zeros((2, 5, 5), np.float32)
    les = np.ones((2, 5, 5), np.float32) * np.array([1.0, 4.0])[:, None, None]
    m = np.zeros((5, 5), bool)
    m[2, 2] = True
    a = blend_weights(m, "soft", 1.0)
    out = blend(bg, les, a)
    assert out.shape == bg.shape and out.dtype == np.float32
    assert out[0, 2, 2] == 1.0 and out[1, 2, 2] == 4.0
    np.testing.assert_allclose(out[1], 4.0 * a)
    with pytest.raises(ValueError, match="shapes"):
        blend(bg, les[:, :4], a)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([2, 3]), st.floats(0.0, 3.0),
       st.sampled_from(["soft", "hard"]))
def test_property_weights_in_unit_interval(seed, ndim, sigma, mode):
    rng = np.random.default_rng(seed)
    m = rng.random((6,) * ndim) < 0.3
    a = blend_weights(m, mode, sigma)
    assert a.dtype == np.float32 and a.shape == m.shape
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert np.all(a[m] == 1)
    if mode == "hard" or sigma == 0:
        np.testing.assert_array_equal(a, m)
