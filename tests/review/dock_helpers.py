"""Helpers of the Review dock tests: operate it as a person does."""

from __future__ import annotations

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QApplication


def press(qtbot, dock, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press a key with the canvas focused, as a person looking at the image does."""
    window = dock.viewer.window._qt_window
    window.activateWindow()
    window.raise_()
    canvas = dock.viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    QApplication.processEvents()
    qtbot.keyClick(canvas, key, modifier)
    QApplication.processEvents()


def cell(table, row: int, key: str) -> str:
    return table.item(row, table.keys.index(key)).text()


def click_row(qtbot, table, row: int, col: int = 0) -> None:
    table.scrollToItem(table.item(row, col))
    rect = table.visualItemRect(table.item(row, col))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_case(qtbot, dock, name: str) -> None:
    """Click the case's row in the case table (it opens the case)."""
    click_row(qtbot, dock.cases, dock.cases.names.index(name))
    assert dock.session.current.name == name


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def grid(viewer):
    """napari's grid (moved to viewer.canvas in 0.9)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def answer_next_box(qtbot, button_text: str, seen: list) -> None:
    """When the next modal box shows, click its button whose text starts with
    ``button_text``; its text is appended to ``seen``."""

    def answer():
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(50, answer)
            return
        seen.append(box.text())
        (button,) = [b for b in box.buttons() if b.text().replace("&", "")
                     .startswith(button_text)]
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(50, answer)
