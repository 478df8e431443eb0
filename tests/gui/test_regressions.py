"""Regressions from the GUI review: previews leaking into the case, bit-exact restores in
every voxel type, recipe fields overwritten by unrelated controls, 64-bit seeds, workers
outliving their viewer, the selection marker across cases, slot exceptions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import add_case, synthetic_case, wait_done

from napari_lesionmix._layers import layer_kwargs
from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.augment_dock import AugmentDock
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix._widgets.likelihood_dock import LikelihoodDock
from napari_lesionmix._widgets.synth_dock import SynthDock
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.core.recipe import Recipe

pytestmark = pytest.mark.gui

LOCATION = (12, 24, 8)  # free space: the preview adds a 4th lesion there


def _setup(viewer, dtype=np.float32):
    img, lab = add_case(viewer, synthetic_case(), image_dtype=dtype)
    cd, ad = CaseDock(viewer), AugmentDock(viewer)
    st = get_state(viewer)
    st.select(0)
    return cd, ad, st, img, lab


def _preview_add(ad, st):
    st.set_location(LOCATION)
    ad.update_preview()
    assert st.has_preview


# ------------------------------------------------------------------ previews never leak
def test_use_layers_during_a_preview_builds_the_case_without_it(make_napari_viewer):
    cd, ad, st, img, lab = _setup(make_napari_viewer(), np.int16)
    img0, lab0 = img.data.copy(), lab.data.copy()
    _preview_add(ad, st)
    assert cd.use_layers()
    assert not st.has_preview
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)
    assert np.array_equal(st.case.channels[0], img0.astype(np.float32))
    assert len(st.lesions) == 3
    st.select(0)
    _preview_add(ad, st)
    ad.clear()
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)


def test_refresh_lesions_during_a_preview_lists_no_phantom(make_napari_viewer):
    cd, ad, st, img, lab = _setup(make_napari_viewer())
    _preview_add(ad, st)
    cd.refresh.click()
    assert len(st.lesions) == 3 and cd.table.rowCount() == 3
    assert st.has_preview  # the preview stays on screen
    # a click on the previewed (unapplied) lesion selects nothing
    assert st.lesion_at(LOCATION) is None


def test_heatmap_from_the_case_ignores_the_preview(make_napari_viewer, qtbot):
    cd, ad, st, img, lab = _setup(make_napari_viewer())
    ld = LikelihoodDock(ad.viewer)
    st.update_recipe("likelihood", sigma_mm=0.0, floor=0.0)
    lab0 = lab.data.copy()
    _preview_add(ad, st)
    added = (lab.data != 0) & (lab0 == 0)
    assert added.any()
    seen = {}
    original = ld.run_worker

    def spy(fn, *args, **kwargs):
        seen["case"] = args[0][0]
        return original(fn, *args, **kwargs)

    ld.run_worker = spy
    ld.build_from_case()
    assert seen["case"] is not st.case  # a snapshot: later previews cannot change it
    assert np.array_equal(seen["case"].labels, lab0)
    wait_done(qtbot, ld)
    assert (st.likelihood.prob[added] == 0).all()
    assert st.likelihood.prob[lab0 == 1].min() > 0


def test_export_during_a_preview_uses_a_bank_without_it(make_napari_viewer, qtbot,
                                                          tmp_path):
    cd, ad, st, img, lab = _setup(make_napari_viewer())
    sd = SynthDock(ad.viewer)
    _preview_add(ad, st)
    assert st._bank is None
    assert sd.export(tmp_path / "out", n=1) is not None
    wait_done(qtbot, sd, 60000)
    assert len(st.bank) == 3
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())[
        "reference_loads"]["labels"]["lesions"] == 3


def test_bank_and_context_follow_the_applied_data(make_napari_viewer):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case(organ=True))  # organ label 1, lesions label 2
    CaseDock(viewer)
    ad, st = AugmentDock(viewer), get_state(viewer)
    st.update_recipe(lesion_classes=[2], organ_label=1)
    st.select(0)
    _preview_add(ad, st)
    assert len(st.bank) == 3  # built while the preview is shown: without it
    st._context = None
    assert st.context.allowed[LOCATION]  # the organ there, not the previewed lesion
    ad.apply()
    assert len(st.bank) == 4 and len(st.lesions) == 4
    assert not st.context.allowed[LOCATION]  # a lesion is there now
    ad.undo()
    assert len(st.bank) == 3 and st.context.allowed[LOCATION]


# ------------------------------------------------------------------ bit-exact restores
def test_clear_undo_reset_are_bit_exact_for_float64_and_large_int32(make_napari_viewer):
    viewer = make_napari_viewer()
    case = synthetic_case()
    rng = np.random.default_rng(3)
    f64 = case.channels[0].astype(np.float64) + 1e-3 * rng.random(case.spatial_shape)
    i32 = (case.channels[0].astype(np.int64) * 1000003 + 50_000_001).astype(np.int32)
    assert i32.max() > 2**24
    a = viewer.add_image(f64, **layer_kwargs(case.geometry, "t1_f64"))
    b = viewer.add_image(i32, **layer_kwargs(case.geometry, "t2_i32"))
    lab = viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, "labels"))
    cd, ad, st = CaseDock(viewer), AugmentDock(viewer), get_state(viewer)
    cd.images.set_layers([a, b])
    cd.labels.set_layer(lab)
    assert cd.use_layers() and st.case.n_channels == 2
    st.select(0)
    a0, b0, l0 = a.data.copy(), b.data.copy(), lab.data.copy()

    def exact():
        return (np.array_equal(a.data, a0) and np.array_equal(b.data, b0)
                and np.array_equal(lab.data, l0))

    _preview_add(ad, st)
    assert not np.array_equal(a.data, a0)
    ad.clear()
    assert exact()
    _preview_add(ad, st)
    ad.apply()
    ad.remove_mode.setChecked(True)
    ad.update_preview()
    ad.apply()
    ad.undo()
    ad.undo()
    assert exact()
    ad.add_mode.setChecked(True)
    st.select(0)
    _preview_add(ad, st)
    ad.apply()
    ad.remove_mode.setChecked(True)
    ad.update_preview()
    ad.reset()
    assert exact()


# ------------------------------------------------------------------ recipe fields
def test_a_loaded_blend_sigma_survives_other_sliders(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case())
    CaseDock(viewer)
    ad, sd = AugmentDock(viewer), SynthDock(viewer)
    st = get_state(viewer)
    data = Recipe().to_dict()
    data["populate"]["blend_sigma"] = 12.5  # beyond the old slider's 0..5
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert sd.load_recipe(path)
    assert ad.grid.blend_sigma() == 12.5
    ad.grid.sliders["rotate0"].setValue(10.0)
    ad.grid.sliders["scale"].setValue(1.5)
    assert st.recipe.populate.blend_sigma == 12.5
    ad.grid.sliders["blend_sigma"].setValue(2.0)
    assert st.recipe.populate.blend_sigma == 2.0


def test_editing_one_field_keeps_the_others_exact(make_napari_viewer):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case())
    CaseDock(viewer)
    ad, ld, sd = AugmentDock(viewer), LikelihoodDock(viewer), SynthDock(viewer)
    st = get_state(viewer)
    st.update_recipe(load_distribution="gaussian", load={"mean": 1234.5678, "std": 321.0987})
    sd.form.spins["std"].setValue(0.4)
    assert st.recipe.load["mean"] == 1234.5678 and st.recipe.load["std"] == 400.0
    st.update_recipe("populate", scale=[0.8765, 1.2345])
    ad.grid.batch["scale[0]"].setValue(0.9)
    assert tuple(st.recipe.populate.scale) == (0.9, 1.2345)
    st.update_recipe("likelihood", sigma_mm=2.345)
    ld.floor.setValue(0.05)
    assert st.recipe.likelihood.sigma_mm == 2.345 and st.recipe.likelihood.floor == 0.05


def test_a_64_bit_seed_is_shown_and_edited(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case())
    CaseDock(viewer)
    sd = SynthDock(viewer)
    st = get_state(viewer)
    data = Recipe().to_dict()
    data["seed"] = 2**40 + 3
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert sd.load_recipe(path)
    assert sd.seed.value() == 2**40 + 3 and sd.seed.text() == str(2**40 + 3)
    sd.seed.setText(str(2**63 - 1))
    sd.seed.editingFinished.emit()
    assert st.recipe.seed == 2**63 - 1
    sd.seed.setValue(42)
    assert st.recipe.seed == 42 and sd.seed.text() == "42"


# ------------------------------------------------------------------ workers and windows
def test_closing_the_viewer_stops_the_export(make_napari_viewer, qtbot, tmp_path, capfd):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case())
    CaseDock(viewer)
    sd = SynthDock(viewer)
    viewer.window.add_dock_widget(sd, name="Synthesise")
    out = tmp_path / "out"
    labels = out / "labelsTr"
    n = 2000
    worker = sd.export(out, n=n)
    assert worker is not None
    qtbot.waitUntil(lambda: labels.is_dir() and len(list(labels.iterdir())) >= 3,
                    timeout=60000)
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30000)
    n_done = len(list(labels.iterdir()))
    qtbot.wait(1500)
    assert len(list(labels.iterdir())) == n_done < n  # nothing written any more
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "interrupted"
    on_disk = sorted(p.name.split(".")[0] for p in labels.iterdir())
    assert on_disk == sorted([*manifest.written(), "labels"])
    err = capfd.readouterr().err
    assert "has been deleted" not in err and "Traceback" not in err


def test_slot_exceptions_become_notifications(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    add_case(viewer, synthetic_case())
    cd = CaseDock(viewer)

    def broken():
        raise KeyError("boom")

    cd.listen(cd.state.history_changed, broken)
    cd.state.history_changed.emit()  # does not raise
    assert any(level == "error" and "boom" in msg for level, msg in notes)


def test_preview_errors_never_escape_the_timer_slot(make_napari_viewer, notes,
                                                     monkeypatch):
    from napari_lesionmix._widgets import augment_dock

    cd, ad, st, img, lab = _setup(make_napari_viewer())

    def broken(*args, **kwargs):
        raise KeyError("engine bug")

    monkeypatch.setattr(augment_dock, "place_edit", broken)
    st.set_location(LOCATION)
    ad.update_preview()  # does not raise
    assert not st.has_preview and "engine bug" in ad.status.text()
    assert any(level == "error" and "engine bug" in msg for level, msg in notes)


# ------------------------------------------------------------------ selection marker
def _marker(viewer):
    return next(lay for lay in viewer.layers if lay.metadata.get("lesionmix_role") == "selection")


def test_the_marker_follows_the_case_geometry(make_napari_viewer):
    viewer = make_napari_viewer()
    cd, ad, st, img, lab = _setup(viewer)
    c2 = synthetic_case(spacing=(0.5, 0.5, 3.0), origin=(-40.0, 10.0, 5.0))
    i2 = viewer.add_image(c2.channels[0], **layer_kwargs(c2.geometry, "img2"))
    l2 = viewer.add_labels(c2.labels.copy(), **layer_kwargs(c2.geometry, "lab2"))
    st.set_layers([i2], l2)
    st.select(1)
    marker = _marker(viewer)
    centroid = np.asarray(st.selected_lesion.centroid)
    np.testing.assert_allclose(marker.data_to_world(marker.data[0]), l2.data_to_world(centroid))


def test_a_2d_case_after_a_3d_one(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    cd, ad, st, img, lab = _setup(viewer)
    c2 = synthetic_case(shape=(48, 48), centres=((16, 16), (32, 32)), spacing=(0.7, 1.3),
                        origin=(3.0, -7.0))
    i2 = viewer.add_image(c2.channels[0], **layer_kwargs(c2.geometry, "img2d"))
    l2 = viewer.add_labels(c2.labels.copy(), **layer_kwargs(c2.geometry, "lab2d"))
    st.set_layers([i2], l2)
    st.select(1)
    marker = _marker(viewer)
    assert marker.ndim == 2 and len(marker.data) == 1
    np.testing.assert_allclose(marker.data_to_world(marker.data[0]),
                               l2.data_to_world(np.asarray(st.selected_lesion.centroid)))
    assert [n for n in notes if n[0] == "error"] == []
    assert sum(1 for lay in viewer.layers if lay.metadata.get("lesionmix_role")) == 1
