"""The Case tab, operated with the mouse and the keyboard: layers, classes, the table,
clicks on the canvas, recipes that come with a dataset, and why it is idle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gui_helpers import (
    add_case,
    choose,
    click,
    click_canvas,
    click_item,
    click_row,
    synthetic_case,
    type_into,
)

from napari_lesionmix._layers import ROLE_KEY, layer_kwargs
from napari_lesionmix._reader import RECIPE_KEY
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.core.recipe import Recipe


def _dock(viewer) -> CaseDock:
    dock = CaseDock(viewer)
    viewer.window.add_dock_widget(dock, name="Case")
    return dock


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case(spacing=(0.5, 0.5, 2.0),
                                               origin=(10.0, -5.0, 3.0)))
    dock = _dock(viewer)
    return viewer, dock, get_link(viewer).session, img, lab


def test_the_case_is_built_at_once_without_copying(shown):
    viewer, dock, session, img, lab = shown
    assert session.case is not None and session.case.labels is lab.data
    assert np.shares_memory(session.case.channels, img.data)
    assert dock.table.rowCount() == 3 == len(session.lesions)
    assert dock.table.item(0, 2).text() == str(session.lesions[0].voxels)
    assert not dock.idle.isVisibleTo(dock)


def test_every_image_on_the_label_grid_is_a_channel(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case()
    t1 = viewer.add_image(case.channels[0], **layer_kwargs(case.geometry, "T1"))
    flair = viewer.add_image(case.channels[0] * 2, **layer_kwargs(case.geometry, "FLAIR"))
    viewer.add_image(np.zeros((4, 5, 6), np.float32), name="other grid")
    viewer.add_image(np.zeros((24, 48, 48, 3), np.uint8), name="photo", rgb=True)
    viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, "labels"))
    dock = _dock(viewer)
    session = get_link(viewer).session
    offered = [dock.pickers.images.native.item(i).text()
               for i in range(dock.pickers.images.native.count())]
    assert "photo" not in offered  # an RGB layer is not an image channel
    assert session.case.n_channels == 2 and session.case.channel_names == ["T1", "FLAIR"]
    # a click on FLAIR leaves it out; Use these layers builds the one-channel case
    click_item(qtbot, dock.pickers.images.native, "FLAIR")
    assert dock.pickers.images.value == [t1]
    click(qtbot, dock.use)
    assert session.case.n_channels == 1
    click_item(qtbot, dock.pickers.images.native, "FLAIR")
    click(qtbot, dock.use)
    assert get_link(viewer).layers.image_layers == [t1, flair]


def test_row_click_selects_moves_the_view_and_marks(shown, qtbot):
    viewer, dock, session, img, lab = shown
    click_row(qtbot, dock.table, 2)
    assert session.selected == 2
    lesion = session.lesions[2]
    world = lab.data_to_world(lesion.centroid)
    assert viewer.dims.point[0] == pytest.approx(world[0])
    assert np.allclose(viewer.scene.camera.center[-2:], world[1:])
    [marker] = [lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "selection"]
    assert np.allclose(marker.data_to_world(marker.data[0]), world)
    # the centroid column is in mm: x, y, z of the physical point
    xyz = [float(v) for v in dock.table.item(2, 4).text().split(",")]
    assert np.allclose(xyz, world[::-1], atol=0.05)


def test_a_click_on_a_lesion_selects_its_row(shown, qtbot):
    viewer, dock, session, img, lab = shown
    target = session.lesions[1]
    world = lab.data_to_world(np.round(target.centroid))
    viewer.dims.set_point(0, world[0])
    click_canvas(qtbot, viewer, world)
    assert session.selected == 1
    assert dock.table.selectionModel().selectedRows()[0].row() == 1
    between = lab.data_to_world((target.centroid[0], 24, 24))
    click_canvas(qtbot, viewer, between)  # no lesion there: nothing changes
    assert session.selected == 1


def test_lesion_classes_and_context_label_typed(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case(organ=True)
    add_case(viewer, case)
    dock = _dock(viewer)
    session = get_link(viewer).session
    assert len(session.lesions) == 4  # without classes the organ (1) counts as one
    type_into(qtbot, dock.classes, "2")
    type_into(qtbot, dock.organ, "1")
    assert session.recipe.lesion_classes == [2] and session.recipe.organ_label == 1
    assert dock.table.rowCount() == 3
    assert session.context.allowed.sum() == (case.labels == 1).sum()
    assert "edited by hand" in dock.recipe_line.text()
    type_into(qtbot, dock.classes, "two")
    assert notes and "lesion classes" in notes[-1][1]
    assert session.recipe.lesion_classes == [2] and dock.classes.text() == "2"


def test_the_banner_says_why_there_is_no_case(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case()
    viewer.add_image(case.channels[0], name="only an image")
    dock = _dock(viewer)
    assert dock.idle.isVisibleTo(dock) and "No case yet" in dock.idle.text()
    viewer.add_labels(np.zeros((5, 5, 5), np.uint8), name="small labels")
    assert dock.idle.isVisibleTo(dock)
    assert "no image layer" in dock.idle.text() or "at least one image" in dock.idle.text()
    assert get_link(viewer).session.case is None


def test_geometry_mismatch_is_refused_by_name(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case()
    viewer.add_image(case.channels[0], name="img", scale=(2, 1, 1))
    lab = viewer.add_labels(case.labels, **layer_kwargs(case.geometry, "lab"))
    dock = _dock(viewer)
    assert get_link(viewer).session.case is None
    assert dock.pickers.images.value == []  # not on the label grid: not a default channel
    click_item(qtbot, dock.pickers.images.native, "img")
    click(qtbot, dock.use)
    assert "different geometry" in notes[-1][1] and "'img'" in notes[-1][1]
    assert get_link(viewer).session.case is None and lab.data is case.labels


def test_removing_the_label_layer_forgets_the_case(shown):
    viewer, dock, session, img, lab = shown
    session.select(0)
    viewer.layers.remove(lab)
    assert session.case is None and session.lesions == [] and session.selected is None
    assert dock.table.rowCount() == 0
    assert "'labels' was removed" in dock.idle.text()


def _dataset(tmp_path, name, case, recipe: Recipe | None):
    folder = tmp_path / name
    case.write([folder / "imagesTr" / f"{name}01_0000.nii.gz"],
               folder / "labelsTr" / f"{name}01.nii.gz")
    if recipe is not None:
        recipe.to_json(folder / "lesionmix_recipe.json")
    return folder


def _open(viewer, folder, name):
    from napari_lesionmix._reader import read_layer_data

    layers = []
    for path, kind in ((folder / "imagesTr" / f"{name}01_0000.nii.gz", "image"),
                       (folder / "labelsTr" / f"{name}01.nii.gz", "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        layers.append(getattr(viewer, f"add_{kind}")(data, **kwargs))
    return layers


def test_switching_datasets_brings_the_new_recipe(make_napari_viewer, qtbot, tmp_path):
    brain = _dataset(tmp_path, "brain", synthetic_case(),
                     Recipe(lesion_classes=[1], likelihood={"sigma_mm": 4.0}))
    liver = _dataset(tmp_path, "liver", synthetic_case(organ=True, spacing=(0.8, 0.8, 2.5)),
                     Recipe(lesion_classes=[2], organ_label=1))
    viewer = make_napari_viewer(show=True)
    b_img, b_lab = _open(viewer, brain, "brain")
    assert RECIPE_KEY in b_lab.metadata
    dock = _dock(viewer)
    session = get_link(viewer).session
    assert session.recipe.likelihood.sigma_mm == 4.0
    # the liver case, chosen in the same viewer: its recipe comes with it
    l_img, l_lab = _open(viewer, liver, "liver")
    choose(qtbot, dock.pickers.labels.native, "liver01")
    assert dock.pickers.images.value == [l_img]  # the liver's grid
    click(qtbot, dock.use)
    assert session.recipe.organ_label == 1 and session.recipe.lesion_classes == [2]
    assert {les.label for les in session.lesions} == {2}  # tumours, not a 'liver lesion'
    assert "liver/lesionmix_recipe.json" in dock.recipe_line.text()
    # a recipe edited by hand is not replaced: the user is asked, and answers
    type_into(qtbot, dock.classes, "2")
    type_into(qtbot, dock.organ, "0")
    choose(qtbot, dock.pickers.labels.native, "brain01")
    click(qtbot, dock.use)
    assert dock.question is not None and dock.question.isVisible()
    assert session.recipe.organ_label is None
    click(qtbot, dock.adopt_btn)
    assert session.recipe.likelihood.sigma_mm == 4.0 and session.recipe_origin == "dataset"


def test_pickers_follow_the_viewer(shown):
    viewer, dock, session, img, lab = shown
    labels = dock.pickers.labels
    assert [c.name for c in labels.choices] == ["labels"]
    extra = viewer.add_labels(np.zeros_like(lab.data), name="other")
    assert len(labels.choices) == 2 and labels.value is lab  # the choice is kept
    extra.name = "renamed"
    assert "renamed" in [c.name for c in labels.choices]
    viewer.layers.remove(extra)
    assert len(labels.choices) == 1


def test_json_recipe_from_a_file_is_named(shown, tmp_path):
    viewer, dock, session, img, lab = shown
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(Recipe(tolerance=0.2).to_dict()))
    session.load_recipe(str(path))
    assert "loaded from" in dock.recipe_line.text() and "mine.json" in dock.recipe_line.text()
