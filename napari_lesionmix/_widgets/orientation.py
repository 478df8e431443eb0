"""Orientation letters on the canvas edges, and a camera that keeps the patient upright.

With the layers' affines (:mod:`napari_lesionmix._layers`) napari's world axes are ITK's
physical LPS axes in z, y, x order: world axis 0 runs to the patient's superior (S),
axis 1 to posterior (P), axis 2 to the patient's left (L). So the letters on each edge
follow from the displayed axes and the camera's orientation alone:
:func:`edge_letters`. :func:`upright` is the orientation that shows superior (or, in an
axial view, anterior) at the top and the patient's right on the screen's left, the
radiological convention, for axial, coronal and sagittal planes alike.

The letters are small, on a translucent box at the very edge, so that an image filling
the view stays readable under them. They are Qt labels over the canvas (the same in the
main canvas and the three-plane view): a new canvas pays no OpenGL text rendering for
them (about 0.1 s a letter on a software OpenGL), and they are in a screenshot of the
window. A viewer without a Qt canvas gets napari text overlays instead.
"""

from __future__ import annotations

import weakref
from typing import Any

from .._layers import GEOMETRY_KEY

__all__ = ["OrientationLetters", "OverlayLetters", "WidgetLetters", "edge_letters",
           "keep_physical_handedness", "letter_margin", "upright"]

#: the letter at the positive and at the negative end of each world axis (z, y, x)
POSITIVE = ("S", "P", "L")
NEGATIVE = ("I", "A", "R")
EDGES = {"top": "top_center", "bottom": "bottom_center", "left": "middle_left",
         "right": "middle_right"}
LETTER_COLOUR = "#ffd166"
#: the letters' box: black at 45 %, so the anatomy under a letter stays visible
BOX_RGBA = (0.0, 0.0, 0.0, 0.45)
FONT_PT = 11  # napari overlays
FONT_PX = 12  # Qt labels
#: room a fitted view leaves on each side for the letters (screen pixels)
LETTER_ROOM_PX = 18


def letter_margin(canvas_size) -> float:
    """The ``margin`` for napari's ``reset_view`` that leaves :data:`LETTER_ROOM_PX` free
    on each side of a canvas of ``canvas_size`` (pixels), so that the letters of a fitted
    view sit beside the anatomy, not on it (napari's default is 0.05).

    Examples
    --------
    >>> round(letter_margin((170, 310)), 3), letter_margin((2000, 2000))
    (0.212, 0.05)
    """
    smallest = max(float(min(canvas_size)), 1.0)
    return float(min(max(2 * LETTER_ROOM_PX / smallest, 0.05), 0.4))


def edge_letters(displayed: tuple[int, int], orientation2d: tuple[str, str]) -> dict:
    """The letters on the four edges of a 2D view.

    Parameters
    ----------
    displayed : (int, int)
        The world axes (0 = z, 1 = y, 2 = x) shown vertically and horizontally.
    orientation2d : (str, str)
        The camera's ``("down" | "up", "right" | "left")``: where growing values go.

    Returns
    -------
    dict
        ``{"top", "bottom", "left", "right"}`` -> letter.

    Examples
    --------
    >>> edge_letters((1, 2), ("down", "right"))  # axial
    {'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
    >>> edge_letters((0, 2), ("up", "right"))  # coronal, upright
    {'top': 'S', 'bottom': 'I', 'left': 'R', 'right': 'L'}
    """
    row, col = displayed
    vertical, horizontal = (str(v) for v in orientation2d)
    top = NEGATIVE[row] if vertical == "down" else POSITIVE[row]
    left = NEGATIVE[col] if horizontal == "right" else POSITIVE[col]
    flip = dict(zip(POSITIVE + NEGATIVE, NEGATIVE + POSITIVE))
    return {"top": top, "bottom": flip[top], "left": left, "right": flip[left]}


def upright(displayed: tuple[int, int]) -> tuple[str, str]:
    """The 2D orientation that shows a plane upright: superior at the top (anterior in an
    axial view) and the patient's right on the screen's left.

    Examples
    --------
    >>> upright((1, 2)), upright((0, 2)), upright((0, 1))
    (('down', 'right'), ('up', 'right'), ('up', 'right'))
    """
    return ("up" if displayed[0] == 0 else "down"), "right"


def keep_physical_handedness(camera: Any, displayed: tuple[int, int, int]) -> None:
    """Turn a 3D camera's depth axis so that the view is not a mirror image of the
    patient: world axes z, y, x are LPS's S, P, L in reverse (left-handed) order, while
    napari's default orientation draws the displayed axes right-handed. With this, the
    patient's left is on the screen's right when seen from the front, as in a photograph.

    Parameters
    ----------
    camera : napari Camera
    displayed : (int, int, int)
        The displayed world axes (z, y, x numbering), in the order napari shows them.
    """
    from napari.utils.camera_orientations import Handedness

    inversions = sum(a > b for i, a in enumerate(displayed) for b in displayed[i + 1:])
    need = Handedness.LEFT if inversions % 2 == 0 else Handedness.RIGHT
    if camera.handedness != need:
        depth = "away" if str(camera.orientation[0]) == "towards" else "towards"
        camera.orientation = (depth, *camera.orientation[1:])


def _physical(viewer: Any) -> bool:
    """True when a 3D layer of the viewer carries a LesionMix geometry (world = LPS mm)."""
    return any(GEOMETRY_KEY in lay.metadata and lay.ndim == 3 for lay in viewer.layers)


