"""Orientation letters on the canvas edges, and a camera that keeps the patient upright.

With the layers' affines (:mod:`napari_lesionmix._layers`) napari's world axes are ITK's
physical LPS axes in z, y, x order: world axis 0 runs to the patient's superior (S),
axis 1 to posterior (P), axis 2 to the patient's left (L). So the letters on each edge
follow from the displayed axes and the camera's orientation alone:
:func:`edge_letters`. :func:`upright` is the orientation that shows superior (or, in an
axial view, anterior) at the top and the patient's right on the screen's left, the
radiological convention, for axial, coronal and sagittal planes alike.
"""

from __future__ import annotations

import weakref
from typing import Any

from .._layers import GEOMETRY_KEY

__all__ = ["OrientationLetters", "edge_letters", "upright"]

#: the letter at the positive and at the negative end of each world axis (z, y, x)
POSITIVE = ("S", "P", "L")
NEGATIVE = ("I", "A", "R")
EDGES = {"top": "top_center", "bottom": "bottom_center", "left": "middle_left",
         "right": "middle_right"}


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


def _physical(viewer: Any) -> bool:
    """True when a 3D layer of the viewer carries a LesionMix geometry (world = LPS mm)."""
    return any(GEOMETRY_KEY in lay.metadata and lay.ndim == 3 for lay in viewer.layers)


class OrientationLetters:
    """Letters on the edges of a viewer's canvas that follow the displayed plane; the
    camera is kept upright when the plane changes.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    keep_upright : bool
        Turn the camera so that each plane shows upright (:func:`upright`).
    """

    def __init__(self, viewer: Any, keep_upright: bool = True):
        from napari.components.overlays import TextOverlay

        self._viewer = weakref.ref(viewer)
        self.keep_upright = keep_upright
        self.overlays = {}
        for edge, position in EDGES.items():
            overlay = TextOverlay(position=position, font_size=14, color="#ffd166",
                                  visible=False)
            viewer.canvas.overlays[f"lesionmix_{edge}"] = overlay
            self.overlays[edge] = overlay
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
        """Show the letters of the displayed plane (none in 3D or for 2D data)."""
        viewer = self._viewer()
        shown = self.displayed()
        if viewer is None:
            return
        if shown is None:
            for overlay in self.overlays.values():
                overlay.visible = False
            return
        camera = viewer.scene.camera
        if self.keep_upright and tuple(camera.orientation2d) != upright(shown):
            camera.orientation2d = upright(shown)  # emits orientation -> update again
            return
        letters = edge_letters(shown, tuple(camera.orientation2d))
        for edge, overlay in self.overlays.items():
            overlay.text = letters[edge]
            overlay.visible = True
