"""Regressions from earlier reviews: previews that reached the data, recipe fields
overwritten by unrelated controls, workers outliving their viewer, marks across cases,
exceptions in slots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gui_helpers import add_case, click, drag_slider, synthetic_case, type_into, wait_done

from napari_lesionmix._layers import ROLE_KEY, layer_kwargs
from napari_lesionmix._widgets.panel import LesionMixPanel
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.core.recipe import Recipe

LOCATION = (12, 24, 8)  # free space: the preview adds a 4th lesion there


@pytest.fixture
def panel(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case())
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel, name="LesionMix")
    session = get_link(viewer).session
    session.select(0)
    return viewer, panel, session, img, lab


def _preview(qtbot, session):
    session.set_location(LOCATION)
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)


def test_a_heatmap_built_during_a_preview_ignores_it(panel, qtbot):
    viewer, panel, session, img, lab = panel
    dock = panel.docks["Likelihood"]
    session.update_recipe("likelihood", sigma_mm=0.0, floor=0.0)
    _preview(qtbot, session)
    added = np.zeros(lab.data.shape, bool)
    added[session.preview.slices] = (session.preview.labels != 0) & (
        lab.data[session.preview.slices] == 0)
    assert added.any()
    click(qtbot, dock.from_case)
    wait_done(qtbot, dock)
    assert (session.likelihood.prob[added] == 0).all()
    assert session.likelihood.prob[lab.data == 1].min() > 0


def test_an_export_during_a_preview_uses_a_bank_without_it(panel, qtbot, tmp_path):
    viewer, panel, session, img, lab = panel
    dock = panel.docks["Synthesise"]
    _preview(qtbot, session)
    type_into(qtbot, dock.n_cases, "1")
    type_into(qtbot, dock.output, str(tmp_path / "out"))
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 60000)
    assert len(session.bank) == 3
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())[
        "reference_loads"]["labels"]["lesions"] == 3


def test_a_loaded_blend_sigma_survives_other_sliders(panel, qtbot, tmp_path):
    viewer, panel, session, img, lab = panel
    dock = panel.docks["Augment"]
    data = Recipe().to_dict()
    data["populate"]["blend_sigma"] = 12.5
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert panel.docks["Synthesise"].load_recipe(path)
    assert dock.grid.blend_sigma() == 12.5
    panel.show_step("Augment")
    qtbot.waitExposed(dock)
    drag_slider(qtbot, dock.grid.sliders["scale"], 1.5)
    assert session.recipe.populate.blend_sigma == 12.5


def test_editing_one_field_keeps_the_others_exact(panel, qtbot):
    viewer, panel, session, img, lab = panel
    synth, aug, lik = (panel.docks[n] for n in ("Synthesise", "Augment", "Likelihood"))
    session.update_recipe(load_distribution="gaussian", load={"mean": 1234.5678,
                                                              "std": 321.0987})
    panel.show_step("Synthesise")
    type_into(qtbot, synth.form.spins["std"], "0.4")
    assert session.recipe.load["mean"] == 1234.5678 and session.recipe.load["std"] == 400.0
    session.update_recipe("populate", scale=[0.8765, 1.2345])
    panel.show_step("Augment")
    type_into(qtbot, aug.ranges.boxes["scale[0]"], "0.9")
    assert tuple(session.recipe.populate.scale) == (0.9, 1.2345)
    session.update_recipe("likelihood", sigma_mm=2.345)
    panel.show_step("Likelihood")
    type_into(qtbot, lik.floor, "0.05")
    assert session.recipe.likelihood.sigma_mm == 2.345
    assert session.recipe.likelihood.floor == 0.05


def test_closing_the_viewer_stops_the_export(make_napari_viewer, qtbot, tmp_path, capfd):
    viewer = make_napari_viewer(show=True)
    add_case(viewer, synthetic_case())
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel)
    dock = panel.docks["Synthesise"]
    panel.show_step("Synthesise")
    out = tmp_path / "out"
    labels = out / "labelsTr"
    type_into(qtbot, dock.n_cases, "2000")
    type_into(qtbot, dock.output, str(out))
    click(qtbot, dock.export_btn)
    worker = dock.export_worker
    assert worker is not None
    qtbot.waitUntil(lambda: labels.is_dir() and len(list(labels.iterdir())) >= 3,
                    timeout=60000)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30000)
    n_done = len(list(labels.iterdir()))
    qtbot.wait(1500)
    assert len(list(labels.iterdir())) == n_done < 2000  # nothing written any more
    assert Manifest.load(out / "manifest.json").data["state"] == "interrupted"
    err = capfd.readouterr().err
    assert "has been deleted" not in err and "Traceback" not in err


def test_slot_exceptions_become_notifications(panel, notes):
    viewer, panel, session, img, lab = panel
    dock = panel.docks["Case"]

    def broken():
        raise KeyError("boom")

    dock.listen(session.history_changed, broken)
    session.history_changed.emit()  # does not raise
    assert any(level == "error" and "boom" in msg for level, msg in notes)


def test_preview_errors_never_escape_the_timer_slot(panel, notes, monkeypatch, qtbot):
    from napari_lesionmix._widgets import augment_dock

    viewer, panel, session, img, lab = panel
    dock = panel.docks["Augment"]

    def broken(*args, **kwargs):
        raise KeyError("engine bug")

    monkeypatch.setattr(augment_dock, "preview_add", broken)
    session.set_location(LOCATION)
    qtbot.waitUntil(lambda: "engine bug" in dock.status.text(), timeout=5000)
    assert not session.has_preview
    assert any(level == "error" and "engine bug" in msg for level, msg in notes)


def _mark(viewer):
    return next(lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == "selection")


def test_the_mark_follows_the_case_geometry(panel):
    viewer, panel, session, img, lab = panel
    c2 = synthetic_case(spacing=(0.5, 0.5, 3.0), origin=(-40.0, 10.0, 5.0),
                        direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    i2 = viewer.add_image(c2.channels[0], **layer_kwargs(c2.geometry, "img2"))
    l2 = viewer.add_labels(c2.labels.copy(), **layer_kwargs(c2.geometry, "lab2"))
    get_link(viewer).layers.use([i2], l2)
    session.select(1)
    mark = _mark(viewer)
    np.testing.assert_allclose(mark.data_to_world(mark.data[0]),
                               l2.data_to_world(session.selected_lesion.centroid))


def test_a_2d_case_after_a_3d_one(panel, notes):
    viewer, panel, session, img, lab = panel
    c2 = synthetic_case(shape=(48, 48), centres=((16, 16), (32, 32)), spacing=(0.7, 1.3),
                        origin=(3.0, -7.0))
    i2 = viewer.add_image(c2.channels[0], **layer_kwargs(c2.geometry, "img2d"))
    l2 = viewer.add_labels(c2.labels.copy(), **layer_kwargs(c2.geometry, "lab2d"))
    get_link(viewer).layers.use([i2], l2)
    session.select(1)
    mark = _mark(viewer)
    assert mark.ndim == 2 and len(mark.data) == 1
    np.testing.assert_allclose(mark.data_to_world(mark.data[0]),
                               l2.data_to_world(session.selected_lesion.centroid))
    assert [n for n in notes if n[0] == "error"] == []
