"""The Synthesise tab, operated as a person does: the distribution and its parameters, a
distribution that collapses, the seed, Synthesise one, Export to the typed folder, Cancel,
recipe files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import add_case, choose, click, synthetic_case, type_into, wait_done
from qtpy.QtWidgets import QFileDialog

from napari_lesionmix._layers import layer_kwargs
from napari_lesionmix._reader import read_layer_data
from napari_lesionmix._widgets.synth_dock import SynthDock
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.image_io import read_image
from napari_lesionmix.core.lesions import LesionBank, lesion_load
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.core.mix import case_seeds, synthesize
from napari_lesionmix.core.recipe import Recipe


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case(spacing=(0.9, 0.9, 1.5), origin=(3, -4, 5)))
    dock = SynthDock(viewer)
    viewer.window.add_dock_widget(dock, name="Synthesise")
    return viewer, dock, get_link(viewer).session


def _no_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_plot_shows_reference_histogram_and_density(shown, qtbot):
    viewer, dock, session = shown
    refs = [1000.0, 1500.0, 2500.0, 4000.0]
    dock.set_reference(refs)
    choose(qtbot, dock.form.combo, "uniform")
    dock.redraw()
    plot = dock.plot
    heights = np.array([p.get_height() for p in plot.bars.patches])
    widths = np.array([p.get_width() for p in plot.bars.patches])
    expected, edges = np.histogram(np.array(refs) / 1000, bins=len(heights),
                                   range=(0.0, 4.4), density=True)
    np.testing.assert_allclose(heights, expected)
    np.testing.assert_allclose(widths, np.diff(edges))
    x, y = plot.curve.get_xdata(), plot.curve.get_ydata()
    inside = (x > 1.01) & (x < 3.99)
    np.testing.assert_allclose(y[inside], 1 / 3.0)  # U[1, 4] ml: 1/3 per ml
    assert np.all(y[(x < 0.99) | (x > 4.01)] == 0)


def test_distribution_and_parameters_typed_into_the_recipe(shown, qtbot):
    viewer, dock, session = shown
    choose(qtbot, dock.form.combo, "gaussian")
    type_into(qtbot, dock.form.spins["mean"], "2.5")
    type_into(qtbot, dock.form.spins["std"], "0.5")
    assert session.recipe.load_distribution == "gaussian"
    assert session.recipe.load["mean"] == pytest.approx(2500.0)
    assert session.recipe.load["std"] == pytest.approx(500.0)
    choose(qtbot, dock.form.combo, "fixed")
    type_into(qtbot, dock.form.spins["value"], "1.25")
    assert session.recipe.load == {"value": pytest.approx(1250.0)}
    dock.redraw()
    x, y = dock.plot.curve.get_xdata(), dock.plot.curve.get_ydata()
    assert abs(x[np.argmax(y)] - 1.25) < 0.02  # the spike sits on the fixed value


def test_a_collapsing_distribution_says_so(shown, qtbot):
    viewer, dock, session = shown
    choose(qtbot, dock.form.combo, "high")  # one reference case: high = one load
    dock.redraw()
    assert "collapses to one load" in dock.reference_label.text()
    assert "1 reference load" in dock.reference_label.text()
    dock.set_reference([1000.0, 1500.0, 2500.0, 4000.0])
    dock.redraw()
    assert "collapses" not in dock.reference_label.text()


def test_a_64_bit_seed_typed(shown, qtbot):
    viewer, dock, session = shown
    type_into(qtbot, dock.seed, str(2**63 - 1))
    assert session.recipe.seed == 2**63 - 1
    type_into(qtbot, dock.seed, str(2**40 + 3))
    assert session.recipe.seed == 2**40 + 3 and dock.seed.value() == 2**40 + 3


def test_synthesize_one_opens_layers_on_the_source_geometry(shown, qtbot):
    viewer, dock, session = shown
    load0 = dock.case_load()
    choose(qtbot, dock.form.combo, "fixed")
    type_into(qtbot, dock.form.spins["value"], f"{2 * load0 / 1000:.3f}")
    click(qtbot, dock.synth_btn)
    wait_done(qtbot, dock, 60000)
    prov = dock.last_result.provenance
    labels = viewer.layers["labels_lmix"]
    image = viewer.layers["image_lmix"]
    mm3, vox = lesion_load(labels.data, session.lesion_classes,
                           session.case.geometry.spacing_zyx)
    assert mm3 == pytest.approx(prov.achieved_load_mm3) and vox == prov.achieved_voxels
    assert prov.achieved_load_mm3 > load0
    src = viewer.layers["labels"]
    for layer in (labels, image):
        np.testing.assert_allclose(layer.data_to_world((1, 2, 3)), src.data_to_world((1, 2, 3)))
    again = synthesize(session.case, session.bank, None, dock._run_recipe(), seed=case_seeds(
        session.recipe.seed, 10)[0], reference_loads=dock.reference_loads())
    np.testing.assert_array_equal(again.case.labels, labels.data)


def test_export_to_the_typed_folder(shown, qtbot, tmp_path, monkeypatch):
    viewer, dock, session = shown
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "typed"
    type_into(qtbot, dock.n_cases, "2")
    type_into(qtbot, dock.output, str(out))
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 120000)
    assert not (tmp_path / "False").exists()  # Qt's 'checked' argument is not the output
    names = ["labels_lmix0000", "labels_lmix0001"]
    for name in names + ["labels"]:
        assert (out / "imagesTr" / f"{name}_0000.nii.gz").is_file()
        assert (out / "labelsTr" / f"{name}.nii.gz").is_file()
    for name in names:
        case = Case.read(out / "imagesTr" / f"{name}_0000.nii.gz",
                         out / "labelsTr" / f"{name}.nii.gz")
        assert case.geometry.matches(session.case.geometry)
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "complete" and sorted(manifest.written()) == names
    assert verify_output(out)[1] == [] and _no_temporaries(out) == []
    assert dock.output.text() == str(out)
    assert dock.export_btn.isEnabled() and not dock.cancel_btn.isEnabled()


def test_t1_and_flair_are_both_exported(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer(show=True)
    case = synthetic_case()
    viewer.add_image(case.channels[0], **layer_kwargs(case.geometry, "T1"))
    viewer.add_image(case.channels[0] * 2 + 5, **layer_kwargs(case.geometry, "FLAIR"))
    viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, "labels"))
    dock = SynthDock(viewer)
    viewer.window.add_dock_widget(dock)
    assert get_link(viewer).session.case.n_channels == 2
    out = tmp_path / "out"
    type_into(qtbot, dock.n_cases, "1")
    type_into(qtbot, dock.output, str(out))
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 120000)
    for name in ("labels", "labels_lmix0000"):
        assert (out / "imagesTr" / f"{name}_0000.nii.gz").is_file()
        assert (out / "imagesTr" / f"{name}_0001.nii.gz").is_file()
    channels = json.loads((out / "dataset.json").read_text())["channel_names"]
    assert list(channels.values()) == ["T1", "FLAIR"]


def test_cancel_stops_after_the_current_case(shown, qtbot, tmp_path):
    """The user clicks Cancel while case 0 is being recorded. Case 1 is then in progress
    (computed, its files being written in the background): it completes, case 2 never
    starts, and the output holds exactly the complete cases."""
    viewer, dock, session = shown
    out = tmp_path / "out"
    reached, clicked = threading.Event(), threading.Event()

    def after_case(k, name):  # in the worker: hold case 0 until Cancel was clicked
        if k == 0:
            reached.set()
            clicked.wait(30)

    dock.export(out, n=3, after_case=after_case)
    qtbot.waitUntil(reached.is_set, timeout=120000)
    click(qtbot, dock.cancel_btn)
    clicked.set()
    wait_done(qtbot, dock, 120000)
    qtbot.waitUntil(lambda: dock.export_worker is None)
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "interrupted"
    assert sorted(manifest.written()) == ["labels_lmix0000", "labels_lmix0001"]
    assert "interrupted" in dock.status.text() and dock.last_export.interrupted
    assert _no_temporaries(out) == [] and verify_output(out)[1] == []


def test_recipe_saved_and_loaded_through_the_dialogs(shown, qtbot, tmp_path, monkeypatch,
                                                     notes):
    viewer, dock, session = shown
    choose(qtbot, dock.form.combo, "uniform")
    type_into(qtbot, dock.form.spins["lo"], "0.2")
    type_into(qtbot, dock.form.spins["hi"], "0.9")
    type_into(qtbot, dock.seed, "7")
    saved = session.recipe
    path = tmp_path / "recipe.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    click(qtbot, dock.save_btn)
    assert Recipe.from_json(path) == saved  # what the command line reads
    session.set_recipe(Recipe())
    assert dock.form.kind() == "real" and dock.seed.value() == 0
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    click(qtbot, dock.load_btn)
    assert session.recipe == saved and session.recipe_origin == "file"
    assert dock.form.kind() == "uniform" and dock.seed.value() == 7
    bad = tmp_path / "bad.json"
    bad.write_text('{"load_distribution": "sometimes"}')
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    click(qtbot, dock.load_btn)
    assert session.recipe == saved
    assert any("load_distribution" in msg for _, msg in notes)


def test_an_unwritable_output_notifies_and_writes_nothing(shown, qtbot, tmp_path, notes):
    viewer, dock, session = shown
    afile = tmp_path / "afile"
    afile.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    type_into(qtbot, dock.output, str(afile / "out"))
    click(qtbot, dock.export_btn)
    assert not dock.workers
    assert any(level == "warning" and "afile" in msg for level, msg in notes)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_equals_lesionmix_generate_on_a_one_case_dataset(make_napari_viewer, qtbot,
                                                               tmp_path):
    """What coincides: a one-case input, the case's own bank, a map built from the case."""
    src = tmp_path / "ds"
    case = synthetic_case()
    case.write([src / "imagesTr" / "syn_0000.nii.gz"], src / "labelsTr" / "syn.nii.gz")
    (src / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    viewer = make_napari_viewer(show=True)
    for path, kind in ((src / "imagesTr" / "syn_0000.nii.gz", "image"),
                       (src / "labelsTr" / "syn.nii.gz", "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    st = get_link(viewer).session
    st.update_recipe(load_distribution="uniform", load={"lo": 300.0, "hi": 900.0}, seed=5)
    st.update_recipe("likelihood", sigma_mm=2.0, floor=0.1)
    st.set_likelihood(LikelihoodMap.from_recipe([st.case], st.recipe))
    dock = SynthDock(viewer)
    viewer.window.add_dock_widget(dock)
    type_into(qtbot, dock.n_cases, "2")
    type_into(qtbot, dock.output, str(tmp_path / "gui"))
    click(qtbot, dock.export_btn)
    wait_done(qtbot, dock, 120000)
    assert dock.last_export.written == 2
    recipe_path = tmp_path / "recipe.json"
    dock.save_recipe(recipe_path)
    summary = generate(GenerateOptions(src, tmp_path / "cli", 2, recipe=recipe_path,
                                       progress=False), say=lambda m: None)
    assert summary.exit_code == 0
    for name in ("syn_lmix0000", "syn_lmix0001"):
        for sub, file in (("imagesTr", f"{name}_0000.nii.gz"), ("labelsTr", f"{name}.nii.gz")):
            a, ga, _ = read_image(tmp_path / "gui" / sub / file)
            b, gb, _ = read_image(tmp_path / "cli" / sub / file)
            np.testing.assert_array_equal(a, b)
            assert ga.matches(gb)
        pa = json.loads((tmp_path / "gui" / "provenance" / f"{name}.json").read_text())
        pb = json.loads((tmp_path / "cli" / "provenance" / f"{name}.json").read_text())
        assert pa["recipe_hash"] == pb["recipe_hash"]
        assert pa["operations"] == pb["operations"]
        assert pa["source"] == pb["source"]
    assert json.loads((tmp_path / "gui" / "dataset.json").read_text())["labels"] == {
        "background": 0, "lesion": 1}


def test_another_bank_supplies_the_reference_loads(shown):
    viewer, dock, session = shown
    assert session.bank_is_from_case and dock.reference_source().startswith("case ")
    other = [synthetic_case(centres=((12, 16, 16),)), synthetic_case(radius=2.0)]
    other[1].name = "other"
    bank = LesionBank.from_recipe(other, session.recipe)
    session.set_bank(bank)
    assert dock.reference_source() == "the lesion bank's cases"
    assert dock.reference_loads() == pytest.approx(list(bank.loads_by_case().values()))
    session.set_bank(None)
    assert dock.reference_loads() == [dock.case_load()]
