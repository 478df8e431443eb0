"""The "Synthesise and export" dock: plot, recipe, Synthesise one, Export, Cancel, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import add_case, synthetic_case, wait_done
from qtpy.QtCore import Qt

from napari_lesionmix._reader import read_layer_data
from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.synth_dock import SynthDock
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

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    get_state(viewer).set_layers([img], lab)
    return SynthDock(viewer)


def _no_temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_plot_shows_reference_histogram_and_density(dock):
    refs = [1000.0, 1500.0, 2500.0, 4000.0]
    dock.set_reference(refs)
    dock.form.combo.setCurrentText("uniform")
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


def test_changing_the_distribution_updates_the_recipe(dock):
    st = dock.state
    dock.form.combo.setCurrentText("gaussian")
    dock.form.spins["mean"].setValue(2.5)
    dock.form.spins["std"].setValue(0.5)
    assert st.recipe.load_distribution == "gaussian"
    assert st.recipe.load["mean"] == pytest.approx(2500.0)
    assert st.recipe.load["std"] == pytest.approx(500.0)
    dock.form.combo.setCurrentText("fixed")
    dock.form.spins["value"].setValue(1.25)
    assert st.recipe.load == {"value": pytest.approx(1250.0)}
    dock.redraw()
    x, y = dock.plot.curve.get_xdata(), dock.plot.curve.get_ydata()
    assert abs(x[np.argmax(y)] - 1.25) < 0.02  # the spike sits on the fixed value
    dock.seed.setValue(42)
    assert st.recipe.seed == 42


def test_synthesize_one_adds_layers_with_the_provenance_load(dock, qtbot):
    st = dock.state
    load0 = dock.case_load()
    dock.form.combo.setCurrentText("fixed")
    dock.form.spins["value"].setValue(2 * load0 / 1000)
    qtbot.mouseClick(dock.synth_btn, Qt.MouseButton.LeftButton)
    wait_done(qtbot, dock, 60000)
    prov = dock.last_result.provenance
    labels = dock.viewer.layers["labels_lmix"]
    image = dock.viewer.layers["image_lmix"]
    mm3, vox = lesion_load(labels.data, st.lesion_classes, st.case.geometry.spacing_zyx)
    assert mm3 == pytest.approx(prov.achieved_load_mm3)
    assert vox == prov.achieved_voxels
    assert prov.achieved_load_mm3 > load0
    for layer, src in ((labels, st.label_layer), (image, st.image_layers[0])):
        np.testing.assert_array_equal(layer.scale, src.scale)
        np.testing.assert_array_equal(layer.translate, src.translate)
    # output 0's seed, the command line's rule; the same arrays again from the engine
    assert prov.seed["spawn_key"] == [0]
    again = synthesize(st.case, st.bank, None, dock._run_recipe(), seed=case_seeds(
        st.recipe.seed, 10)[0], reference_loads=dock.reference_loads())
    np.testing.assert_array_equal(again.case.labels, labels.data)
    np.testing.assert_array_equal(again.case.channels[0], image.data)
    assert "achieved" in dock.status.text() and prov.status in dock.status.text()


def test_export_writes_a_trainable_dataset(dock, qtbot, tmp_path):
    st = dock.state
    out = tmp_path / "out"
    worker = dock.export(out, n=2)
    assert worker is not None and not dock.export_btn.isEnabled()
    wait_done(qtbot, dock, 120000)
    names = ["labels_lmix0000", "labels_lmix0001"]
    for name in names + ["labels"]:
        assert (out / "imagesTr" / f"{name}_0000.nii.gz").is_file()
        assert (out / "labelsTr" / f"{name}.nii.gz").is_file()
    for name in names:
        prov = json.loads((out / "provenance" / f"{name}.json").read_text())
        case = Case.read(out / "imagesTr" / f"{name}_0000.nii.gz",
                         out / "labelsTr" / f"{name}.nii.gz")
        assert case.geometry.matches(st.case.geometry)
        assert lesion_load(case.labels, [1], case.geometry.spacing_zyx)[0] == pytest.approx(
            prov["achieved_load_mm3"])
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 3 and meta["file_ending"] == ".nii.gz"
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "complete" and sorted(manifest.written()) == names
    n_cases, problems = verify_output(out)
    assert n_cases == 3 and problems == []
    assert _no_temporaries(out) == []
    assert dock.export_btn.isEnabled() and not dock.cancel_btn.isEnabled()
    assert dock.last_export.written == 2


def test_cancel_stops_after_the_current_case(dock, qtbot, tmp_path):
    """The user clicks Cancel while case 0 is being recorded. Case 1 is then in progress
    (computed, its files being written in the background): it completes, case 2 never
    starts, and the output holds exactly the complete cases."""
    import threading

    out = tmp_path / "out"
    reached, clicked = threading.Event(), threading.Event()

    def after_case(k, name):  # in the worker: hold case 0 until Cancel was clicked
        if k == 0:
            reached.set()
            clicked.wait(30)

    dock.export(out, n=3, after_case=after_case)
    qtbot.waitUntil(reached.is_set, timeout=120000)
    qtbot.mouseClick(dock.cancel_btn, Qt.MouseButton.LeftButton)
    clicked.set()
    wait_done(qtbot, dock, 120000)
    qtbot.waitUntil(lambda: dock.export_worker is None)  # the dock's own 'finished' slot
    manifest = Manifest.load(out / "manifest.json")
    assert manifest.data["state"] == "interrupted"
    assert sorted(manifest.written()) == ["labels_lmix0000", "labels_lmix0001"]
    on_disk = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert on_disk == ["labels.nii.gz", "labels_lmix0000.nii.gz", "labels_lmix0001.nii.gz"]
    assert sorted(p.name for p in (out / "provenance").iterdir()) == [
        "labels_lmix0000.json", "labels_lmix0001.json"]
    assert "interrupted" in dock.status.text() and dock.last_export.interrupted
    assert _no_temporaries(out) == []
    assert verify_output(out)[1] == []
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3


def test_recipe_save_and_load_round_trip(dock, tmp_path, notes):
    st = dock.state
    dock.form.combo.setCurrentText("uniform")
    dock.form.spins["lo"].setValue(0.2)
    dock.form.spins["hi"].setValue(0.9)
    dock.seed.setValue(7)
    st.update_recipe("populate", scale=[0.8, 1.2])
    saved = st.recipe
    path = tmp_path / "recipe.json"
    assert dock.save_recipe(path)
    assert Recipe.from_json(path) == saved  # what the command line reads
    st.set_recipe(Recipe())
    assert dock.form.kind() == "real" and dock.seed.value() == 0
    assert dock.load_recipe(path)
    assert st.recipe == saved
    assert dock.form.kind() == "uniform" and dock.seed.value() == 7
    assert dock.form.spins["hi"].value() == pytest.approx(0.9)
    bad = tmp_path / "bad.json"
    bad.write_text('{"load_distribution": "sometimes"}')
    assert not dock.load_recipe(bad)
    assert st.recipe == saved
    assert any("load_distribution" in msg for _, msg in notes)


def test_unwritable_output_notifies_and_writes_nothing(dock, tmp_path, notes):
    afile = tmp_path / "afile"
    afile.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert dock.export(afile / "out", n=2) is None
    assert not dock.workers
    assert any(level == "warning" and "afile" in msg for level, msg in notes)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert afile.read_text() == "x"


def test_reference_from_a_folder_becomes_the_recipe_reference(dock, qtbot, tmp_path):
    from napari_lesionmix.core.image_io import write_image

    folder = tmp_path / "labels"
    expected = []
    for i, radius in enumerate((2.0, 3.0, 4.0)):
        c = synthetic_case(centres=((12, 24, 24),), radius=radius, spacing=(1.0, 1.0, 2.0))
        write_image(c.labels, c.geometry, folder / f"c{i}.nii.gz")
        expected.append(float(c.labels.sum()) * 2.0)
    dock.load_reference_folder(folder)
    wait_done(qtbot, dock)
    assert dock.state.recipe.load["reference"] == pytest.approx(expected)
    dock.redraw()
    assert sum(p.get_height() > 0 for p in dock.plot.bars.patches) == 3
    dock.use_case_reference()
    assert "reference" not in dock.state.recipe.load
    assert dock.reference_loads() == [dock.case_load()]


def test_export_equals_lesionmix_generate_on_a_one_case_dataset(make_napari_viewer, qtbot,
                                                               tmp_path):
    """What coincides: a one-case input, the case's own bank, a map built from the case."""
    src = tmp_path / "ds"
    case = synthetic_case()
    case.write([src / "imagesTr" / "syn_0000.nii.gz"], src / "labelsTr" / "syn.nii.gz")
    (src / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    viewer = make_napari_viewer()
    layers = []
    for path, kind in ((src / "imagesTr" / "syn_0000.nii.gz", "image"),
                       (src / "labelsTr" / "syn.nii.gz", "labels")):
        data, kwargs, _ = read_layer_data(path, kind)
        layers.append(getattr(viewer, f"add_{kind}")(data, **kwargs))
    st = get_state(viewer)
    st.set_layers([layers[0]], layers[1])
    st.update_recipe(load_distribution="uniform", load={"lo": 300.0, "hi": 900.0}, seed=5)
    st.update_recipe("likelihood", sigma_mm=2.0, floor=0.1)
    st.set_likelihood(LikelihoodMap.from_recipe([st.case], st.recipe))
    dock = SynthDock(viewer)
    dock.export(tmp_path / "gui", n=2)
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


def test_another_bank_supplies_the_reference_loads(dock):
    st = dock.state
    assert st.bank_is_from_case
    with pytest.raises(AttributeError):
        st.bank_is_from_case = False  # read-only
    assert dock.reference_source().startswith("case ")
    other = [synthetic_case(centres=((12, 16, 16),)), synthetic_case(radius=2.0)]
    other[1].name = "other"
    bank = LesionBank.from_recipe(other, st.recipe)
    st.set_bank(bank)
    assert not st.bank_is_from_case
    assert dock.reference_source() == "the lesion bank's cases"
    assert dock.reference_loads() == pytest.approx(list(bank.loads_by_case().values()))
    assert dock.reference_loads() != pytest.approx([dock.case_load()])
    st.set_bank(None)
    assert st.bank_is_from_case
    assert dock.reference_loads() == [dock.case_load()]
