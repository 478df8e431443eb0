"""The Case dock: layers, classes, lesion table, selection from the table and the canvas."""

from __future__ import annotations

import numpy as np
from gui_helpers import add_case, synthetic_case
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)

from napari_lesionmix._layers import ROLE_KEY, layer_kwargs
from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.case_dock import CaseDock


def _click(viewer, world, drag_to=None):
    """A left click (press + release) at a world position, through napari's callbacks."""
    mouse_press_callbacks(viewer, read_only_mouse_event(type="mouse_press", position=world))
    if drag_to is not None:
        mouse_move_callbacks(viewer, read_only_mouse_event(
            type="mouse_move", is_dragging=True, position=drag_to))
    mouse_release_callbacks(viewer, read_only_mouse_event(
        type="mouse_release", position=drag_to if drag_to is not None else world))


def test_dock_builds_the_case_without_copying(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    assert st.case is not None and st.case.labels is lab.data
    assert np.shares_memory(st.case.channels, img.data)
    assert dock.table.rowCount() == 3 == len(st.lesions)
    assert dock.table.item(0, 2).text() == str(st.lesions[0].voxels)
    assert float(dock.table.item(0, 3).text()) == round(st.lesions[0].volume_ml, 3)


def test_row_click_selects_moves_and_marks(make_napari_viewer):
    case = synthetic_case(spacing=(0.5, 0.5, 2.0), origin=(10.0, -5.0, 3.0))
    viewer = make_napari_viewer()
    add_case(viewer, case)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    dock.table.selectRow(2)
    assert st.selected == 2
    lesion = st.lesions[2]
    z_world = 3.0 + 2.0 * lesion.centroid[0]  # origin z + spacing z * index
    assert viewer.dims.point[0] == z_world
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    assert np.allclose(camera.center[-2:],
                       (-5.0 + 0.5 * lesion.centroid[1], 10.0 + 0.5 * lesion.centroid[2]))
    marker = [lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "selection"]
    assert len(marker) == 1 and np.allclose(marker[0].data, [lesion.centroid])


def test_canvas_click_selects_the_row(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    _, lab = add_case(viewer, case3d)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    target = 1
    centre = np.round(st.lesions[target].centroid)
    viewer.dims.set_point(0, centre[0])
    _click(viewer, tuple(lab.data_to_world(centre)))
    assert st.selected == target
    assert dock.table.selectionModel().selectedRows()[0].row() == target
    # a click on background or a drag changes nothing
    _click(viewer, (centre[0], 1.0, 1.0))
    assert st.selected == target
    other = np.round(st.lesions[0].centroid)
    _click(viewer, tuple(lab.data_to_world(other)), drag_to=(other[0], 5.0, 40.0))
    assert st.selected == target


def test_lesion_classes_and_context_label(make_napari_viewer, notes):
    case = synthetic_case(organ=True)
    viewer = make_napari_viewer()
    add_case(viewer, case)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    assert len(st.lesions) == 4  # without classes: the organ (1) counts as one lesion
    dock.classes.setText("2")
    dock.apply_classes()
    dock.organ.setValue(1)
    assert st.recipe.lesion_classes == [2] and st.recipe.organ_label == 1
    assert len(st.lesions) == 3 and dock.table.rowCount() == 3
    assert st.context.allowed.sum() == (case.labels == 1).sum()
    dock.classes.setText("two")
    dock.apply_classes()
    assert notes and "lesion classes" in notes[-1][1]
    assert st.recipe.lesion_classes == [2] and dock.classes.text() == "2"


def test_bad_input_notifies_and_changes_nothing(make_napari_viewer, case3d, notes):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    case_before, lesions_before = st.case, list(st.lesions)
    viewer.add_image(np.zeros((10, 10, 10), np.float32), name="small")
    dock.images.set_layers([viewer.layers["small"]])
    assert not dock.use_layers()
    assert notes[-1][0] == "warning" and "shape" in notes[-1][1]
    assert st.case is case_before and st.lesions == lesions_before
    assert st.image_layers == [img]

    viewer2 = make_napari_viewer()  # a viewer with an image and no label layer
    viewer2.add_image(case3d.channels[0], name="only image")
    dock2 = CaseDock(viewer2)
    assert dock2.labels.layer() is None
    assert not dock2.use_layers()
    assert "Labels layer" in notes[-1][1]
    assert get_state(viewer2).case is None and st.case is case_before


def test_removing_the_label_layer_forgets_the_case(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    dock = CaseDock(viewer)
    st = get_state(viewer)
    st.select(0)
    viewer.layers.remove(lab)
    assert st.case is None and st.lesions == [] and st.selected is None
    assert dock.table.rowCount() == 0 and dock.labels.layer() is None


def test_geometry_mismatch_is_refused(make_napari_viewer, case3d, notes):
    viewer = make_napari_viewer()
    viewer.add_image(case3d.channels[0], name="img", scale=(2, 1, 1))
    viewer.add_labels(case3d.labels, **layer_kwargs(case3d.geometry, "lab"))
    dock = CaseDock(viewer)
    assert not dock.use_layers()
    assert "different geometry" in notes[-1][1]
    assert get_state(viewer).case is None


def test_layer_pickers_follow_the_viewer(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    dock = CaseDock(viewer)
    assert [dock.labels.itemText(i) for i in range(dock.labels.count())] == ["labels"]
    extra = viewer.add_labels(np.zeros_like(case3d.labels), name="other")
    assert dock.labels.count() == 2 and dock.labels.layer() is lab  # choice kept
    assert dock.placement.count() == 4  # (none), image, labels, other
    extra.name = "renamed"
    assert "renamed" in [dock.labels.itemText(i) for i in range(dock.labels.count())]
    viewer.layers.remove(extra)
    assert dock.labels.count() == 1
    assert dock.refresh.isEnabled()
