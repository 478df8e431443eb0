"""One edit session per napari viewer, and the pieces that tie it to the viewer.

:func:`get_link` gives the :class:`ViewerLink` of a viewer (made on first use), which the
docks share:

- ``session``: the :class:`~napari_lesionmix.session.EditSession` (the model);
- ``layers``: the chosen layers, kept in step with the case (:mod:`.layer_link`);
- ``preview``: the preview's own layers (:mod:`.preview_layers`);
- ``marks``: the selection and location marks (:mod:`.canvas`);
- ``heatmap``: the likelihood map drawn over the images (:mod:`.heatmap`);
- ``letters``: the orientation letters (:mod:`.orientation`).

A click on the canvas selects a lesion or sets the location; when the session asks to
show a voxel (a lesion chosen in the table, a location sampled from the heatmap), the
view goes there. The session's messages, things the user must act on, become napari
notifications.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..session.session import EditSession
from .canvas import Marks, go_to, install_clicks
from .heatmap import Heatmap
from .layer_link import LayerLink
from .orientation import OrientationLetters, letter_margin
from .preview_layers import PreviewLayers

__all__ = ["ViewerLink", "canvas_widget", "get_link", "notify"]

_LINKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def notify(message: str, level: str = "warning") -> None:
    """Show a napari notification (``level``: info, warning or error)."""
    from napari.utils import notifications

    show = {"info": notifications.show_info, "warning": notifications.show_warning,
            "error": notifications.show_error}[level]
    show(message)


class ViewerLink:
    """The session of a viewer and what ties it to the viewer (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        Kept as a weak reference.
    """

    def __init__(self, viewer: Any):
        self._viewer = weakref.ref(viewer)
        self.session = EditSession()
        self.layers = LayerLink(viewer, self.session)
        self.preview = PreviewLayers(viewer, self.session, self.layers)
        self.marks = Marks(viewer, self.session, self.layers)
        self.heatmap = Heatmap(viewer, self.session, self.layers)
        self.letters = OrientationLetters(viewer, widget=canvas_widget(viewer))
        #: extra views that follow the session (the three-plane view registers itself)
        self.views: list = []
        self.preview.shown_elsewhere = self._preview_in_a_pane
        install_clicks(viewer, self.session, self.layers)
        viewer.events.reset_view.connect(self._room_for_letters)
        self.layers.auto_use()
        self.session.focus_requested.connect(self.show)
        self.session.message.connect(lambda level, text: notify(f"LesionMix: {text}", level))

    def _room_for_letters(self, event=None) -> None:
        """A fitted 2D view (napari's reset, margin 0.05) zoomed out a little further, so
        the orientation letters sit beside the anatomy, not on it."""
        viewer = self._viewer()
        if viewer is None or viewer.dims.ndisplay != 2:
            return
        margin = letter_margin(viewer.canvas.size)
        if margin > 0.05:
            viewer.scene.camera.zoom *= (1 - margin) / (1 - 0.05)

    def _preview_in_a_pane(self) -> bool:
        """Whether an extra view shows the preview as surfaces (a 3D pane on the screen)."""
        for view in self.views:
            pane = getattr(view, "pane3d", None)
            if pane is not None and pane.canvas.isVisible():
                return True
        return False

    @property
    def viewer(self):
        """The viewer (None once it is gone)."""
        return self._viewer()

    def show(self, index_zyx) -> None:
        """Move the viewer (and the extra views) to voxel ``index_zyx`` of the case."""
        viewer = self._viewer()
        if viewer is not None:
            go_to(viewer, self.layers.label_layer, index_zyx)
        for view in list(self.views):
            view.show(index_zyx)


def canvas_widget(viewer: Any):
    """The Qt widget of a napari viewer's canvas, or None (no window). napari has no
    public handle on it; its Qt viewer's canvas is the one every napari version has."""
    qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
    canvas = getattr(qt_viewer, "canvas", None)
    return getattr(canvas, "native", None)


def get_link(viewer: Any) -> ViewerLink:
    """The :class:`ViewerLink` of ``viewer`` (made on first use, one per viewer)."""
    link = _LINKS.get(viewer)
    if link is None:
        link = ViewerLink(viewer)
        _LINKS[viewer] = link
    return link
