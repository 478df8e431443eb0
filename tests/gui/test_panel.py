"""The LesionMix panel: the steps in order as tabs, legible and whole on a 1280×800 screen."""

from __future__ import annotations

import pytest
from gui_helpers import click
from qtpy.QtCore import QRect, Qt
from qtpy.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPushButton

from napari_lesionmix._demo import open_demo


@pytest.fixture
def small_screen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    viewer, docks = open_demo(viewer, "brain_mr")
    panel = docks["Case"].parentWidget()
    while panel is not None and not hasattr(panel, "tabs"):
        panel = panel.parentWidget()
    qtbot.waitExposed(panel)
    QApplication.processEvents()
    return viewer, docks, panel


def test_the_steps_are_tabs_in_order(small_screen, qtbot):
    viewer, docks, panel = small_screen
    titles = [panel.tabs.tabText(i) for i in range(panel.tabs.count())]
    assert titles == ["1 Case", "2 Likelihood", "3 Augment", "4 Synthesise"]
    click(qtbot, panel.tabs.tabBar(), pos=panel.tabs.tabBar().tabRect(2).center())
    assert panel.tabs.currentIndex() == 2 and docks["Augment"].isVisible()


def _too_narrow(widget) -> str:
    """Why a box cannot show its widest value ("" when it can)."""
    if isinstance(widget, QAbstractSpinBox):
        texts = [widget.textFromValue(widget.maximum()) if hasattr(widget, "textFromValue")
                 else str(widget.maximum()), widget.text()]
        room = widget.lineEdit().width()
    elif isinstance(widget, QComboBox):
        texts = [widget.itemText(i) for i in range(widget.count())]
        room = widget.width() - 24
    elif isinstance(widget, QPushButton):
        texts, room = [widget.text()], widget.width() - 8
    else:
        texts, room = [widget.text()], widget.width()
    need = max((widget.fontMetrics().horizontalAdvance(t) for t in texts if t), default=0)
    return "" if need <= room else f"{type(widget).__name__} needs {need} px, has {room}"


def test_every_box_and_button_is_legible_at_1280x800(small_screen, qtbot):
    viewer, docks, panel = small_screen
    window = viewer.window._qt_window
    assert window.width() <= 1280 and window.height() <= 800
    assert panel.height() < window.height()  # the panel fits; each tab scrolls inside
    problems = []
    for i, name in enumerate(("Case", "Likelihood", "Augment", "Synthesise")):
        panel.tabs.setCurrentIndex(i)
        QApplication.processEvents()
        scroll = panel.tabs.currentWidget()
        if docks[name].minimumSizeHint().width() > scroll.viewport().width():
            problems.append(f"{name}: needs {docks[name].minimumSizeHint().width()} px "
                            f"across, the panel has {scroll.viewport().width()}")
        for kind in (QAbstractSpinBox, QComboBox, QPushButton):
            for widget in docks[name].findChildren(kind):
                if widget.isVisibleTo(docks[name]) and not isinstance(widget, QLineEdit):
                    why = _too_narrow(widget)
                    if why:
                        problems.append(f"{name}: {widget.toolTip()[:40]!r} {why}")
    assert problems == [], "\n".join(problems)


def test_the_planes_open_beside_and_everything_fits(small_screen):
    viewer, docks, panel = small_screen
    planes = docks["Planes"]
    assert planes.isVisible() and len(planes.canvases) == 3
    canvas = viewer.window._qt_viewer.canvas.native
    assert canvas.width() >= 400 and canvas.height() >= 300  # the main view stays usable
    for plane in planes.canvases.values():
        assert plane.canvas.native.height() >= 120


def test_a_three_line_verdict_is_shown_whole_in_napari_s_font(small_screen, qtbot):
    """The Augment tab's verdict line (e.g. why the batch engine would refuse a location)
    wraps over three lines in the font napari's style sheet gives it; its last line used
    to be cut because the height was taken from the font before the style sheet."""
    viewer, docks, panel = small_screen
    click(qtbot, panel.tabs.tabBar(), pos=panel.tabs.tabBar().tabRect(2).center())
    QApplication.processEvents()
    status = docks["Augment"].status
    words = ("the batch engine would refuse this location: surroundings unlike the "
             "lesion's own (channel 0: 0.8 z away, tolerance 0.7)").split() * 4
    box = status.contentsRect()
    fm = status.fontMetrics()

    def needed(text):  # the height the wrapped text takes in the label's own font
        return fm.boundingRect(QRect(0, 0, box.width(), 10_000),
                               int(Qt.TextFlag.TextWordWrap), text).height()

    heights, text = [], ""
    for word in words:  # the shortest text that wraps over three lines at this width
        text = f"{text} {word}".strip()
        if needed(text) not in heights:
            heights.append(needed(text))
        if len(heights) == 3:
            break
    assert len(heights) == 3 and heights[2] >= 3 * fm.height()
    status.setText(text)
    QApplication.processEvents()
    assert heights[2] <= status.contentsRect().height(), (heights, status.contentsRect())
