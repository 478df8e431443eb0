"""Every remaining control a person operates, operated as a person does: each slider
dragged, each check box ticked, each box typed, each button clicked; the effect checked on
the session, the layers and the files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gui_helpers import (
    LEFT,
    add_case,
    choose,
    click,
    drag_slider,
    synthetic_case,
    tick,
    type_into,
    wait_done,
)
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QFileDialog

from napari_lesionmix._layers import layer_kwargs
from napari_lesionmix._widgets.panel import LesionMixPanel
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.core.image_io import write_image

FREE = (12, 24, 8)


@pytest.fixture
def panel(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case())
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix")
    qtbot.waitExposed(panel)
    session = get_link(viewer).session
    session.select(0)
    return viewer, panel, session, img, lab


def _augment(panel, qtbot, session):
    panel.show_step("Augment")
    dock = panel.docks["Augment"]
    qtbot.waitExposed(dock)
    session.set_location(FREE)
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)
    return dock


SLIDERS = {"rotate0": ("rotate", 0, 40.0), "rotate1": ("rotate", 1, -30.0),
           "rotate2": ("rotate", 2, 25.0), "scale": ("scale", None, 1.4),
           "elastic_sigma": ("elastic_sigma", None, 4.0),
           "elastic_magnitude": ("elastic_magnitude", None, 2.0),
           "brightness": ("brightness", None, 1.2), "noise_std": ("noise_std", None, 0.2)}


@pytest.mark.parametrize("name", list(SLIDERS))
def test_each_transform_slider_dragged_changes_the_preview(panel, qtbot, name):
    viewer, panel, session, img, lab = panel
    img0 = img.data.copy()
    dock = _augment(panel, qtbot, session)
    partner = {"elastic_magnitude": ("elastic_sigma", 4.0),  # each acts only with the other
               "elastic_sigma": ("elastic_magnitude", 2.0)}.get(name)
    if partner:
        drag_slider(qtbot, dock.grid.sliders[partner[0]], partner[1])
        qtbot.wait(50)
    before = session.preview.channels.copy()
    field, k, value = SLIDERS[name]
    drag_slider(qtbot, dock.grid.sliders[name], value)
    got = getattr(dock.params, field) if k is None else getattr(dock.params, field)[k]
    slider = dock.grid.sliders[name]
    pixel = (slider.maximum() - slider.minimum()) / max(slider._slider.width() - 20, 1)
    assert got == pytest.approx(value, abs=2 * pixel + 1e-3)  # to the pixel
    qtbot.waitUntil(lambda: session.preview is not None and (
        session.preview.channels.shape != before.shape
        or not np.array_equal(session.preview.channels, before)), timeout=5000)
    np.testing.assert_array_equal(img.data, img0)  # the user's layer: untouched


def test_the_blend_slider_is_the_recipe_s(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = _augment(panel, qtbot, session)
    drag_slider(qtbot, dock.grid.sliders["blend_sigma"], 3.0)
    assert session.recipe.populate.blend_sigma == pytest.approx(3.0, abs=0.2)


def test_flip_boxes_ticked(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = _augment(panel, qtbot, session)
    for i, cb in enumerate(dock.grid.flips):
        tick(qtbot, cb)
        assert dock.params.flip[i] is True
    tick(qtbot, dock.grid.flips[1])
    assert dock.params.flip == (True, False, True)


BATCH = {"rotate_p": ("rotate_p", "0.3"), "rotate_deg[0]": ("rotate_deg", "5"),
         "rotate_deg[1]": ("rotate_deg", "60"), "scale_p": ("scale_p", "0.8"),
         "elastic_p": ("elastic_p", "0.7"), "elastic_sigma[0]": ("elastic_sigma", "2.5"),
         "elastic_sigma[1]": ("elastic_sigma", "6"),
         "elastic_magnitude": ("elastic_magnitude", "3"),
         "brightness_p": ("brightness_p", "0.9"), "brightness[0]": ("brightness", "0.95"),
         "brightness[1]": ("brightness", "1.05"), "noise_p": ("noise_p", "0.5"),
         "noise_std[0]": ("noise_std", "0.01"), "noise_std[1]": ("noise_std", "0.05")}


def test_every_batch_box_typed_into_the_recipe(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = _augment(panel, qtbot, session)
    for key, (field, text) in BATCH.items():
        type_into(qtbot, dock.ranges.boxes[key], text)
        value = getattr(session.recipe.populate, field)
        got = value[int(key[-2])] if key.endswith("]") else value
        assert got == pytest.approx(float(text)), key
    assert session.recipe_origin == "edited"


def test_remove_options_and_add_mode_again(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = _augment(panel, qtbot, session)
    tick(qtbot, dock.remove_mode)
    qtbot.waitUntil(lambda: session.preview_kind == "remove", timeout=5000)
    choose(qtbot, dock.method, "slice-axis")
    assert dock.axis.isEnabled()
    type_into(qtbot, dock.axis, "2")
    assert session.recipe.inpaint.axis == 2
    textured = session.preview.channels.copy()
    tick(qtbot, dock.texture)
    assert session.recipe.inpaint.texture is False
    qtbot.waitUntil(lambda: not np.array_equal(session.preview.channels, textured),
                    timeout=5000)
    tick(qtbot, dock.texture)
    type_into(qtbot, dock.noise_seed, "12345678901")
    assert dock.noise_seed.value() == 12345678901
    qtbot.waitUntil(lambda: not np.array_equal(session.preview.channels, textured),
                    timeout=5000)
    tick(qtbot, dock.add_mode)
    qtbot.waitUntil(lambda: session.preview_kind == "add", timeout=5000)
    assert dock.add_box.isVisibleTo(dock)


def test_the_preview_box_turns_the_preview_off_and_on(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = _augment(panel, qtbot, session)
    tick(qtbot, dock.live)
    qtbot.waitUntil(lambda: not session.has_preview, timeout=5000)
    assert dock.status.text() == "preview off"
    tick(qtbot, dock.live)
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)


def test_keep_my_recipe_in_the_dialog(make_napari_viewer, qtbot, tmp_path):
    from napari_lesionmix._reader import read_layer_data
    from napari_lesionmix.core.recipe import Recipe

    folder = tmp_path / "liver"
    case = synthetic_case(organ=True)
    case.write([folder / "imagesTr" / "liver01_0000.nii.gz"],
               folder / "labelsTr" / "liver01.nii.gz")
    Recipe(lesion_classes=[2], organ_label=1).to_json(folder / "lesionmix_recipe.json")
    viewer = make_napari_viewer(show=True)
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel)
    session = get_link(viewer).session
    session.update_recipe(tolerance=0.2)  # edited by hand before the data came
    for path, kind in ((folder / "imagesTr" / "liver01_0000.nii.gz", "image"),
                       (folder / "labelsTr" / "liver01.nii.gz", "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    dock = panel.docks["Case"]
    qtbot.waitUntil(lambda: dock.question is not None and dock.question.isVisible(),
                    timeout=5000)
    click(qtbot, dock.keep_btn)
    assert session.recipe.tolerance == 0.2 and session.recipe.organ_label is None


def test_a_placement_layer_chosen_bounds_placement(panel, qtbot):
    viewer, panel, session, img, lab = panel
    mask = np.zeros(lab.data.shape, np.uint8)
    mask[:, 20:30, 4:14] = 1
    case = session.case
    viewer.add_labels(mask, **layer_kwargs(case.geometry, "placement"))
    dock = panel.docks["Case"]
    choose(qtbot, dock.pickers.placement.native, "placement")
    click(qtbot, dock.use)
    assert session.case.placement is not None
    assert session.context.allowed.sum() == mask.sum()


def test_the_likelihood_opacity_slider_dragged(panel, qtbot):
    viewer, panel, session, img, lab = panel
    panel.show_step("Likelihood")
    dock = panel.docks["Likelihood"]
    click(qtbot, dock.from_case)
    wait_done(qtbot, dock)
    slider = dock.opacity
    y = slider.height() // 2
    handle_x = int(slider.width() * slider.value() / 100)
    qtbot.mousePress(slider, LEFT, pos=QPoint(handle_x, y))
    for x in np.linspace(handle_x, int(slider.width() * 0.25), 5).astype(int):
        qtbot.mouseMove(slider, QPoint(int(x), y))
    qtbot.mouseRelease(slider, LEFT, pos=QPoint(int(slider.width() * 0.25), y))
    assert slider.value() < 40
    assert dock.overlay().opacity == pytest.approx(slider.value() / 100)


def test_synthesise_controls(panel, qtbot, tmp_path, monkeypatch):
    viewer, panel, session, img, lab = panel
    panel.show_step("Synthesise")
    dock = panel.docks["Synthesise"]
    folder = tmp_path / "labelsTr"
    for i, radius in enumerate((2.0, 3.0)):
        c = synthetic_case(centres=((12, 24, 24),), radius=radius)
        write_image(c.labels, c.geometry, folder / f"c{i}.nii.gz")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    click(qtbot, dock.from_folder)
    wait_done(qtbot, dock)
    assert len(session.recipe.load["reference"]) == 2
    click(qtbot, dock.use_case)
    assert "reference" not in session.recipe.load
    type_into(qtbot, dock.n_cases, "3")
    type_into(qtbot, dock.index, "2")
    assert dock.index.value() == 2
    out = tmp_path / "chosen"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    click(qtbot, dock.browse)
    assert dock.output.text() == str(out)
    tick(qtbot, dock.originals)  # leave the source case out
    assert not dock.originals.isChecked()
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 120000)
    assert not (out / "labelsTr" / "labels.nii.gz").exists()
    assert (out / "labelsTr" / "labels_lmix0002.nii.gz").is_file()
    # the same folder again: refused, unless "replace a previous export" is ticked
    click(qtbot, dock.export_btn)
    assert not dock.workers
    tick(qtbot, dock.overwrite)
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 120000)
    assert Manifest.load(out / "manifest.json").data["state"] == "complete"


def test_cancel_clicked_during_an_export(panel, qtbot, tmp_path):
    viewer, panel, session, img, lab = panel
    panel.show_step("Synthesise")
    dock = panel.docks["Synthesise"]
    out = tmp_path / "out"
    type_into(qtbot, dock.n_cases, "500")
    type_into(qtbot, dock.output, str(out))
    click(qtbot, dock.export_btn)
    qtbot.waitUntil(lambda: (out / "labelsTr").is_dir() and len(
        list((out / "labelsTr").iterdir())) >= 2, timeout=60000)
    assert dock.cancel_btn.isEnabled()
    click(qtbot, dock.cancel_btn)
    wait_done(qtbot, dock, 60000)
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "interrupted" and 0 < len(manifest.written()) < 500
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == len(
        manifest.written()) + 1


def test_the_export_warns_when_channels_differ_from_the_source(make_napari_viewer, qtbot,
                                                               tmp_path, notes):
    from napari_lesionmix._reader import read_layer_data

    src = tmp_path / "ds"
    case = synthetic_case()
    case.write([src / "imagesTr" / "s01_0000.nii.gz"], src / "labelsTr" / "s01.nii.gz")
    (src / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1", "1": "FLAIR"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    viewer = make_napari_viewer(show=True)
    for path, kind in ((src / "imagesTr" / "s01_0000.nii.gz", "image"),
                       (src / "labelsTr" / "s01.nii.gz", "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel)
    panel.show_step("Synthesise")
    dock = panel.docks["Synthesise"]
    type_into(qtbot, dock.n_cases, "1")
    type_into(qtbot, dock.output, str(tmp_path / "out"))
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 60000)
    assert any(level == "warning" and "1 channel(s)" in msg and "has 2" in msg
               for level, msg in notes)
