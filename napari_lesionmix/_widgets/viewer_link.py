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
from .orientation import OrientationLetters
from .preview_layers import PreviewLayers

__all__ = ["ViewerLink", "get_link", "notify"]

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
        self.letters = OrientationLetters(viewer)
        #: extra views that follow the session (the three-plane view registers itself)
        self.views: list = []
        install_clicks(viewer, self.session, self.layers)
        self.layers.auto_use()
        self.session.focus_requested.connect(self.show)
        self.session.message.connect(lambda level, text: notify(f"LesionMix: {text}", level))

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


def get_link(viewer: Any) -> ViewerLink:
    """The :class:`ViewerLink` of ``viewer`` (made on first use, one per viewer)."""
    link = _LINKS.get(viewer)
    if link is None:
        link = ViewerLink(viewer)
        _LINKS[viewer] = link
    return link
