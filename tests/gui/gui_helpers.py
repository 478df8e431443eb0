"""Helpers of the GUI tests: synthetic cases as napari layers, and operating the widgets
as a person does (mouse clicks on buttons, boxes, lists, sliders and the canvas; typing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import QPoint, Qt
from qtpy.QtGui import QImage
from qtpy.QtWidgets import QApplication, QStyle, QStyleOptionSlider

from napari_lesionmix._layers import layer_kwargs
from napari_lesionmix.core.case import Case
from napari_lesionmix.core.geometry import Geometry

MANIFEST = Path(__file__).resolve().parents[2] / "napari_lesionmix" / "napari.yaml"
LEFT = Qt.MouseButton.LeftButton


def synthetic_case(shape=(24, 48, 48), centres=((12, 16, 16), (12, 32, 32), (8, 16, 34)),
                   radius=3.0, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                   organ=False, direction=None) -> Case:
    """A bright ellipsoid (the 'brain' or 'liver') with dark spherical lesions.

    Lesions are label 1 (label 2 with ``organ``, the ellipsoid then being label 1).
    ``spacing`` and ``origin`` are in SimpleITK order (x, y, z).
    """
    rng = np.random.default_rng(0)
    grid = np.indices(shape, dtype=np.float32)
    c = (np.array(shape) - 1) / 2
    r = sum(((g - m) / (0.48 * n)) ** 2 for g, m, n in zip(grid, c, shape))
    fg = r <= 1
    img = np.where(fg, 100 + 20 * grid[-1] / shape[-1] + rng.normal(0, 2, shape), 0)
    labels = np.zeros(shape, np.uint8)
    if organ:
        labels[fg] = 1
    for centre in centres:
        d = sum((g - m) ** 2 for g, m in zip(grid, centre)) <= radius ** 2
        labels[d] = 2 if organ else 1
        img[d] = 40 + rng.normal(0, 2, int(d.sum()))
    direction = tuple(np.eye(len(shape)).ravel()) if direction is None else direction
    geometry = Geometry(spacing, origin, direction)
    return Case.from_arrays(img.astype(np.float32), labels, geometry, name="synthetic")


def add_case(viewer, case: Case, image_dtype=np.float32, names=("image", "labels")):
    """Add a case to a viewer as an Image and a Labels layer carrying its geometry."""
    img = viewer.add_image(case.channels[0].astype(image_dtype),
                           **layer_kwargs(case.geometry, names[0]))
    lab = viewer.add_labels(case.labels.copy(), **layer_kwargs(case.geometry, names[1]))
    return img, lab


def wait_done(qtbot, dock, timeout=20000):
    """Block until every worker the dock started has finished."""
    qtbot.waitUntil(lambda: not dock.workers, timeout=timeout)


# ------------------------------------------------------------------ operating widgets
def click(qtbot, widget, pos: QPoint | None = None) -> None:
    """A left click on a widget (its centre, or ``pos``)."""
    qtbot.mouseClick(widget, LEFT, pos=pos if pos is not None else widget.rect().center())


def click_layer_eye(qtbot, viewer, layer) -> None:
    """Click the eye (visibility box) of ``layer``'s row in napari's layer list."""
    from qtpy.QtWidgets import QStyleOptionViewItem

    view = viewer.window._qt_viewer.layers
    model = view.model()
    from napari._qt.containers._base_item_model import ItemRole

    index = next(model.index(r, 0) for r in range(model.rowCount())
                 if model.index(r, 0).data(ItemRole) is layer)
    view.scrollTo(index)
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    view.itemDelegate().initStyleOption(option, index)
    box = view.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator,
                                      option, view)
    qtbot.mouseClick(view.viewport(), LEFT, pos=box.center())


def tick(qtbot, box) -> None:
    """Click a check box or radio button on its indicator."""
    qtbot.mouseClick(box, LEFT, pos=QPoint(6, box.height() // 2))


def type_into(qtbot, box, text: str) -> None:
    """Select a spin box's or line edit's text, type ``text`` and press Enter."""
    box.setFocus()
    edit = box.lineEdit() if hasattr(box, "lineEdit") else box
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def choose(qtbot, combo, text: str) -> None:
    """Open a combo box with a click, walk to the entry that shows ``text`` with the
    arrow keys and press Enter."""
    qtbot.mouseClick(combo, LEFT)
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=2000)
    index = combo.findText(text)
    assert index >= 0, f"{text!r} is not offered"
    qtbot.keyClick(view, Qt.Key.Key_Home)
    for _ in range(index):
        qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=2000)
    assert combo.currentText() == text, (combo.currentText(), text)


def click_row(qtbot, table, row: int) -> None:
    """Click a table's row."""
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), LEFT, pos=rect.center())


