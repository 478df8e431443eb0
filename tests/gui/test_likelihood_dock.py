"""The Likelihood tab, operated as a person does: build from the case or a folder, save,
load, smoothing and floor typed, the heatmap's threshold and opacity; a heatmap a person
can read: translucent, thresholded, masked to the allowed region, below the labels, with a
colour bar."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import (
    add_case,
    click,
    click_layer_eye,
    grab_widget,
    synthetic_case,
    tick,
    type_into,
    wait_done,
)
from qtpy.QtWidgets import QFileDialog

from napari_lesionmix._layers import ROLE_KEY
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix._widgets.likelihood_dock import LikelihoodDock
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.core.image_io import read_image, write_image
from napari_lesionmix.core.likelihood import LikelihoodMap

SPACING = (0.8, 0.8, 2.0)
ORIGIN = (-20.0, 4.0, 6.0)


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    case = synthetic_case(spacing=SPACING, origin=ORIGIN, organ=True)
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, case)
    case_dock = CaseDock(viewer)
    viewer.window.add_dock_widget(case_dock, name="Case")
    dock = LikelihoodDock(viewer)
    viewer.window.add_dock_widget(dock, name="Likelihood")
    session = get_link(viewer).session
    session.update_recipe(lesion_classes=[2], organ_label=1)
    return viewer, dock, session, case, case_dock, lab


def test_build_from_a_folder_gives_a_readable_heatmap(shown, qtbot, tmp_path, monkeypatch):
    viewer, dock, session, case, case_dock, lab = shown
    folder = tmp_path / "labelsTr"
    folder.mkdir()
    for i, c in enumerate([((12, 10, 10),), ((12, 12, 10),), ((14, 10, 12),)]):
        write_image(synthetic_case(centres=c, organ=True).labels, case.geometry,
                    folder / f"case{i}.nii.gz")
    (folder / "readme.txt").write_text("not an image")
    type_into(qtbot, dock.sigma, "0")
    type_into(qtbot, dock.floor, "0")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    click(qtbot, dock.from_folder)  # the user picks the folder in the dialog
    wait_done(qtbot, dock)
    lmap = session.likelihood
    assert lmap is not None and lmap.prob.shape == case.spatial_shape
    organ = case.labels == 1
    assert lmap.prob[organ].min() > 0 and lmap.prob.max() == 1.0  # organ-style (liver)
    assert dock.info.text().startswith("map (24, 48, 48)")
    layer = dock.overlay()
    assert layer.metadata[ROLE_KEY] == "likelihood" and layer.name == "LesionMix likelihood"
    # translucent, below the labels (their colours stay theirs), with a colour bar
    assert layer.blending == "translucent" and layer.colorbar.visible
    assert viewer.layers.index(layer) == viewer.layers.index(lab) - 1
    # masked to the allowed region (the organ): nothing drawn outside it
    assert (layer.data[case.labels != 1] == 0).all() and layer.data.max() == 1.0
    # thresholded: values below the threshold are transparent
    assert layer.colormap.map(np.array([0.02]))[0, 3] == 0.0
    assert layer.colormap.map(np.array([0.5]))[0, 3] == 1.0
    type_into(qtbot, dock.threshold, "0.6")
    assert dock.overlay().colormap.map(np.array([0.5]))[0, 3] == 0.0
    drag_slider_or_value(qtbot, dock)
    assert abs(dock.overlay().opacity - 0.25) < 0.03
    # the map lies on the case's grid in world mm
    np.testing.assert_allclose(layer.data_to_world((3, 4, 5)), lab.data_to_world((3, 4, 5)))
    assert layer not in case_dock.pickers.images.choices  # helper layers are never offered


def drag_slider_or_value(qtbot, dock):
    """The opacity slider, dragged to a quarter."""
    from gui_helpers import LEFT
    from qtpy.QtCore import QPoint

    slider = dock.opacity
    x = int(slider.width() * 0.25)
    qtbot.mousePress(slider, LEFT, pos=QPoint(slider.width() // 2, slider.height() // 2))
    qtbot.mouseMove(slider, QPoint(x, slider.height() // 2))
    qtbot.mouseRelease(slider, LEFT, pos=QPoint(x, slider.height() // 2))
    if abs(slider.value() - 25) > 3:  # a click on the groove pages: set it the last bit
        slider.setValue(25)


def test_build_from_the_case_save_and_load(shown, qtbot, tmp_path, monkeypatch):
    viewer, dock, session, case, case_dock, lab = shown
    type_into(qtbot, dock.sigma, "1.5")
    assert session.recipe.likelihood.sigma_mm == 1.5
    click(qtbot, dock.from_case)
    wait_done(qtbot, dock)
    lmap = session.likelihood
    assert lmap is not None and lmap.geometry.matches(case.geometry)
    path = tmp_path / "map"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    click(qtbot, dock.save)
    saved, geometry, _ = read_image(tmp_path / "map.nii.gz")
    assert geometry.matches(case.geometry) and np.allclose(saved, lmap.prob, atol=1e-6)
    session.set_likelihood(None)
    assert dock.overlay() is None and dock.info.text() == "no map"
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(tmp_path / "map.nii.gz"), ""))
    click(qtbot, dock.load)
    assert session.likelihood is not None and dock.overlay() is not None


def _colour_bar_shown(viewer) -> bool:
    """Whether the canvas draws a colour bar: its top right corner (where napari puts
    the bar) differs between the canvas as it is and with every colour bar hidden."""
    canvas = viewer.window._qt_viewer.canvas.native
    as_is = grab_widget(canvas)
    bars = [lay.colorbar for lay in viewer.layers
            if getattr(lay, "colorbar", None) is not None and lay.colorbar.visible]
    for bar in bars:
        bar.visible = False
    bare = grab_widget(canvas)
    for bar in bars:
        bar.visible = True
    h, w = as_is.shape[:2]
    corner = (slice(0, h // 2), slice(w - w // 4, w))
    return bool((np.abs(as_is[corner] - bare[corner]).sum(axis=-1) > 60).sum() > 50)


def test_the_colour_bar_shows_only_with_the_heatmap(shown, qtbot):
    viewer, dock, session, case, case_dock, lab = shown
    viewer.window._qt_window.resize(1280, 800)
    click(qtbot, dock.from_case)
    wait_done(qtbot, dock)
    layer = dock.overlay()
    assert dock.show_heat.isChecked() and layer.visible and _colour_bar_shown(viewer)
    # the dock's box hides the heatmap and its colour bar
    tick(qtbot, dock.show_heat)
    assert not layer.visible and not layer.colorbar.visible
    assert not _colour_bar_shown(viewer)
    tick(qtbot, dock.show_heat)
    assert layer.visible and _colour_bar_shown(viewer)
    # the layer's eye in the layer list does the same, and the box follows
    click_layer_eye(qtbot, viewer, layer)
    assert not layer.visible and not dock.show_heat.isChecked()
    assert not _colour_bar_shown(viewer)
    # a map built again stays hidden: the user's choice holds
    click(qtbot, dock.from_case)
    wait_done(qtbot, dock)
    assert not dock.overlay().visible and not _colour_bar_shown(viewer)
    click_layer_eye(qtbot, viewer, dock.overlay())
    assert dock.overlay().visible and dock.show_heat.isChecked() and _colour_bar_shown(viewer)


def test_a_map_on_another_grid_is_drawn_on_the_case(shown, qtbot):
    viewer, dock, session, case, case_dock, lab = shown
    coarse = LikelihoodMap.from_cases([synthetic_case(organ=True, spacing=SPACING,
                                                      origin=ORIGIN)], [2], 1)
    other = coarse.resample_to(
        type(case.geometry)((1.6, 1.6, 4.0), ORIGIN, case.geometry.direction), (12, 24, 24))
    session.set_likelihood(other)
    layer = dock.overlay()
    assert layer.data.shape == case.spatial_shape  # read on the case's grid
    np.testing.assert_allclose(layer.data_to_world((1, 2, 3)), lab.data_to_world((1, 2, 3)))


def test_without_a_case_the_banner_says_a_folder_still_works(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    dock = LikelihoodDock(viewer)
    viewer.window.add_dock_widget(dock)
    assert dock.idle.isVisibleTo(dock) and "folder" in dock.idle.text()
    assert not dock.from_case.isEnabled() and dock.from_folder.isEnabled()
