"""The Augment tab, operated as a person does: previews that stay previews, Apply, Undo
(button and Ctrl+Z), Reset, sliders dragged, boxes typed, the location picked on the
canvas or sampled from the heatmap, keyboard shortcuts."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import (
    add_case,
    choose,
    click,
    click_canvas,
    drag_slider,
    press_keys,
    synthetic_case,
    tick,
    type_into,
)
from qtpy.QtCore import Qt

from napari_lesionmix._layers import ROLE_KEY, layer_kwargs
from napari_lesionmix._widgets.panel import LesionMixPanel
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.transforms import sample_params

FREE = (12, 26, 26)  # a foreground voxel away from every lesion, in tissue like lesion 0's ring


def _setup(viewer, qtbot, image_dtype=np.float32):
    img, lab = add_case(viewer, synthetic_case(), image_dtype=image_dtype)
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix")
    panel.show_step("Augment")
    qtbot.waitExposed(panel)
    return panel, panel.docks["Augment"], get_link(viewer).session, img, lab


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    panel, dock, session, img, lab = _setup(viewer, qtbot)
    session.select(0)
    return viewer, panel, dock, session, img, lab


def _preview_layers(viewer):
    return [lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "preview"]


def _wait_preview(qtbot, session):
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)


def test_a_preview_lives_in_its_own_layers(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    img0, lab0 = img.data.copy(), lab.data.copy()
    session.set_location(FREE)
    _wait_preview(qtbot, session)
    assert "would accept" in dock.status.text()
    layers = _preview_layers(viewer)
    names = [lay.name for lay in layers]
    assert names == ["LesionMix preview: image", "LesionMix preview: labels (not applied)"]
    # drawn so it cannot be taken for data: outlines in the preview colour, a frame
    labels_preview = layers[1]
    assert labels_preview.contour == 1  # outlines in the preview's own colour
    banner = get_link(viewer).preview.banner
    assert banner.visible and banner.text == "PREVIEW (not applied)"
    assert viewer.layers.index(layers[0]) == viewer.layers.index(lab) + 1  # over the labels
    # the user's layers are untouched, and the preview sits on the edited box
    np.testing.assert_array_equal(img.data, img0)
    np.testing.assert_array_equal(lab.data, lab0)
    edit = session.preview
    start = np.rint(layers[1].world_to_data(lab.data_to_world([s.start for s in edit.slices])))
    local = tuple(slice(int(a), int(a) + n) for a, n in zip(start, edit.labels.shape))
    np.testing.assert_array_equal(layers[1].data[local], edit.labels)  # on the edited box
    np.testing.assert_array_equal(layers[0].data[local], edit.channels[0])
    # a dragged slider changes the preview, still not the data
    n_small = int((edit.labels == 1).sum())
    drag_slider(qtbot, dock.grid.sliders["scale"], 1.7)
    qtbot.waitUntil(lambda: int((session.preview.labels == 1).sum()) > 2 * n_small,
                    timeout=5000)
    shown = _preview_layers(viewer)[1]
    edit = session.preview
    start = np.rint(shown.world_to_data(lab.data_to_world([s.start for s in edit.slices])))
    local = tuple(slice(int(a), int(a) + n) for a, n in zip(start, edit.labels.shape))
    np.testing.assert_array_equal(shown.data[local], edit.labels)
    assert dock.grid.sliders["scale"].value() == pytest.approx(1.7, abs=0.05)
    np.testing.assert_array_equal(lab.data, lab0)
    click(qtbot, dock.clear_btn)
    assert _preview_layers(viewer) == [] and not session.has_preview
    assert not get_link(viewer).preview.banner.visible


def test_saving_a_layer_during_a_preview_writes_the_data_without_it(shown, qtbot, tmp_path):
    viewer, panel, dock, session, img, lab = shown
    lab0 = lab.data.copy()
    session.set_location(FREE)
    _wait_preview(qtbot, session)
    viewer.layers.selection.active = lab
    path = tmp_path / "saved_labels.nii.gz"
    viewer.layers.save(str(path), selected=True, plugin="napari-lesionmix")
    saved, _, _ = read_image(path)
    np.testing.assert_array_equal(saved, lab0)


def test_apply_then_undo_with_the_button_and_ctrl_z(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    img0, lab0 = img.data.copy(), lab.data.copy()
    session.set_location(FREE)
    _wait_preview(qtbot, session)
    point = tuple(viewer.dims.point)
    click(qtbot, dock.apply_btn)
    assert len(session.lesions) == 4 and not session.has_preview
    assert (lab.data != lab0).any() and (img.data != img0).any()  # now the data change
    assert _preview_layers(viewer) == []
    assert session.location is None  # the next lesion will not land on this one
    assert tuple(viewer.dims.point) == point  # the view stays on the edit
    assert "applied" in dock.status.text() and "1 change" in dock.history.text()
    lab1 = lab.data.copy()
    # remove lesion 2, then undo it with the button and the first change with Ctrl+Z
    tick(qtbot, dock.remove_mode)
    session.select(2)
    _wait_preview(qtbot, session)
    click(qtbot, dock.apply_btn)
    assert len(session.lesions) == 3
    click(qtbot, dock.undo_btn)
    np.testing.assert_array_equal(lab.data, lab1)
    press_keys(qtbot, viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(img.data, img0)
    np.testing.assert_array_equal(lab.data, lab0)
    assert session.undo_stack == [] and not dock.undo_btn.isEnabled()


def test_reset_undoes_everything_bit_for_bit_in_int16(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    panel, dock, session, img, lab = _setup(viewer, qtbot, np.int16)
    assert not np.shares_memory(session.case.channels, img.data)  # int16: a float32 copy
    img0, lab0 = img.data.copy(), lab.data.copy()
    session.select(1)
    session.set_location(FREE)
    drag_slider(qtbot, dock.grid.sliders["brightness"], 1.3)
    _wait_preview(qtbot, session)
    click(qtbot, dock.apply_btn)
    assert (img.data != img0).any() and img.data.dtype == np.int16
    tick(qtbot, dock.remove_mode)
    session.select(0)
    _wait_preview(qtbot, session)
    click(qtbot, dock.apply_btn)
    click(qtbot, dock.reset_btn)
    np.testing.assert_array_equal(img.data, img0)
    np.testing.assert_array_equal(lab.data, lab0)


def test_float64_and_large_int32_channels_come_back_exactly(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case()
    rng = np.random.default_rng(3)
    f64 = case.channels[0].astype(np.float64) + 1e-3 * rng.random(case.spatial_shape)
    i32 = (case.channels[0].astype(np.int64) * 1000003 + 50_000_001).astype(np.int32)
    a = viewer.add_image(f64, **layer_kwargs(case.geometry, "t1_f64"))
    b = viewer.add_image(i32, **layer_kwargs(case.geometry, "t2_i32"))
    lab = viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, "labels"))
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel)
    session, dock = get_link(viewer).session, panel.docks["Augment"]
    assert session.case.n_channels == 2  # both on the label grid: both channels
    a0, b0, l0 = a.data.copy(), b.data.copy(), lab.data.copy()
    session.select(0)
    session.set_location(FREE)
    _wait_preview(qtbot, session)
    click(qtbot, dock.apply_btn)
    assert not np.array_equal(a.data, a0)
    click(qtbot, dock.undo_btn)
    assert np.array_equal(a.data, a0) and np.array_equal(b.data, b0)
    assert np.array_equal(lab.data, l0)


def test_pick_location_with_a_click_on_the_canvas(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    click(qtbot, dock.pick)
    assert dock.pick.isChecked() and session.click_mode == "location"
    world = lab.data_to_world(FREE)
    viewer.dims.set_point(0, world[0])
    viewer.scene.camera.center = tuple(world[1:])  # the user pans there
    click_canvas(qtbot, viewer, world)
    assert session.location == FREE and session.selected == 0
    [mark] = [lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "location"]
    np.testing.assert_allclose(mark.data_to_world(mark.data[0]), world)
    assert "mm (x, y, z)" in dock.location_label.text()
    _wait_preview(qtbot, session)


def test_sample_from_heatmap_goes_there_and_marks_it(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    prob = np.zeros(session.case.spatial_shape, np.float32)
    prob[4:8, 20:28, 22:30] = 1.0  # away from the slice shown now, tissue like lesion 0's
    session.set_likelihood(LikelihoodMap(prob, session.case.geometry))
    click(qtbot, dock.sample)
    loc = session.location
    assert loc is not None and prob[loc] == 1.0
    world = lab.data_to_world(loc)
    assert viewer.dims.point[0] == pytest.approx(world[0])  # the view went there
    assert np.allclose(viewer.scene.camera.center[-2:], world[1:])
    [mark] = [lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "location"]
    np.testing.assert_allclose(mark.data_to_world(mark.data[0]), world)
    _wait_preview(qtbot, session)
    assert "would accept" in dock.status.text()


def test_remove_mode_and_its_methods(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    lesion = session.lesions[0]
    tick(qtbot, dock.remove_mode)
    assert dock.remove_box.isVisibleTo(dock) and not dock.add_box.isVisibleTo(dock)
    results = {}
    for method in ("slices", "slice-axis", "3d"):
        choose(qtbot, dock.method, method)
        qtbot.waitUntil(lambda m=method: session.has_preview
                        and session.recipe.inpaint.method == m, timeout=5000)
        qtbot.wait(20)
        edit = session.preview
        assert not (edit.labels == 1).any() or lesion.label not in np.unique(
            edit.labels[tuple(slice(s.start - e.start, s.stop - e.start)
                              for s, e in zip(lesion.bbox, edit.slices))])
        results[method] = edit.channels.copy()
    assert dock.axis.isEnabled() is False  # only for slice-axis
    assert not np.array_equal(results["slices"], results["3d"])
    type_into(qtbot, dock.dilate, "3")
    assert session.recipe.inpaint.dilate == 3


def test_batch_ranges_typed_and_values_outside_them_flagged(shown, qtbot, notes):
    viewer, panel, dock, session, img, lab = shown
    type_into(qtbot, dock.ranges.boxes["scale[1]"], "1.2")
    assert session.recipe.populate.scale == (0.5, 1.2)
    type_into(qtbot, dock.ranges.boxes["flip_p"], "0.25")
    assert session.recipe.populate.flip_p == 0.25
    assert dock.grid.flags["scale"].text() == ""
    drag_slider(qtbot, dock.grid.sliders["scale"], 1.6)  # beyond the batch's 1.2
    assert dock.grid.flags["scale"].text() and "1.2" in dock.grid.flags["scale"].toolTip()
    type_into(qtbot, dock.ranges.boxes["scale[0]"], "1.5")  # low above high: refused
    assert notes and "populate.scale" in notes[-1][1]
    assert session.recipe.populate.scale == (0.5, 1.2)
    assert dock.ranges.boxes["scale[0]"].value() == 0.5


def test_randomise_identity_and_a_64_bit_seed(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    click(qtbot, dock.randomise)
    seed = dock.seed.value()
    expected = sample_params(np.random.default_rng(seed), session.recipe.populate, 3)
    assert dock.params == expected
    type_into(qtbot, dock.seed, str(2**40 + 5))
    assert dock.seed.value() == 2**40 + 5
    assert dock.params == sample_params(np.random.default_rng(2**40 + 5),
                                        session.recipe.populate, 3)
    click(qtbot, dock.identity)
    assert dock.params.scale == 1.0 and dock.grid.sliders["scale"].value() == 1.0


def test_keys_for_lesions_and_the_preview_are_listed_and_work(shown, qtbot):
    viewer, panel, dock, session, img, lab = shown
    assert "Ctrl+Enter apply" in dock.keys.text() and "Ctrl+Z undo" in dock.keys.text()
    press_keys(qtbot, viewer, Qt.Key.Key_N)
    assert session.selected == 1
    press_keys(qtbot, viewer, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert session.selected == 0
    session.set_location(FREE)
    _wait_preview(qtbot, session)
    press_keys(qtbot, viewer, Qt.Key.Key_H)
    assert not dock.live.isChecked()
    qtbot.waitUntil(lambda: not session.has_preview, timeout=5000)
    press_keys(qtbot, viewer, Qt.Key.Key_H)
    _wait_preview(qtbot, session)
    press_keys(qtbot, viewer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert len(session.undo_stack) == 1


def test_the_banner_says_to_select_a_lesion(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    panel, dock, session, img, lab = _setup(viewer, qtbot)
    assert dock.idle.isVisibleTo(dock) and "No lesion selected" in dock.idle.text()
    session.select(0)
    assert not dock.idle.isVisibleTo(dock)