def click_item(qtbot, listwidget, text: str) -> None:
    """Click the item of a list widget that shows ``text``."""
    [item] = listwidget.findItems(text, Qt.MatchFlag.MatchExactly)
    qtbot.mouseClick(listwidget.viewport(), LEFT, pos=listwidget.visualItemRect(item).center())


def drag_slider(qtbot, labeled, value: float) -> None:
    """Drag the handle of a superqt labeled slider to ``value`` with the mouse."""
    slider = labeled._slider
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                           QStyle.SubControl.SC_SliderHandle, slider)
    groove = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                           QStyle.SubControl.SC_SliderGroove, slider)
    lo, hi = slider.minimum(), slider.maximum()
    span = groove.width() - handle.width()
    x = groove.x() + handle.width() / 2 + span * (value - lo) / (hi - lo)
    start = handle.center()
    qtbot.mousePress(slider, LEFT, pos=start)
    for f in (0.25, 0.5, 0.75, 1.0):
        pos = QPoint(int(round(start.x() + (x - start.x()) * f)), start.y())
        qtbot.mouseMove(slider, pos)
    qtbot.mouseRelease(slider, LEFT, pos=QPoint(int(round(x)), start.y()))


def canvas_pixel(viewer, world) -> QPoint:
    """The canvas pixel (Qt coordinates) where a world point of the displayed plane is."""
    canvas = viewer.window._qt_viewer.canvas.native
    camera = viewer.scene.camera
    displayed = list(viewer.dims.displayed)
    w = np.asarray(world, float)[displayed]
    centre = np.asarray(camera.center, float)[-2:]
    vertical, horizontal = (str(v) for v in camera.orientation2d)
    dy = (w[0] - centre[0]) * camera.zoom * (1 if vertical == "down" else -1)
    dx = (w[1] - centre[1]) * camera.zoom * (1 if horizontal == "right" else -1)
    return QPoint(int(round(canvas.width() / 2 + dx)), int(round(canvas.height() / 2 + dy)))


def click_canvas(qtbot, viewer, world) -> None:
    """A left click on the canvas at a world point of the displayed plane; napari's cursor
    is checked to be over that point first."""
    canvas = viewer.window._qt_viewer.canvas.native
    QApplication.processEvents()  # the canvas has its size and the camera its place
    pos = canvas_pixel(viewer, world)
    assert 0 <= pos.x() < canvas.width() and 0 <= pos.y() < canvas.height(), "off the canvas"
    move_mouse(canvas, pos)
    shown = np.asarray(viewer.cursor.position, float)[list(viewer.dims.displayed)]
    want = np.asarray(world, float)[list(viewer.dims.displayed)]
    assert np.allclose(shown, want, atol=1.0 / viewer.scene.camera.zoom + 1e-6), (shown, want)
    qtbot.mousePress(canvas, LEFT, pos=pos)
    qtbot.mouseRelease(canvas, LEFT, pos=pos)
    QApplication.processEvents()


def move_mouse(widget, pos: QPoint) -> None:
    """Move the mouse over ``widget`` to ``pos`` (a mouse-move event, no button held)."""
    from qtpy.QtCore import QEvent, QPointF
    from qtpy.QtGui import QMouseEvent

    local = QPointF(pos)
    event = QMouseEvent(QEvent.Type.MouseMove, local, QPointF(widget.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    QApplication.processEvents()


def press_keys(qtbot, viewer, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press a key with the canvas focused, as a person at the keyboard does."""
    window = viewer.window._qt_window
    window.activateWindow()
    window.raise_()
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    QApplication.processEvents()
    qtbot.keyClick(canvas, key, modifier)
    QApplication.processEvents()


def grab_widget(widget) -> np.ndarray:
    """What a widget shows on the screen, children included (a canvas and the letters
    over it), as an (H, W, 3) int array."""
    QApplication.processEvents()
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits().asstring(image.sizeInBytes())
                         if hasattr(image.constBits(), "asstring")
                         else bytes(image.constBits()), np.uint8)
    return data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).astype(int)
