"""Tests for napari_lesionmix.core.geometry: Geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from napari_lesionmix.core.geometry import Geometry
from tests.core.image_helpers import oblique_geometry, rotation


def test_geometry_basic_properties():
    g = Geometry((0.5, 1.0, 3.0), (1.0, 2.0, 3.0), tuple(np.eye(3).ravel()))
    assert g.ndim == 3
    np.testing.assert_array_equal(g.spacing_zyx, [3.0, 1.0, 0.5])
    assert g.voxel_volume == pytest.approx(1.5)
    assert g.is_axis_aligned
    g2 = Geometry.identity(2)
    assert g2.ndim == 2 and g2.spacing == (1.0, 1.0) and g2.direction == (1.0, 0.0, 0.0, 1.0)
    assert "spacing (0.5, 1, 3)" in g.describe()


def test_geometry_rejects_bad_values():
    with pytest.raises(ValueError, match="spacing"):
        Geometry((0.0, 1.0), (0, 0), (1, 0, 0, 1))
    with pytest.raises(ValueError, match="origin"):
        Geometry((1.0, 1.0), (0, 0, 0), (1, 0, 0, 1))
    with pytest.raises(ValueError, match="direction"):
        Geometry((1.0, 1.0), (0, 0), (1, 0, 0))
    with pytest.raises(ValueError, match="singular"):
        Geometry((1.0, 1.0), (0, 0), (1, 0, 1, 0))


@pytest.mark.parametrize(
    "direction, aligned",
    [
        (np.eye(3), True),
        (np.diag([-1.0, -1.0, 1.0]), True),
        (np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0]]), True),
        (np.eye(3) + np.diag([1e-7, -1e-7, 0]), True),
        (rotation(0.01, 0, 0), False),
        (rotation(0.2, -0.15, 0.3), False),
    ],
)
def test_is_axis_aligned(direction, aligned):
    g = Geometry((1, 1, 1), (0, 0, 0), tuple(np.asarray(direction, float).ravel()))
    assert g.is_axis_aligned is aligned


def test_matches_and_difference():
    g = oblique_geometry()
    assert g.matches(g)
    near = Geometry(tuple(np.array(g.spacing) * (1 + 1e-7)), g.origin, g.direction)
    assert g.matches(near)
    far = Geometry((0.7123456789, 0.93, 2.6), g.origin, g.direction)
    assert not g.matches(far)
    assert "spacing" in g.difference(far) and "2.6" in g.difference(far)
    moved = Geometry(g.spacing, (0.0, 0.0, 0.0), g.direction)
    assert "origin" in g.difference(moved)
    turned = Geometry(g.spacing, g.origin, tuple(np.eye(3).ravel()))
    assert "direction" in g.difference(turned)
    assert "dimension" in g.difference(Geometry.identity(2))


def test_to_dict_from_dict_is_exact_through_json():
    g = oblique_geometry()
    back = Geometry.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == g
    with pytest.raises(ValueError, match="origin"):
        Geometry.from_dict({"spacing": [1, 1], "direction": [1, 0, 0, 1]})


@pytest.mark.parametrize("ndim", [2, 3])
def test_index_to_physical_matches_simpleitk(ndim):
    g = oblique_geometry(ndim)
    img = sitk.Image([4] * ndim, sitk.sitkUInt8)
    g.apply_to(img)
    assert Geometry.from_sitk(img) == g
    rng = np.random.default_rng(3)
    idx_zyx = rng.uniform(-5, 20, size=(50, ndim))
    ours = g.index_to_physical(idx_zyx)
    ref = np.array(
        [img.TransformContinuousIndexToPhysicalPoint(tuple(map(float, i[::-1]))) for i in idx_zyx]
    )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    back = g.physical_to_index(ours)
    np.testing.assert_allclose(back, idx_zyx, rtol=0, atol=1e-9)
    ref_idx = np.array(
        [img.TransformPhysicalPointToContinuousIndex(tuple(map(float, p))) for p in ref]
    )
    np.testing.assert_allclose(back, ref_idx[:, ::-1], rtol=0, atol=1e-9)
    # broadcasting over leading axes
    assert g.index_to_physical(idx_zyx.reshape(5, 10, ndim)).shape == (5, 10, ndim)
    with pytest.raises(ValueError):
        g.index_to_physical(np.zeros((3, ndim + 1)))


def test_apply_to_checks_dimension():
    with pytest.raises(ValueError, match="2D"):
        Geometry.identity(3).apply_to(sitk.Image([3, 3], sitk.sitkUInt8))
