"""The Augment dock: live preview in the lesion's neighbourhood, Apply, Undo, Reset."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import add_case

from napari_lesionmix._widgets._state import get_state
from napari_lesionmix._widgets.augment_dock import AugmentDock
from napari_lesionmix._widgets.case_dock import CaseDock
from napari_lesionmix.core.transforms import sample_params


@pytest.fixture
def setup(make_napari_viewer, case3d):
    """Viewer with the case, Case and Augment docks, lesion 0 selected."""
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d)
    CaseDock(viewer)
    dock = AugmentDock(viewer)
    st = get_state(viewer)
    st.select(0)
    return viewer, dock, st, img, lab


def _changed_box(before, after):
    idx = np.argwhere(before != after)
    return idx.min(axis=0), idx.max(axis=0)


def _free_location(st):
    """A voxel in the foreground, away from every lesion, where the tissue is like lesion
    0's own surroundings (the image ramps along x: about its x), so the engine accepts it."""
    return (16, 20, 36)


def test_add_preview_touches_only_the_neighbourhood(setup):
    viewer, dock, st, img, lab = setup
    img0, lab0 = img.data.copy(), lab.data.copy()
    loc = _free_location(st)
    st.set_location(loc)
    dock.update_preview()
    assert st.has_preview
    assert "would accept" in dock.status.text(), dock.status.text()
    lo, hi = _changed_box(img0, img.data)
    # every change within a few voxels of the location (lesion radius 3 + blend + margin)
    assert np.all(np.asarray(loc) - lo <= 8) and np.all(hi - np.asarray(loc) <= 8)
    assert (lab.data != lab0).sum() == (lab.data[lab0 == 0] == 1).sum() > 0
    # a scale change makes it bigger, still around the location
    n_small = int((lab.data != lab0).sum())
    dock.grid.sliders["scale"].setValue(1.6)
    dock.update_preview()
    n_big = int((lab.data != lab0).sum())
    assert n_big > 2 * n_small
    lo, hi = _changed_box(img0, img.data)
    assert np.all(np.asarray(loc) - lo <= 12) and np.all(hi - np.asarray(loc) <= 12)
    # clearing the preview restores the data bit for bit
    dock.clear()
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)


def test_refused_location_is_explained(setup):
    viewer, dock, st, img, lab = setup
    st.set_location(tuple(int(round(c)) for c in st.lesions[1].centroid))
    dock.update_preview()
    assert "refuse" in dock.status.text() and "touches an existing lesion" in dock.status.text()
    st.set_location((12, 5, 5))  # background, off the volume border
    dock.update_preview()
    assert "inside the allowed region" in dock.status.text()


def test_apply_undo_reset(setup):
    viewer, dock, st, img, lab = setup
    img0, lab0 = img.data.copy(), lab.data.copy()
    st.set_location(_free_location(st))
    dock.update_preview()
    assert dock.apply()
    assert len(st.lesions) == 4 and len(st.undo_stack) == 1 and not st.has_preview
    img1, lab1 = img.data.copy(), lab.data.copy()
    assert (lab1 != lab0).any()
    # second change: remove lesion 2
    dock.remove_mode.setChecked(True)
    st.select(2)
    dock.update_preview()
    assert dock.apply()
    assert len(st.lesions) == 3 and len(st.undo_stack) == 2
    dock.undo()
    assert np.array_equal(img.data, img1) and np.array_equal(lab.data, lab1)
    dock.reset()
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)
    assert st.undo_stack == [] and len(st.lesions) == 3


def test_remove_preview_and_methods(setup):
    viewer, dock, st, img, lab = setup
    img0, lab0 = img.data.copy(), lab.data.copy()
    lesion = st.lesions[0]
    dock.remove_mode.setChecked(True)
    results = {}
    for method in ("slices", "slice-axis", "3d"):
        dock.method.setCurrentText(method)
        dock.update_preview()
        assert st.recipe.inpaint.method == method
        assert not (lab.data[lesion.bbox] == 1).any()  # the lesion is gone
        lo, hi = _changed_box(img0, img.data)
        box_lo = np.array([s.start for s in lesion.bbox]) - 6
        box_hi = np.array([s.stop for s in lesion.bbox]) + 6
        assert np.all(lo >= box_lo) and np.all(hi <= box_hi)
        results[method] = img.data[lesion.bbox].copy()
    assert not np.array_equal(results["slices"], results["3d"])
    dock.clear()
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)


def test_int16_image_undo_is_bit_exact(make_napari_viewer, case3d):
    viewer = make_napari_viewer()
    img, lab = add_case(viewer, case3d, image_dtype=np.int16)
    CaseDock(viewer)
    dock = AugmentDock(viewer)
    st = get_state(viewer)
    assert not np.shares_memory(st.case.channels, img.data)  # int16 -> a float32 copy
    img0, lab0 = img.data.copy(), lab.data.copy()
    st.select(1)
    st.set_location((12, 24, 8))
    dock.grid.sliders["brightness"].setValue(1.3)
    dock.update_preview()
    assert (img.data != img0).any()
    dock.apply()
    dock.undo()
    assert np.array_equal(img.data, img0) and np.array_equal(lab.data, lab0)
    assert img.data.dtype == np.int16


