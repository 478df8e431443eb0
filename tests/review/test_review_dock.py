"""The Review dock, driven with clicks and keys on an export made by ``lesionmix generate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt

from napari_lesionmix._widgets.review_dock import ReviewDock
from napari_lesionmix._widgets.review_layers import NAMES, lesion_id
from napari_lesionmix.core.image_io import read_image
from tests.review.dock_helpers import cell as _cell
from tests.review.dock_helpers import click, click_case, grid, press
from tests.review.dock_helpers import click_row as _click_row

pytestmark = pytest.mark.gui


def test_typing_a_path_opens_the_dataset_and_its_first_case(dock, export):
    assert dock.cases.rowCount() == 12
    assert dock.session.current.name == "brain01"
    img, _, _ = read_image(export / "imagesTr" / "brain01_0000.nii.gz")
    np.testing.assert_array_equal(dock.viewer.layers[NAMES["result"]].data, img)
    assert not dock.viewer.layers[NAMES["source"]].visible  # an original has no source
    assert not dock.toggle_btn.isEnabled()


def test_keys_and_buttons_step_through_the_cases(dock, qtbot, export):
    press(qtbot, dock, Qt.Key.Key_PageDown)
    assert dock.session.current.name == "brain01_lmix0000"
    assert {NAMES["source"], NAMES["result"], NAMES["lesions"]} <= set(
        layer.name for layer in dock.viewer.layers)
    img, _, _ = read_image(export / "imagesTr" / "brain01_lmix0000_0000.nii.gz")
    np.testing.assert_array_equal(dock.viewer.layers[NAMES["result"]].data, img)
    qtbot.mouseClick(dock.next_btn, Qt.MouseButton.LeftButton)
    assert dock.session.current.name == "brain02"
    press(qtbot, dock, Qt.Key.Key_PageUp)
    assert dock.session.current.name == "brain01_lmix0000"
    assert dock.cases.selectedItems()[0].text() == "brain01_lmix0000"
    _click_row(qtbot, dock.cases, 5)
    assert dock.session.current.name == dock.cases.names[5]


def test_header_click_sorts_and_typing_in_a_filter_filters(dock, qtbot):
    header = dock.cases.horizontalHeader()
    col = dock.cases.keys.index("achieved")
    pos = QPoint(header.sectionViewportPosition(col) + header.sectionSize(col) // 2,
                 header.height() // 2)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    values = [float(_cell(dock.cases, r, "achieved")) for r in range(dock.cases.rowCount())]
    assert values == sorted(values)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    values = [float(_cell(dock.cases, r, "achieved")) for r in range(dock.cases.rowCount())]
    assert values == sorted(values, reverse=True)
    box = dock.filters.boxes["status"]
    box.setFocus()
    qtbot.keyClicks(box, "orig")
    assert box.currentText() == "original"
    assert dock.cases.rowCount() == 6
    assert {_cell(dock.cases, r, "status") for r in range(6)} == {"original"}
    # next/previous stay in what the table shows
    _click_row(qtbot, dock.cases, 0)
    press(qtbot, dock, Qt.Key.Key_PageDown)
    assert dock.session.current.row.kind == "original"


def test_lesion_rows_show_origin_and_donor_and_a_click_goes_there(dock, qtbot):
    click_case(qtbot, dock, "brain02_lmix0001")
    case = dock.session.current
    assert dock.lesions.rowCount() == len(case.changes.lesions)
    k = next(i for i, les in enumerate(case.changes.lesions) if les.origin == "added")
    les = case.changes.lesions[k]
    assert dock.lesions.item(k, 1).text() == "added"
    assert dock.lesions.item(k, 4).text() == les.donor
    assert "scale" in dock.lesions.item(k, 6).text()
    _click_row(qtbot, dock.lesions, k, 1)
    layer = dock.viewer.layers[NAMES["result"]]
    want = np.asarray(layer.data_to_world(les.centroid))
    np.testing.assert_allclose(dock.viewer.dims.point[-3:], want, atol=layer.scale.max())
    # hovering a lesion: napari's status line names its origin, donor and transform
    lesions = dock.viewer.layers[NAMES["lesions"]]
    voxel = tuple(int(round(c)) for c in les.centroid)
    if lesions.data[voxel] == 0:  # a non-convex lesion: any of its voxels
        voxel = tuple(np.argwhere(lesions.data == lesion_id(k, "added"))[0])
    status = lesions.get_status(lesions.data_to_world(voxel), world=True)
    text = json.dumps(status)
    assert "added" in text and les.donor in text
    # coloured by origin: amber for added, through one colour map for every case
    rgba = lesions.colormap.map(np.array([lesion_id(k, "added")], lesions.data.dtype))
    np.testing.assert_allclose(rgba[0][:3], [1.0, 0xb0 / 255, 0.0], atol=0.01)


def test_decisions_by_button_and_key_are_saved_and_shown(dock, qtbot, export):
    click_case(qtbot, dock, "brain05_lmix0004")
    qtbot.keyClicks(dock.note, "nearly empty")
    qtbot.mouseClick(dock.reject_btn, Qt.MouseButton.LeftButton)
    files = list((export / "qa" / "decisions").glob("*.json"))
    assert [f.name for f in files] == ["alice.json"]
    event = json.loads(files[0].read_text())["events"][-1]
    assert (event["case"], event["decision"], event["note"]) == \
        ("brain05_lmix0004", "reject", "nearly empty")
    row = dock.cases.names.index("brain05_lmix0004")
    assert _cell(dock.cases, row, "decision") == "reject"
    assert "reject" in dock.verdict.text() and "alice" in dock.verdict.text()
    assert dock.note.text() == ""
    press(qtbot, dock, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert dock.session.verdict().decision == "accept"
    qtbot.mouseClick(dock.flag_btn, Qt.MouseButton.LeftButton)
    assert dock.session.verdict().decision == "flag"
    # another reviewer's decision shows after Refresh
    from napari_lesionmix.review.decisions import DecisionStore
    DecisionStore(export, "bob").decide("brain05_lmix0004", "reject", "no, reject")
    qtbot.mouseClick(dock.refresh_btn, Qt.MouseButton.LeftButton)
    assert _cell(dock.cases, row, "decision") == "reject"
    assert "bob" in dock.verdict.text() and "reviewers disagree" in dock.verdict.text()


def test_a_decision_survives_closing_and_reopening_napari(make_napari_viewer, qtbot, export):
    viewer = make_napari_viewer()
    d = ReviewDock(viewer)
    viewer.window.add_dock_widget(d)
    qtbot.keyClicks(d.path, str(export))
    qtbot.keyClick(d.path, Qt.Key.Key_Return)
    click_case(qtbot, d, "brain03_lmix0002")
    qtbot.mouseClick(d.accept_btn, Qt.MouseButton.LeftButton)
    viewer.close()
    again = make_napari_viewer()
    d2 = ReviewDock(again)
    again.window.add_dock_widget(d2)
    qtbot.keyClicks(d2.path, str(export / "dataset.json"))
    qtbot.keyClick(d2.path, Qt.Key.Key_Return)
    row = d2.cases.names.index("brain03_lmix0002")
    assert _cell(d2.cases, row, "decision") == "accept"
    _click_row(qtbot, d2.cases, row)
    assert d2.verdict.text().startswith("<b>accept</b>")


def test_source_and_case_toggle_side_by_side_and_difference(dock, qtbot):
    click_case(qtbot, dock, "brain03_lmix0002")  # 19 lesions removed
    src, res = dock.viewer.layers[NAMES["source"]], dock.viewer.layers[NAMES["result"]]
    removed = dock.viewer.layers[NAMES["removed"]]
    assert res.visible and not src.visible
    assert removed.contour == 1 and int(removed.data.max()) > 0
    press(qtbot, dock, Qt.Key.Key_Q)
    assert src.visible and removed.visible and not res.visible
    np.testing.assert_array_equal(src.scale, res.scale)
    np.testing.assert_array_equal(src.translate, res.translate)
    qtbot.mouseClick(dock.toggle_btn, Qt.MouseButton.LeftButton)
    assert res.visible and not src.visible
    diff = dock.viewer.layers[NAMES["difference"]]
    assert not diff.visible
    press(qtbot, dock, Qt.Key.Key_W)
    assert diff.visible and dock.diff.isChecked()
    np.testing.assert_allclose(diff.data, res.data.astype(np.float32) - src.data)
    click(qtbot, dock.side)
    assert grid(dock.viewer).enabled and src.visible and res.visible
    layers = list(dock.viewer.layers)
    assert grid(dock.viewer).position(layers.index(src), layers) != \
        grid(dock.viewer).position(layers.index(res), layers)
    click(qtbot, dock.side)
    assert not grid(dock.viewer).enabled


def test_blinded_test_with_keys(dock, qtbot, export):
    dock.tabs.tabBar().setFocus()
    qtbot.mouseClick(dock.tabs.tabBar(), Qt.MouseButton.LeftButton,
                     pos=dock.tabs.tabBar().tabRect(1).center())
    assert dock.tabs.currentIndex() == 1
    assert not any(layer.visible for layer in dock.viewer.layers)  # nothing names a trial
    panel = dock.blinded
    panel.n.clear()
    qtbot.keyClicks(panel.n, "6")
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    test = panel.test
    assert len(test.trials) == 6 and panel.images["axial"].pixmap() is not None
    assert "Trial 1 of 6" in panel.progress.text()
    window = dock.viewer.window._qt_window
    window.activateWindow()
    assert panel.hasFocus() or qtbot.waitUntil(panel.hasFocus) is None
    for t in list(test.trials):
        qtbot.keyClick(panel, Qt.Key.Key_S if t.truth == "synthetic" else Qt.Key.Key_R)
    saved = json.loads(test.path.read_text())
    assert all(t["answer"] == t["truth"] for t in saved["trials"])
    assert "6/6 correct" in panel.score.text()
    assert test.path.parent == export / "qa" / "blinded"


def test_a_lesion_row_goes_to_its_physical_place_on_a_permuted_file(make_napari_viewer,
                                                                    qtbot, tmp_path):
    """Files stored with permuted, flipped axes: the view goes to the lesion in mm (LPS)."""
    import shutil

    import SimpleITK as sitk

    from tests.review.review_helpers import BRAIN

    ds = tmp_path / "Dataset002_Permuted"
    shutil.copytree(BRAIN, ds)
    for f in list((ds / "imagesTr").iterdir()) + list((ds / "labelsTr").iterdir()):
        sitk.WriteImage(sitk.DICOMOrient(sitk.ReadImage(str(f)), "SAR"), str(f))
    viewer = make_napari_viewer(show=True)
    d = ReviewDock(viewer)
    viewer.window.add_dock_widget(d)
    qtbot.keyClicks(d.path, str(ds))
    qtbot.keyClick(d.path, Qt.Key.Key_Return)
    case = d.session.current
    assert not case.result.geometry.direction_matrix.diagonal().all()  # really permuted
    _click_row(qtbot, d.lesions, 2, 1)
    les = case.changes.lesions[2]
    want = case.result.geometry.index_to_physical(les.centroid)[::-1]  # LPS mm, z y x
    np.testing.assert_allclose(viewer.dims.point[-3:], want, atol=2.0)
    np.testing.assert_allclose(les.centroid_mm, want[::-1])
    # shown like the reader shows the file: array axes along world axes, so napari's
    # slices are axial, coronal and sagittal planes
    for layer in viewer.layers:
        m = layer.affine.affine_matrix[:3, :3]
        np.testing.assert_allclose(np.abs(m), np.eye(3), atol=1e-9)


def test_review_an_export_made_by_the_export_button(make_napari_viewer, qtbot, tmp_path):
    """The Synthesise tab's Export, then the Review dock on what it wrote: step, reject,
    and `lesionmix remove-rejected` leaves a dataset `lesionmix verify` accepts."""
    from napari_lesionmix._widgets.synth_dock import SynthDock
    from napari_lesionmix.cli import main
    from tests.gui.gui_helpers import click, type_into, wait_done

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-lesionmix", "brain_mr")
    synth = SynthDock(viewer)
    viewer.window.add_dock_widget(synth, name="Synthesise")
    out = tmp_path / "Dataset003_FromExport"
    type_into(qtbot, synth.n_cases, "3")
    type_into(qtbot, synth.output, str(out))
    click(qtbot, synth.export_btn)
    wait_done(qtbot, synth, 180000)
    assert (out / "manifest.json").is_file()

    dock = ReviewDock(viewer)
    viewer.window.add_dock_widget(dock, name="Review")
    qtbot.keyClicks(dock.path, str(out / "dataset.json"))
    qtbot.keyClick(dock.path, Qt.Key.Key_Return)
    rows = {r.name: r for r in dock.session.visible()}
    synthesised = sorted(n for n, r in rows.items() if r.kind == "synthesised")
    assert len(synthesised) == 3 and all(rows[n].source for n in synthesised)
    while dock.session.current.name != synthesised[0]:
        press(qtbot, dock, Qt.Key.Key_PageDown)
    case = dock.session.current
    assert case.source is not None and case.provenance is not None
    assert dock.lesions.rowCount() == len(case.changes.lesions)
    qtbot.keyClicks(dock.note, "looks wrong")
    qtbot.mouseClick(dock.reject_btn, Qt.MouseButton.LeftButton)
    assert main(["remove-rejected", str(out)]) == 0
    assert main(["verify", str(out)]) == 0
    assert not (out / "labelsTr" / f"{synthesised[0]}.nii.gz").exists()


def test_the_three_plane_view_follows_the_lesion_clicked(dock, qtbot):
    _, planes = dock.viewer.window.add_plugin_dock_widget("napari-lesionmix",
                                                          "Three-plane view")
    click_case(qtbot, dock, "brain02_lmix0001")
    case = dock.session.current
    k = max(range(len(case.changes.lesions)), key=lambda i: case.changes.lesions[i].voxels)
    _click_row(qtbot, dock.lesions, k, 1)
    want = case.result.geometry.index_to_physical(case.changes.lesions[k].centroid)[::-1]
    for model in planes.models.values():
        np.testing.assert_allclose(model.dims.point[-3:], want, atol=2.0)
        assert any(layer.name == NAMES["lesions"] for layer in model.layers)
