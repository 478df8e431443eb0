"""The preview in its own layers, drawn so that it cannot be taken for data.

The session's preview is an edit of a small box of the case; it is shown in layers of
its own, above the user's label layer, over a *window* of the case around the edit:

- one image layer per channel, ``"LesionMix preview: <channel>"``, holding the window's
  values with the edit written in, in the channel layer's colour map and contrast,
  opaque, so inside the window one sees the result;
- one label layer, ``"LesionMix preview: labels (not applied)"``, holding the window's
  labels with the edit, as outlines in the preview colour (lesions cyan, other labels
  teal; filled in the 3D view, where napari draws no outlines);
- a line on the canvas, in the same colour, saying that a preview is shown and that it
  is not applied.

In the 3D view, while a 3D pane shows the preview as surfaces (the three-plane view's,
:mod:`.pane3d`), the layers take a new preview :data:`SETTLE_3D_MS` after the last change
rather than at every one: the main canvas then draws a volume, about a second a frame on
a software OpenGL, and redrawing it at every step of a slider drag would hold up the
pane, which follows the drag in tens of milliseconds.

The window is twice the edit's size, so a slider that grows or moves the lesion only
rewrites values in place (the layers never move while one drags); the layers move when
the edit leaves the window. The user's layers are not touched: saving one during a
preview writes the data without it. The layers are made on the first preview and removed
when it is cleared or applied.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np
from psygnal import Signal

from .._layers import ROLE_KEY, grid_kwargs
from ..core.geometry import Geometry
from ..session.session import EditSession
from .layer_link import LayerLink

__all__ = ["PREVIEW_COLOUR", "PreviewLayers"]

#: the preview's own colour (outlines, frame); other labels in the window are teal
PREVIEW_COLOUR = "#00e5ff"
CONTEXT_COLOUR = "#2a9d8f"
LABELS_NAME = "LesionMix preview: labels (not applied)"
ROLE = "preview"
BANNER = "PREVIEW (not applied)"
#: in 3D with a surface pane open, the layers follow the preview this long after its last
#: change (ms)
SETTLE_3D_MS = 300


def _window_around(slices: tuple, shape: tuple) -> tuple:
    """A box twice the size of ``slices`` around them, within ``shape``."""
    out = []
    for s, n in zip(slices, shape):
        pad = max(s.stop - s.start, 4) // 2 + 2
        out.append(slice(max(s.start - pad, 0), min(s.stop + pad, n)))
    return tuple(out)


def _inside(slices: tuple, window: tuple) -> bool:
    return all(w.start <= s.start and s.stop <= w.stop for s, w in zip(slices, window))


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
        self.visible = True
        self._window: tuple | None = None  # the box of the case the layers show
        self._written: tuple | None = None  # the box of the edit written into them
        from napari.components.overlays import TextOverlay

        self.banner = TextOverlay(text=BANNER, position="bottom_left", color=PREVIEW_COLOUR,
                                  font_size=10, visible=False)
        viewer.canvas.overlays["lesionmix_preview"] = self.banner
        #: whether another view shows the preview live (a 3D pane); set by the viewer link
        self.shown_elsewhere = lambda: False
        self._settle = None  # the QTimer of the deferred update (made on first use)
        session.preview_changed.connect(self._on_preview)
        viewer.dims.events.ndisplay.connect(self._on_ndisplay, position="first")
        # napari slices once in 3D before any callback of the switch can drop the outline,
        # and would show its "contours are not displayed in 3D" warning as a notice
        warnings.filterwarnings("ignore", message="Contours are not displayed during 3D",
                                category=UserWarning)

    @property
    def layers(self) -> list:
        """The preview layers in the viewer now."""
        return [lay for lay in (*self.images, self.labels) if lay is not None]

    def set_visible(self, on: bool) -> None:
        """Show or hide the preview layers (the preview stays)."""
        self.visible = bool(on)
        for layer in self.layers:
            layer.visible = self.visible
        self.banner.visible = self.visible and bool(self.layers)

    def _on_preview(self) -> None:
        """The session's preview changed: draw it now, or in 3D with a surface pane open,
        once the changes settle (see the module docstring)."""
        viewer = self._viewer()
        defer = (viewer is not None and viewer.dims.ndisplay == 3 and self.labels is not None
                 and self.session.preview is not None and self.shown_elsewhere())
        if not defer:
            if self._settle is not None:
                self._settle.stop()
            self.update()
            return
        if self._settle is None:
            from qtpy.QtCore import QTimer

            self._settle = QTimer()
            self._settle.setSingleShot(True)
            me = weakref.ref(self)
            self._settle.timeout.connect(lambda: me() is not None and me().update())
        self._settle.start(SETTLE_3D_MS)

    def update(self) -> None:
        """Draw the session's preview (or remove the layers when there is none)."""
        viewer, edit, case = self._viewer(), self.session.preview, self.session.case
        if viewer is None:
            return
        if edit is None or case is None:
            self.remove()
            return
        if self.labels is None or len(self.images) != edit.channels.shape[0]:
            self.remove()
            self._window = _window_around(edit.slices, case.spatial_shape)
            self._make(viewer)
        elif not _inside(edit.slices, self._window):
            self._window = _window_around(edit.slices, case.spatial_shape)
            self._refill()
        else:
            self._restore(self._written)
        self._write(edit)
        self._written = tuple(edit.slices)
        self.banner.visible = self.visible
        for layer in self.layers:
            layer.refresh(thumbnail=False, extent=False, highlight=False)
        self.written.emit(self.layers)

    def remove(self) -> None:
        """Take the preview layers out of the viewer."""
        viewer = self._viewer()
        self.banner.visible = False
        for layer in self.layers:
            if viewer is not None and layer in viewer.layers:
                viewer.layers.remove(layer)
        self.images, self.labels, self._window, self._written = [], None, None, None

    # -- the window ---------------------------------------------------------------------
    def _local(self, slices: tuple) -> tuple:
        return tuple(slice(s.start - w.start, s.stop - w.start)
                     for s, w in zip(slices, self._window))

    def _restore(self, slices: tuple | None) -> None:
        """Put the case's own values back where the last edit was written."""
        if slices is None:
            return
        case, local = self.session.case, self._local(slices)
        for c, layer in enumerate(self.images):
            layer.data[local] = case.channels[(c, *slices)]
        self.labels.data[local] = case.labels[slices]

    def _write(self, edit) -> None:
        local = self._local(edit.slices)
        for layer, values in zip(self.images, edit.channels):
            layer.data[local] = values
        self.labels.data[local] = edit.labels

    def _refill(self) -> None:
        """A new window (the edit left the old one): the case's values there, and the
        layers moved to it."""
        case, window = self.session.case, self._window
        for c, layer in enumerate(self.images):
            layer.data = np.array(case.channels[(c, *window)], np.float32)
        self.labels.data = np.array(case.labels[window])
        kw = grid_kwargs(_box_geometry(case.geometry, window))
        for layer in self.layers:
            layer.affine = kw["affine"]

    # -- making the layers -------------------------------------------------------------
    def _make(self, viewer: Any) -> None:
        from napari.layers import Image, Labels
        from napari.utils.colormaps import DirectLabelColormap

        case, window = self.session.case, self._window
        kw = grid_kwargs(_box_geometry(case.geometry, window))
        meta = {ROLE_KEY: ROLE}
        sources = self.link.image_layers
        lowest = True
        for c in range(case.n_channels):
            src = sources[c] if c < len(sources) else None
            name = f"LesionMix preview: {src.name if src is not None else f'channel {c}'}"
            values = np.array(case.channels[(c, *window)], np.float32)
            layer = Image(values, name=name, metadata=dict(meta), **kw)
            if src is not None:
                layer.colormap = src.colormap
                layer.contrast_limits = src.contrast_limits
                layer.gamma = src.gamma
                layer.visible = src.visible and self.visible
                # the lowest shown preview covers the user's labels in the window
                layer.blending = "translucent" if (lowest and src.visible) else src.blending
                lowest = lowest and not src.visible
            self.images.append(layer)
        colours = {None: CONTEXT_COLOUR, 0: "transparent"}
        colours.update({int(c): PREVIEW_COLOUR for c in self.session.lesion_classes})
        self.labels = Labels(np.array(case.labels[window]), name=LABELS_NAME,
                             metadata=dict(meta), opacity=1.0, visible=self.visible,
                             colormap=DirectLabelColormap(color_dict=colours), **kw)
        self.labels.contour = self._contour(viewer)
        index = self._insert_at(viewer)
        active = viewer.layers.selection.active
        for k, layer in enumerate(self.layers):
            viewer.layers.insert(index + k, layer)
        if active is not None and active in viewer.layers:
            viewer.layers.selection.active = active  # keep the user's active layer

    @staticmethod
    def _contour(viewer: Any) -> int:
        """Outlines in 2D; napari draws no contours in 3D, where the preview is filled."""
        return 1 if viewer.dims.ndisplay == 2 else 0

    def _on_ndisplay(self, event=None) -> None:
        viewer = self._viewer()
        if viewer is not None and self.labels is not None:
            self.labels.contour = self._contour(viewer)

    def _insert_at(self, viewer: Any) -> int:
        """Just above the label layer (else on top)."""
        label = self.link.label_layer
        if label is not None and label in viewer.layers:
            return viewer.layers.index(label) + 1
        return len(viewer.layers)