def test_randomise_uses_sample_params_with_the_shown_seed(setup):
    viewer, dock, st, img, lab = setup
    dock.on_randomise()
    seed = dock.seed.value()
    expected = sample_params(np.random.default_rng(seed), st.recipe.populate, 3)
    assert dock.params == expected
    shown = dock.grid.params(dock.params)
    assert shown.flip == expected.flip
    assert np.allclose(shown.rotate, expected.rotate, atol=0.06)
    assert abs(shown.scale - expected.scale) < 0.006


def test_batch_ranges_edit_the_recipe(setup, notes):
    viewer, dock, st, img, lab = setup
    dock.grid.batch["scale[1]"].setValue(1.2)
    assert st.recipe.populate.scale == (0.5, 1.2)
    dock.grid.batch["flip_p"].setValue(0.25)
    assert st.recipe.populate.flip_p == 0.25
    dock.grid.batch["scale[0]"].setValue(1.5)  # lo > hi: refused, shown again
    assert notes and "populate.scale" in notes[-1][1]
    assert st.recipe.populate.scale == (0.5, 1.2)
    assert dock.grid.batch["scale[0]"].value() == 0.5


def test_pick_location_with_a_click(setup):
    from napari.utils._test_utils import read_only_mouse_event
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    viewer, dock, st, img, lab = setup
    dock.pick.setChecked(True)
    assert st.click_mode == "location"
    viewer.dims.set_point(0, 12)
    mouse_press_callbacks(viewer, read_only_mouse_event(type="mouse_press",
                                                        position=(12, 24, 8)))
    mouse_release_callbacks(viewer, read_only_mouse_event(type="mouse_release",
                                                          position=(12, 24, 8)))
    assert st.location == (12, 24, 8) and st.selected == 0
    assert dock.location_label.text() == "location: (12, 24, 8)"


def test_sample_location_from_heatmap(setup):
    from napari_lesionmix.core.likelihood import LikelihoodMap

    viewer, dock, st, img, lab = setup
    prob = np.zeros(st.case.spatial_shape, np.float32)
    prob[14:18, 18:24, 34:40] = 1.0  # tissue like lesion 0's surroundings
    st.set_likelihood(LikelihoodMap(prob, st.case.geometry))
    loc = dock.sample_location()
    assert loc is not None and prob[loc] == 1.0
    assert st.location == loc


def _counter(emitter) -> list:
    seen: list = []
    emitter.connect(lambda *_: seen.append(1))
    return seen


def test_previews_redraw_the_slice_but_thumbnails_wait_for_commit(setup):
    viewer, dock, st, img, lab = setup
    st.set_location(_free_location(st))
    dock.update_preview()
    thumbs_before = [img.thumbnail.copy(), lab.thumbnail.copy()]
    counts = {(name, i): _counter(getattr(layer.events, name))
              for i, layer in enumerate((img, lab))
              for name in ("set_data", "thumbnail", "_extent_augmented")}
    for scale in (1.3, 1.6, 1.9):
        dock.grid.sliders["scale"].setValue(scale)
        dock.update_preview()
    for i in range(2):
        assert len(counts["set_data", i]) >= 3  # the displayed slice follows each preview
        assert not counts["thumbnail", i]  # no thumbnail per preview
        assert not counts["_extent_augmented", i]  # nor an extent (dims) recomputation
    assert np.array_equal(img.thumbnail, thumbs_before[0])
    assert dock.apply()
    for i, layer in enumerate((img, lab)):
        assert counts["thumbnail", i]  # once committed, the thumbnails catch up
        assert not np.array_equal(layer.thumbnail, thumbs_before[i])
        shown = layer.thumbnail.copy()
        layer.refresh()
        np.testing.assert_array_equal(layer.thumbnail, shown)  # and are up to date
    dock.undo()
    np.testing.assert_array_equal(img.thumbnail, thumbs_before[0])


def test_preview_time_does_not_relayout_the_dock(setup, qtbot):
    from qtpy.QtCore import QEvent, QObject

    viewer, dock, st, img, lab = setup
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    # every random lesion below must fit: deep in the foreground, far from the lesions,
    # without the surroundings check (this image's tissue is a ramp; the check has its
    # own tests in the engine)
    populate = {**st.recipe.to_dict()["populate"], "surround_tol": 0.0}
    st.set_recipe(st.recipe.replace(populate=populate))
    st.set_location((12, 24, 8))
    dock.update_preview()
    qtbot.wait(300)
    verdict = dock.status.text()
    assert "would accept" in verdict and "ms" not in verdict
    assert dock.timing.text().startswith("preview ") and dock.timing.text().endswith(" ms")
    assert not dock.timing.wordWrap()
    assert dock.timing.minimumSize() == dock.timing.maximumSize()  # fixed size

    class Layouts(QObject):
        n = 0

        def eventFilter(self, obj, event):  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.LayoutRequest:
                self.n += 1
            return False

    spy = Layouts()
    dock.installEventFilter(spy)
    shown = []
    dock.timing.installEventFilter(spy)
    for k in range(6):
        dock.params = sample_params(np.random.default_rng(k), st.recipe.populate, 3)
        dock.last_preview_ms = 0.0
        dock.update_preview()
        shown.append(dock.timing.text())
        qtbot.wait(1)
    assert dock.status.text() == verdict
    assert spy.n == 0, "a preview re-laid out the dock"
    # at most TIMING_HZ label updates a second: the burst shows one new time at most
    assert len(set(shown)) <= 2
    qtbot.wait(400)
    assert dock.timing.text() == f"preview {dock.last_preview_ms:.0f} ms"
