"""What the canvas shows (Xvfb): the heatmap overlay and the live preview, pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import add_case

from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.augment_dock import AugmentDock
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix._widgets.likelihood_dock import LikelihoodDock
from napari_lesionmix.core.likelihood import LikelihoodMap


def _shot(viewer):
    return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)


def _pixel(viewer, shot, y, x):
    """Canvas pixel (row, col) of world (y, x) in the displayed plane."""
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    cy, cx = camera.center[-2:]
    h, w = shot.shape[:2]
    return int(round((y - cy) * camera.zoom + h / 2)), int(round((x - cx) * camera.zoom + w / 2))


def _window(shot, rc, r=3):
    return shot[rc[0] - r: rc[0] + r + 1, rc[1] - r: rc[1] + r + 1]


@pytest.fixture
def shown(make_napari_viewer, case3d):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, case3d)
    CaseDock(viewer)
    viewer.dims.set_point(0, 12)
    viewer.reset_view()
    return viewer, img, lab, get_state(viewer)


def test_heatmap_overlay_is_drawn(shown):
    viewer, img, lab, st = shown
    dock = LikelihoodDock(viewer)
    prob = np.zeros(st.case.spatial_shape, np.float32)
    prob[:, 0:8, 0:8] = 1.0  # over the black background corner
    prob[:, 20:28, 20:28] = 0.5  # over the bright image
    st.set_likelihood(LikelihoodMap(prob, st.case.geometry))
    dock.opacity.setValue(100)
    overlay = dock.overlay()
    with_overlay = _shot(viewer)
    overlay.visible = False
    without = _shot(viewer)
    hot = _pixel(viewer, with_overlay, 3.5, 3.5)
    warm = _pixel(viewer, with_overlay, 24, 24)
    cold = _pixel(viewer, with_overlay, 36, 36)
    assert _window(without, hot).max() == 0  # black without the overlay
    gain = _window(with_overlay, hot) - _window(without, hot)
    assert np.allclose(gain.mean(axis=(0, 1)), (252, 255, 164), atol=6)  # inferno(1)
    assert (_window(with_overlay, warm) >= _window(without, warm)).all()
    assert (_window(with_overlay, warm) - _window(without, warm)).mean() > 5
    assert np.abs(_window(with_overlay, cold) - _window(without, cold)).max() <= 4  # inferno(0)
    overlay.visible = True
    dock.opacity.setValue(30)
    dimmer = _shot(viewer)
    assert 0 < (_window(dimmer, hot) - _window(without, hot)).mean() < gain.mean()


def test_preview_changes_pixels_only_near_the_lesion(shown):
    viewer, img, lab, st = shown
    dock = AugmentDock(viewer)
    st.select(0)
    loc = (12, 24, 8)
    st.set_location(loc)
    dock.update_preview()
    before = _shot(viewer)
    dock.grid.sliders["scale"].setValue(1.8)
    dock.update_preview()
    after = _shot(viewer)
    diff = np.abs(after - before).sum(axis=-1)
    near = _pixel(viewer, after, loc[1], loc[2])
    zoom = (viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera).zoom
    radius = int(9 * zoom)  # the lesion grows from radius 3 to 5.4 voxels (+ blend)
    rows, cols = np.nonzero(diff > 3)
    assert rows.size > 0
    assert np.all(np.abs(rows - near[0]) <= radius) and np.all(np.abs(cols - near[1]) <= radius)
    for dy in (-4.0, 4.0):  # outside the lesion at scale 1 (radius 3), inside at 1.8
        ring = _pixel(viewer, after, loc[1] + dy, loc[2])
        assert diff[ring] > 20
    far = _pixel(viewer, after, 40, 40)
    assert diff[far[0] - 5: far[0] + 6, far[1] - 5: far[1] + 6].max() == 0
