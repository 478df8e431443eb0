"""The preview in its own layers, drawn so that it cannot be taken for data.

The session's preview is an edit of a small box of the case; it is shown in layers of
its own, placed on that box, above the user's label layer:

- one image layer per channel, ``"LesionMix preview: <channel>"``, holding the box's new
  values in the channel layer's colour map and contrast, opaque, so inside the box one
  sees the result;
- one label layer, ``"LesionMix preview: labels (not applied)"``, holding the box's new
  labels as outlines in the preview colour (lesions cyan, other labels teal), with the
  box framed in the same colour.

The user's layers are not touched: saving one during a preview writes the data without
it. The layers are made on the first preview, updated in place while it changes, and
removed when it is cleared or applied.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from psygnal import Signal

from .._layers import ROLE_KEY, grid_kwargs
from ..core.case import Geometry
from ..session import EditSession
from .layer_link import LayerLink

__all__ = ["PREVIEW_COLOUR", "PreviewLayers"]

#: the preview's own colour (outlines, frame); other labels in the box are teal
PREVIEW_COLOUR = "#00e5ff"
CONTEXT_COLOUR = "#2a9d8f"
LABELS_NAME = "LesionMix preview: labels (not applied)"
ROLE = "preview"


def _box_geometry(geometry: Geometry, slices: tuple) -> Geometry:
    """The geometry of a box of a grid: the same spacing and direction, its own origin."""
    start = [s.start for s in slices]
    origin = geometry.index_to_physical(np.asarray(start, float))
    return Geometry(geometry.spacing, tuple(origin), geometry.direction)


class PreviewLayers:
    """Shows a session's preview in a viewer (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
    session : EditSession
    link : LayerLink
        Gives the channel layers whose colour maps the preview takes.

    Attributes
    ----------
    written : psygnal.Signal
        Emitted with the preview layers after they were written in place.
    """

    written = Signal(object)

    def __init__(self, viewer: Any, session: EditSession, link: LayerLink):
        self._viewer = weakref.ref(viewer)
        self.session = session
        self.link = link
        self.images: list = []
        self.labels = None
        self._box: tuple | None = None
        self.visible = True
        session.preview_changed.connect(self.update)

    @property
    def layers(self) -> list:
        """The preview layers in the viewer now."""
        return [lay for lay in (*self.images, self.labels) if lay is not None]

    def set_visible(self, on: bool) -> None:
        """Show or hide the preview layers (the preview stays)."""
        self.visible = bool(on)
        for layer in self.layers:
            layer.visible = self.visible

    def update(self) -> None:
        """Draw the session's preview (or remove the layers when there is none)."""
        viewer, edit = self._viewer(), self.session.preview
        if viewer is None:
            return
        if edit is None or self.session.case is None:
            self.remove()
            return
        shape = tuple(edit.labels.shape)
        if self.labels is None or len(self.images) != edit.channels.shape[0] or \
                tuple(self.labels.data.shape) != shape:
            self.remove()
            self._make(viewer, edit)
        else:
            for layer, values in zip(self.images, edit.channels):
                layer.data[...] = values
            self.labels.data[...] = edit.labels
            if self._box != tuple(edit.slices):
                self._place(edit.slices)
            for layer in self.layers:
                layer.refresh(thumbnail=False, extent=False, highlight=False)
            self.written.emit(self.layers)

    def remove(self) -> None:
        """Take the preview layers out of the viewer."""
        viewer = self._viewer()
        for layer in self.layers:
            if viewer is not None and layer in viewer.layers:
                viewer.layers.remove(layer)
        self.images, self.labels, self._box = [], None, None

    # -- making the layers -------------------------------------------------------------
    def _place(self, slices: tuple) -> None:
        kw = grid_kwargs(_box_geometry(self.session.case.geometry, slices))
        for layer in self.layers:
            layer.affine = kw["affine"]
        self._box = tuple(slices)

    def _make(self, viewer: Any, edit) -> None:
        from napari.layers import Image, Labels
        from napari.utils.colormaps import DirectLabelColormap

        kw = grid_kwargs(_box_geometry(self.session.case.geometry, edit.slices))
        meta = {ROLE_KEY: ROLE}
        sources = self.link.image_layers
        lowest = True
        for c, values in enumerate(edit.channels):
            src = sources[c] if c < len(sources) else None
            name = f"LesionMix preview: {src.name if src is not None else f'channel {c}'}"
            layer = Image(np.array(values, np.float32), name=name, metadata=dict(meta), **kw)
            if src is not None:
                layer.colormap = src.colormap
                layer.contrast_limits = src.contrast_limits
                layer.gamma = src.gamma
                layer.visible = src.visible and self.visible
                # the lowest shown preview covers the user's labels in the box
                layer.blending = "translucent" if (lowest and src.visible) else src.blending
                lowest = lowest and not src.visible
            self.images.append(layer)
        colours = {None: CONTEXT_COLOUR, 0: "transparent"}
        colours.update({int(c): PREVIEW_COLOUR for c in self.session.lesion_classes})
        self.labels = Labels(np.array(edit.labels), name=LABELS_NAME, metadata=dict(meta),
                             opacity=1.0, visible=self.visible,
                             colormap=DirectLabelColormap(color_dict=colours), **kw)
        self.labels.contour = 1
        box = self.labels.bounding_box
        box.points, box.line_color, box.line_thickness = False, PREVIEW_COLOUR, 2
        box.visible = True
        self._box = tuple(edit.slices)
        index = self._insert_at(viewer)
        active = viewer.layers.selection.active
        for k, layer in enumerate(self.layers):
            viewer.layers.insert(index + k, layer)
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active  # keep the user's active layer

    def _insert_at(self, viewer: Any) -> int:
        """Just above the label layer (else on top)."""
        label = self.link.label_layer
        if label is not None and label in viewer.layers:
            return viewer.layers.index(label) + 1
        return len(viewer.layers)