class OverlayLetters:
    """The letters as napari text overlays of a viewer's canvas (they are part of its
    screenshots): small, on a translucent box, so the anatomy under them stays visible.
    """

    def __init__(self, viewer: Any):
        from napari.components.overlays import TextOverlay

        self.items = {}
        for edge, position in EDGES.items():
            overlay = TextOverlay(position=position, font_size=FONT_PT, color=LETTER_COLOUR,
                                  box=True, box_color=BOX_RGBA, visible=False)
            viewer.canvas.overlays[f"lesionmix_{edge}"] = overlay
            self.items[edge] = overlay

    def show(self, letters: dict | None) -> None:
        for edge, overlay in self.items.items():
            if letters is None:
                overlay.visible = False
            else:
                overlay.text = letters[edge]
                overlay.visible = True

    def texts(self) -> dict:
        return {e: o.text for e, o in self.items.items() if o.visible}


class WidgetLetters:
    """The letters as Qt labels over a canvas widget, at its very edges: nothing is drawn
    by OpenGL (a new canvas pays no text rendering), and clicks go through them."""

    def __init__(self, widget: Any):
        from qtpy.QtCore import QObject, Qt
        from qtpy.QtWidgets import QLabel

        self.items = {}
        r, g, b, a = BOX_RGBA
        style = (f"QLabel {{ color: {LETTER_COLOUR}; font-weight: bold; font-size: "
                 f"{FONT_PX}px; padding: 0px 2px; background-color: "
                 f"rgba({int(r * 255)}, {int(g * 255)}, {int(b * 255)}, {int(a * 255)}); }}")
        for edge in EDGES:
            label = QLabel(widget)
            label.setStyleSheet(style)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.hide()
            self.items[edge] = label
        me = weakref.ref(self)

        class _Placer(QObject):
            def eventFilter(self, obj, event):  # noqa: N802 - Qt API
                letters = me()
                if letters is not None and event.type() in (event.Type.Resize,
                                                             event.Type.Show):
                    letters.place()
                return False

        self._widget = widget
        self._placer = _Placer(widget)
        widget.installEventFilter(self._placer)

    def show(self, letters: dict | None) -> None:
        for edge, label in self.items.items():
            if letters is None:
                label.hide()
            else:
                label.setText(letters[edge])
                label.adjustSize()
                label.show()
        self.place()

    def place(self) -> None:
        """Put each label at its edge of the widget (1 px in)."""
        w, h = self._widget.width(), self._widget.height()
        for edge, label in self.items.items():
            lw, lh = label.width(), label.height()
            x = {"left": 1, "right": w - lw - 1}.get(edge, (w - lw) // 2)
            y = {"top": 1, "bottom": h - lh - 1}.get(edge, (h - lh) // 2)
            label.move(max(x, 0), max(y, 0))
            label.raise_()

    def texts(self) -> dict:
        return {e: lab.text() for e, lab in self.items.items() if not lab.isHidden()}


class OrientationLetters:
    """Letters on the edges of a viewer's canvas that follow the displayed plane; the
    camera is kept upright when the plane changes.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    keep_upright : bool
        Turn the camera so that each plane shows upright (:func:`upright`).
    widget : QWidget, optional
        Draw the letters as Qt labels over this widget (the canvas's native widget)
        instead of napari overlays of the viewer's canvas.

    Attributes
    ----------
    drawer : OverlayLetters or WidgetLetters
        ``drawer.items``: edge -> its overlay or label.
    """

    def __init__(self, viewer: Any, keep_upright: bool = True, widget: Any = None):
        self._viewer = weakref.ref(viewer)
        self.keep_upright = keep_upright
        self.drawer = OverlayLetters(viewer) if widget is None else WidgetLetters(widget)
        me = weakref.ref(self)

        def update(*_):
            letters = me()
            if letters is not None:
                letters.update()

        viewer.dims.events.order.connect(update)
        viewer.dims.events.ndisplay.connect(update)
        viewer.dims.events.ndim.connect(update)
        viewer.layers.events.inserted.connect(update)
        viewer.layers.events.removed.connect(update)
        viewer.scene.camera.events.orientation.connect(update)
        self.update()

    @property
    def overlays(self) -> dict:
        """Edge -> the napari overlay (or Qt label) that shows its letter."""
        return self.drawer.items

    def texts(self) -> dict:
        """Edge -> the letter shown there (empty when none is shown)."""
        return self.drawer.texts()

    def displayed(self) -> tuple[int, int] | None:
        """The world axes (z, y, x numbering) shown vertically and horizontally, or None
        when the view is 3D or the data are not 3D physical images."""
        viewer = self._viewer()
        if viewer is None or viewer.dims.ndisplay != 2 or viewer.dims.ndim < 3:
            return None
        if not _physical(viewer):
            return None
        offset = viewer.dims.ndim - 3
        axes = tuple(d - offset for d in viewer.dims.displayed)
        return axes if all(0 <= a < 3 for a in axes) else None

    def update(self) -> None:
        """Show the letters of the displayed plane (none in 3D or for 2D data); a 3D view
        of physical images is kept from showing a mirror image."""
        viewer = self._viewer()
        shown = self.displayed()
        if viewer is None:
            return
        if (self.keep_upright and viewer.dims.ndisplay == 3 and viewer.dims.ndim >= 3
                and _physical(viewer)):
            offset = viewer.dims.ndim - 3
            axes = tuple(d - offset for d in viewer.dims.displayed)
            if all(0 <= a < 3 for a in axes):
                keep_physical_handedness(viewer.scene.camera, axes)
        if shown is None:
            self.drawer.show(None)
            return
        camera = viewer.scene.camera
        if self.keep_upright and tuple(camera.orientation2d) != upright(shown):
            camera.orientation2d = upright(shown)  # emits orientation -> update again
            return
        self.drawer.show(edge_letters(shown, tuple(camera.orientation2d)))
