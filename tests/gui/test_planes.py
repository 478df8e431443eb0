"""The three-plane view: axial, coronal and sagittal canvases upright with their letters,
a crosshair that follows the selected lesion and the location, clicks that move it, and
previews seen in every plane."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import LEFT, add_case, click, click_row, synthetic_case, tick
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QApplication

from napari_lesionmix._widgets.panel import LesionMixPanel
from napari_lesionmix._widgets.viewer_link import get_link


@pytest.fixture
def planes(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case(spacing=(0.8, 0.9, 1.5), origin=(5, -7, 11)))
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix")
    click(qtbot, panel.planes_btn)
    dock = panel.planes
    qtbot.waitExposed(dock)
    return viewer, panel, dock, get_link(viewer).session, lab


def test_three_upright_planes_with_their_letters(planes):
    viewer, panel, dock, session, lab = planes
    orders = {name: tuple(m.dims.order) for name, m in dock.models.items()}
    assert orders == {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}
    letters = {name: dock.letters[name].texts() for name in dock.models}
    assert letters["axial"] == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert letters["coronal"] == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert letters["sagittal"] == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    # the same layers, over the same arrays
    for model in dock.models.values():
        copy = model.layers["labels"]
        assert copy.data is lab.data
        np.testing.assert_allclose(copy.data_to_world((1, 2, 3)), lab.data_to_world((1, 2, 3)))


def test_the_crosshair_follows_the_selection_and_the_location(planes, qtbot):
    viewer, panel, dock, session, lab = planes
    case_dock = panel.docks["Case"]
    click_row(qtbot, case_dock.table, 2)
    centre = lab.data_to_world(session.lesions[2].centroid)
    np.testing.assert_allclose(dock.cursor(), centre)
    for name, model in dock.models.items():
        np.testing.assert_allclose(model.dims.point, centre)
        cross = dock.crosshairs[name].data
        np.testing.assert_allclose(cross[:, 0][[1, 2], 0], centre[0])  # through the cursor
    session.set_location((12, 24, 8))
    np.testing.assert_allclose(dock.cursor(), lab.data_to_world((12, 24, 8)))


def test_a_click_in_a_plane_moves_the_cursor_there(planes, qtbot):
    viewer, panel, dock, session, lab = planes
    model, canvas = dock.models["coronal"], dock.canvases["coronal"].canvas.native
    QApplication.processEvents()
    before = dock.cursor().copy()
    pos = QPoint(canvas.width() // 2 + 12, canvas.height() // 2 - 9)
    from gui_helpers import move_mouse

    move_mouse(canvas, pos)
    target = np.asarray(model.cursor.position, float)
    qtbot.mousePress(canvas, LEFT, pos=pos)
    qtbot.mouseRelease(canvas, LEFT, pos=pos)
    QApplication.processEvents()
    after = dock.cursor()
    assert not np.allclose(after, before)
    # z and x from the click (napari snaps the slice point to its voxel steps)
    np.testing.assert_allclose(after[[0, 2]], target[[0, 2]], atol=0.8)
    assert after[1] == pytest.approx(before[1])  # y: the coronal slice stays


def test_a_preview_shows_in_every_plane(planes, qtbot):
    viewer, panel, dock, session, lab = planes
    session.select(0)
    session.set_location((12, 24, 8))
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)
    name = "LesionMix preview: labels (not applied)"
    for model in dock.models.values():
        assert name in model.layers
        assert model.layers[name].data is viewer.layers[name].data


@pytest.fixture
def in_3d(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case())
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix")
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    QApplication.processEvents()
    return viewer, panel, get_link(viewer).session, lab


def _click_centre(qtbot, viewer, world):
    """Centre the 3D camera on a world point and click the middle of the canvas."""
    from gui_helpers import move_mouse

    viewer.scene.camera.center = tuple(world)
    QApplication.processEvents()
    canvas = viewer.window._qt_viewer.canvas.native
    pos = QPoint(canvas.width() // 2, canvas.height() // 2)
    move_mouse(canvas, pos)
    qtbot.mousePress(canvas, LEFT, pos=pos)
    qtbot.mouseRelease(canvas, LEFT, pos=pos)
    QApplication.processEvents()


def test_a_click_in_3d_selects_the_first_lesion_on_the_ray(in_3d, qtbot):
    viewer, panel, session, lab = in_3d
    target = next(k for k, les in enumerate(session.lesions)
                  if np.allclose(les.centroid, (12, 32, 32), atol=0.5))
    _click_centre(qtbot, viewer, lab.data_to_world((12, 32, 32)))
    assert session.selected == target
    assert "the first one along the ray" in viewer.status


def test_a_location_in_3d_is_the_most_likely_voxel_on_the_ray(in_3d, qtbot, notes):
    from napari_lesionmix.core.likelihood import LikelihoodMap

    viewer, panel, session, lab = in_3d
    session.select(0)
    session.set_click_mode("location")
    _click_centre(qtbot, viewer, lab.data_to_world((12, 24, 24)))
    assert session.location is None  # no heatmap: a clear message instead
    assert any("3D a location is picked on the heatmap" in msg for _, msg in notes)
    prob = np.full(session.case.spatial_shape, 0.1, np.float32)
    prob[5, 24, 24] = 1.0  # the likeliest voxel under the cursor
    session.set_likelihood(LikelihoodMap(prob, session.case.geometry))
    _click_centre(qtbot, viewer, lab.data_to_world((12, 24, 24)))
    assert session.location == (5, 24, 24)


def test_in_3d_a_slider_drag_redraws_the_surface_pane_and_the_volume_once_it_settles(
        planes, qtbot, monkeypatch):
    from gui_helpers import drag_slider

    from napari_lesionmix._widgets import preview_layers

    viewer, panel, dock, session, lab = planes
    monkeypatch.setattr(preview_layers, "SETTLE_3D_MS", 1500)
    session.select(0)
    session.set_location((12, 24, 8))
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)
    click(qtbot, viewer.window._qt_viewer.viewerButtons.ndisplayButton)  # to 3D
    assert viewer.dims.ndisplay == 3
    preview = get_link(viewer).preview
    pane = dock.pane3d
    before = tuple(session.preview.slices)
    verts_before = pane.preview.data[0].copy()
    panel.show_step("Augment")
    aug = panel.docks["Augment"]
    drag_slider(qtbot, aug.grid.sliders["scale"], 1.8)
    qtbot.waitUntil(lambda: tuple(session.preview.slices) != before, timeout=5000)
    # the pane shows the new preview at once: a larger surface around the same place
    verts = pane.preview.data[0]
    assert pane.preview.visible and np.ptp(verts, axis=0).sum() > np.ptp(verts_before,
                                                                         axis=0).sum()
    # the volume view's layers still hold the earlier preview ...
    assert preview._written != tuple(session.preview.slices)
    # ... and take the new one once the drag settles
    qtbot.waitUntil(lambda: preview._written == tuple(session.preview.slices), timeout=5000)
    edit = session.preview
    layer = viewer.layers["LesionMix preview: labels (not applied)"]
    np.testing.assert_array_equal(layer.data[preview._local(edit.slices)], edit.labels)
    # back in 2D, every change is drawn at once again
    click(qtbot, viewer.window._qt_viewer.viewerButtons.ndisplayButton)
    drag_slider(qtbot, aug.grid.sliders["scale"], 1.2)
    qtbot.waitUntil(lambda: aug.grid.sliders["scale"].value() < 1.5, timeout=5000)
    qtbot.waitUntil(lambda: session.preview.slices != edit.slices, timeout=5000)
    assert preview._written == tuple(session.preview.slices)


def test_the_3d_pane_shows_the_lesions_and_the_preview_where_they_are(planes, qtbot):
    from napari_lesionmix._widgets.pane3d import MIRROR

    viewer, panel, dock, session, lab = planes
    pane = dock.pane3d
    assert pane.canvas.isVisible()

    def world(layer):
        """The pane layer's vertices in the case's world mm (the pane draws x mirrored)."""
        verts = layer.data[0]
        return np.array([MIRROR[:3, :3] @ layer.data_to_world(v) for v in verts])

    [layer] = pane.lesions.values()  # one lesion class
    shown = world(layer)
    for les in session.lesions:  # every lesion has surface vertices around its centre
        centre = np.asarray(lab.data_to_world(les.centroid), float)
        assert np.linalg.norm(shown - centre, axis=1).min() < 3.0
    # a preview: its surface around the location, in the preview's colour
    session.select(0)
    session.set_location((12, 24, 8))
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)
    assert pane.preview.visible
    centre = world(pane.preview).mean(axis=0)
    np.testing.assert_allclose(centre, lab.data_to_world((12, 24, 8)), atol=2.5)
    # removing a lesion: the preview hides it in the pane
    panel.show_step("Augment")
    tick(qtbot, panel.docks["Augment"].remove_mode)
    qtbot.waitUntil(lambda: pane.hidden == [0], timeout=5000)
    session.clear_preview()
    assert pane.hidden == [] and not pane.preview.visible
