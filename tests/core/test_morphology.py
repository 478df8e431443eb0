"""The engine's binary dilation and erosion give scipy's arrays exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from napari_lesionmix.core.morphology import dilate, erode


@st.composite
def masks(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    density = draw(st.floats(0.0, 0.5))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random(shape) < density


@settings(max_examples=300, deadline=None)
@given(masks(), st.sampled_from(["full", "face"]), st.integers(1, 4))
def test_dilate_is_scipys(mask, connectivity, iterations):
    se = ndi.generate_binary_structure(mask.ndim, mask.ndim if connectivity == "full" else 1)
    expected = ndi.binary_dilation(mask, se, iterations=iterations)
    got = dilate(mask, iterations, connectivity)
    assert got.dtype == bool and got.shape == mask.shape
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=300, deadline=None)
@given(masks(), st.sampled_from(["full", "face"]))
def test_erode_is_scipys(mask, connectivity):
    se = ndi.generate_binary_structure(mask.ndim, mask.ndim if connectivity == "full" else 1)
    np.testing.assert_array_equal(erode(mask, connectivity), ndi.binary_erosion(mask, se))


def test_no_iterations_is_a_copy_and_input_is_kept():
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    before = mask.copy()
    same = dilate(mask, 0)
    assert same is not mask
    np.testing.assert_array_equal(same, mask)
    dilate(mask, 2)
    erode(mask)
    np.testing.assert_array_equal(mask, before)


def test_bad_connectivity_is_refused():
    with pytest.raises(ValueError, match="connectivity"):
        dilate(np.ones((3, 3), bool), 1, "corner")
