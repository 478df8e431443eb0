"""What the canvas shows (Xvfb), pixel by pixel: orientation against the anatomy,
orientation letters, the heatmap over the image and the labels, the preview."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from gui_helpers import add_case, canvas_pixel, click, grab_widget, synthetic_case
from qtpy.QtWidgets import QApplication

from napari_lesionmix._demo import open_demo
from napari_lesionmix._widgets.panel import LesionMixPanel
from napari_lesionmix._widgets.viewer_link import get_link
from napari_lesionmix.core.likelihood import LikelihoodMap
from napari_lesionmix.sample_data import sample_paths


def _shot(viewer):
    QApplication.processEvents()
    return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)


def _window(shot, rc, r=2):
    return shot[rc.y() - r: rc.y() + r + 1, rc.x() - r: rc.x() + r + 1]


@pytest.fixture
def brain(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    viewer, docks = open_demo(viewer, "brain_mr", planes=False)
    QApplication.processEvents()
    return viewer, docks


def test_an_axial_slice_of_the_brain_shows_anterior_up_and_right_on_the_left(brain):
    viewer, docks = brain
    image = viewer.layers[0]
    for layer in list(viewer.layers)[1:]:
        layer.visible = False
    z = float(image.data_to_world((47, 58, 49))[0])
    viewer.dims.set_point(0, z)
    viewer.reset_view()
    camera = viewer.scene.camera
    assert tuple(str(v) for v in camera.orientation2d) == ("down", "right")
    shot = _shot(viewer)
    # the anatomy as SimpleITK puts it in LPS order, independently of the plugin
    lps = sitk.DICOMOrient(sitk.ReadImage(str(sample_paths("brain_mr")[0][0][0])), "LPS")
    grid = sitk.GetArrayFromImage(lps).astype(float)
    rng = np.random.default_rng(0)
    rendered, truth, flipped = [], [], []
    canvas = viewer.window._qt_viewer.canvas.native
    while len(rendered) < 300:
        y, x = rng.uniform(-90, 60), rng.uniform(-70, 70)  # mm, LPS
        pix = canvas_pixel(viewer, (z, y, x))
        if not (2 <= pix.x() < canvas.width() - 2 and 2 <= pix.y() < canvas.height() - 2):
            continue
        idx = lps.TransformPhysicalPointToIndex((x, y, z))
        mirrored = lps.TransformPhysicalPointToIndex((x, 2 * 18.0 - y, z))  # A <-> P
        if not all(0 <= i < n for i, n in zip(idx + mirrored, lps.GetSize() * 2)):
            continue
        if grid[idx[::-1]] <= 0 or grid[mirrored[::-1]] <= 0:
            continue  # inside the brain both ways: the anatomy, not the outline, decides
        rendered.append(_window(shot, pix, 0).mean())
        truth.append(grid[idx[::-1]])
        flipped.append(grid[mirrored[::-1]])
    right = np.corrcoef(rendered, truth)[0, 1]
    wrong = np.corrcoef(rendered, flipped)[0, 1]
    assert right > 0.9 and wrong < right - 0.4, (right, wrong)


def test_orientation_letters_are_drawn_on_the_edges(brain):
    viewer, docks = brain
    letters = get_link(viewer).letters
    assert letters.texts() == {
        "top": "A", "bottom": "P", "left": "R", "right": "L"}
    canvas = viewer.window._qt_viewer.canvas.native
    with_letters = grab_widget(canvas)
    for label in letters.overlays.values():
        label.hide()
    without = grab_widget(canvas)
    changed = np.abs(with_letters - without).sum(axis=-1) > 60
    h, w = changed.shape
    assert changed[: h // 8, w // 3: 2 * w // 3].any()  # top: A
    assert changed[-h // 8:, w // 3: 2 * w // 3].any()  # bottom: P
    assert changed[h // 3: 2 * h // 3, : w // 8].any()  # left: R
    assert changed[h // 3: 2 * h // 3, -w // 8:].any()  # right: L
    # at the very edge, small, on a translucent box: the image under a letter shows
    rows, cols = np.nonzero(changed[h // 3: 2 * h // 3, : w // 8])
    assert cols.min() < 14 and np.ptp(rows) < 20 and np.ptp(cols) < 20
    # with the image filling the view, the anatomy under a letter's box stays visible
    viewer.scene.camera.zoom *= 4
    for label in letters.overlays.values():
        label.show()
    with_letters = grab_widget(canvas)
    for label in letters.overlays.values():
        label.hide()
    without = grab_widget(canvas)
    box = letters.overlays["left"].geometry()
    inside = (slice(box.top(), box.bottom()), slice(box.left(), box.right()))
    under, over = without[inside].mean(axis=-1), with_letters[inside].mean(axis=-1)
    glyph = with_letters[inside][..., 0] - with_letters[inside][..., 2] > 40  # yellow
    boxed = (under > 60) & ~glyph
    assert boxed.sum() > 10
    assert 0.35 < np.median(over[boxed] / under[boxed]) < 0.75  # dimmed, not hidden
    # coronal: superior up
    viewer.dims.order = (1, 0, 2)
    assert letters.texts()["top"] == "S" and letters.texts()["left"] == "R"


def test_the_liver_sample_shows_the_liver_on_the_screens_left(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer, docks = open_demo(viewer, "liver_ct", planes=False)
    labels = viewer.layers[1]
    liver = np.argwhere(labels.data == 1).mean(axis=0)
    viewer.dims.set_point(0, float(labels.data_to_world(liver)[0]))
    viewer.reset_view()
    with_labels = _shot(viewer)
    labels.visible = False
    without = _shot(viewer)
    cols = np.nonzero(np.abs(with_labels - without).sum(axis=(0, 2)) > 0)[0]
    weights = np.abs(with_labels - without).sum(axis=(0, 2))[cols]
    assert np.average(cols, weights=weights) < with_labels.shape[1] / 2


@pytest.fixture
def shown(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    img, lab = add_case(viewer, synthetic_case())
    panel = LesionMixPanel(viewer)
    viewer.window.add_dock_widget(panel)
    viewer.dims.set_point(0, 12)
    viewer.reset_view()
    return viewer, img, lab, get_link(viewer).session


def test_the_heatmap_is_readable_and_leaves_the_labels_alone(shown):
    viewer, img, lab, session = shown
    prob = np.zeros(session.case.spatial_shape, np.float32)
    prob[:, 20:28, 20:28] = 1.0  # over the bright image
    prob[:, 30:34, 30:34] = 0.02  # below the threshold: not drawn (a lesion is there too)
    prob[:, 0:6, 0:6] = 1.0  # outside the allowed region: not drawn
    session.set_likelihood(LikelihoodMap(prob, session.case.geometry))
    heat = get_link(viewer).heatmap.layer()
    with_map = _shot(viewer)
    heat.visible = False
    without = _shot(viewer)
    hot = canvas_pixel(viewer, (12, 24, 24))
    gain = np.abs(_window(with_map, hot) - _window(without, hot)).mean()
    assert gain > 40  # clearly visible over white matter
    for quiet in ((12, 32, 32), (12, 2.5, 2.5)):  # the lesion (labels keep their colour)
        px = canvas_pixel(viewer, quiet)
        assert np.abs(_window(with_map, px) - _window(without, px)).max() <= 2


def test_the_preview_changes_pixels_only_in_its_window_and_says_so(shown, qtbot):
    viewer, img, lab, session = shown
    session.select(0)
    loc = (12, 24, 8)
    session.set_location(loc)
    qtbot.waitUntil(lambda: session.has_preview, timeout=5000)
    preview = get_link(viewer).preview
    window = preview._window
    before = _shot(viewer)
    session.clear_preview()
    plain = _shot(viewer)
    diff = np.abs(before - plain).sum(axis=-1)
    h, w = diff.shape
    assert diff[-h // 12:, : w // 2].max() > 0  # the banner, bottom left
    diff[-h // 12:, :] = 0
    rows, cols = np.nonzero(diff > 3)
    assert rows.size > 0
    corners = [canvas_pixel(viewer, lab.data_to_world((loc[0], w1.start - 0.5, w2.start - 0.5)))
               for w1, w2 in [window[1:]]]
    far = [canvas_pixel(viewer, lab.data_to_world((loc[0], w1.stop - 0.5, w2.stop - 0.5)))
           for w1, w2 in [window[1:]]]
    top, left, bottom, right = corners[0].y(), corners[0].x(), far[0].y(), far[0].x()
    assert rows.min() >= top - 3 and rows.max() <= bottom + 3  # inside the window
    assert cols.min() >= left - 3 and cols.max() <= right + 3
    # the outlines and the banner are drawn in the preview's own colour
    cyan = before[(before[..., 0] < 80) & (before[..., 1] > 180) & (before[..., 2] > 180)]
    assert len(cyan) > 20


def test_the_letters_of_a_fitted_view_sit_beside_the_anatomy(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    viewer, docks = open_demo(viewer, "brain_mr")
    link = get_link(viewer)
    qtbot.waitUntil(lambda: link.session.case is not None and bool(link.views), timeout=20000)
    planes = link.views[0]
    qtbot.wait(300)
    click(qtbot, viewer.window._qt_viewer.viewerButtons.resetViewButton)  # napari's home
    views = [(link.letters, viewer.window._qt_viewer.canvas.native)]
    views += [(planes.letters[n], planes.canvases[n].canvas.native) for n in planes.letters]
    for letters, canvas in views:
        for label in letters.overlays.values():
            label.hide()
        bare = grab_widget(canvas)
        for label in letters.overlays.values():
            label.show()
        for edge, label in letters.overlays.items():
            box = label.geometry()
            under = bare[box.top(): box.bottom() + 1, box.left(): box.right() + 1]
            # the image's dark background (no brain, no crosshair) under every letter
            assert under.size and np.percentile(under.sum(axis=-1), 95) < 60, (edge, box)
