"""The three-plane view: axial, coronal and sagittal canvases with a shared crosshair.

napari's multi-canvas pattern: three extra viewer models, each drawn by its own canvas
in this dock, hold copies of the main viewer's layers over the same arrays
(:mod:`.mirror`). The shared cursor is the main viewer's slice point (world mm): every
plane shows the slice through it and draws a crosshair on it. The cursor follows the
selected lesion and the location; a click in a plane moves it there (and, while picking
a location, sets the location). Each plane shows upright (superior or anterior at the
top, the patient's right on the screen's left) with its orientation letters.
"""

from __future__ import annotations

import weakref

import numpy as np
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .._layers import ROLE_KEY
from ..session.errors import SessionError
from .canvas import click_without_drag, install_clicks
from .mirror import LayerMirror
from .orientation import OrientationLetters, letter_margin
from .pane3d import SurfacePane
from .viewer_link import get_link

__all__ = ["PLANES", "PlanesDock"]

#: plane name -> the world axis it cuts (z, y, x numbering) and its dims order
PLANES = {"axial": (0, (0, 1, 2)), "coronal": (1, (1, 0, 2)), "sagittal": (2, (2, 0, 1))}
CROSSHAIR_COLOUR = "#ffd166"
#: the planes redraw a preview this long after the main canvas (ms)
PLANES_LAG_MS = 40


def _plane_canvas_class():
    from napari.qt import QtViewer

    class PlaneCanvas(QtViewer):
        """A napari canvas for one plane. napari's keyboard shortcuts are global and the
        main window bound them already: binding them again for each plane only makes
        every open canvas refresh its (hidden) welcome screen, hundreds of times."""

        def _bind_shortcuts(self) -> None:
            pass

    return PlaneCanvas


class PlanesDock(QWidget):
    """Axial, coronal and sagittal views of the main viewer's layers.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    models : dict
        Plane name -> its ``ViewerModel``.
    canvases : dict
        Plane name -> its ``QtViewer``.
    """

    def __init__(self, napari_viewer, parent=None):
        from napari.components import ViewerModel

        super().__init__(parent)
        PlaneCanvas = _plane_canvas_class()  # noqa: N806 - a class
        self.viewer = napari_viewer
        self.link = get_link(napari_viewer)
        self.models, self.canvases, self.letters, self.crosshairs = {}, {}, {}, {}
        self._followed = None
        self.models = {name: ViewerModel(title=name) for name in PLANES}
        # the models get their layers (copies, crosshairs) before their canvases: a canvas
        # made over its layers builds each visual once and is cheaper than one that then
        # hears every layer arrive
        self.mirror = LayerMirror(napari_viewer, list(self.models.values()))
        self.follow()
        self.pane3d = SurfacePane(napari_viewer, self.link, PlaneCanvas)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for name, model in self.models.items():
            canvas = PlaneCanvas(model, show_welcome_screen=False)
            canvas.dims.setVisible(False)
            self.letters[name] = OrientationLetters(model, widget=canvas.canvas.native)
            self.canvases[name] = canvas
            row.addLayout(_titled(name, canvas), 1)
        row.addLayout(_titled("3D (surfaces)", self.pane3d.canvas), 1)
        for model in self.models.values():
            install_clicks(model, self.link.session, self.link.layers)
            model.mouse_drag_callbacks.append(self._navigator())
        self.setMinimumHeight(180)
        self._pending: list = []
        self._lag = QTimer(self)
        self._lag.setSingleShot(True)
        self._lag.setInterval(PLANES_LAG_MS)
        self._lag.timeout.connect(self._refresh_planes)
        self._connect()
        self.reset_view()
        self.link.views.append(self)
        self._detach = _detacher(self.link, self.mirror, napari_viewer, self.follow)
        self.destroyed.connect(self._detach)
        # close the canvases with the viewer's window (a dock's own close event does not
        # come then); napari gives no public handle on that window
        window = getattr(getattr(napari_viewer, "window", None), "_qt_window", None)
        self._closer = _CloseWith(window, self) if window is not None else None

    def _connect(self) -> None:
        v, s = self.viewer, self.link.session
        v.dims.events.point.connect(self.follow)
        v.dims.events.ndim.connect(self.follow)
        v.layers.events.inserted.connect(self.follow)
        v.events.reset_view.connect(self.reset_view)
        self.link.layers.written.connect(lambda layers: self.mirror.refresh(layers,
                                                                              extent=False))
        self.link.preview.written.connect(self._preview_written)
        s.selection_changed.connect(self._on_selection)
        s.location_changed.connect(self._on_location)

    def _preview_written(self, layers) -> None:
        """The preview changed: the planes follow shortly after the main canvas, at most
        every :data:`PLANES_LAG_MS` while a slider is dragged (the main canvas first)."""
        self._pending = list(layers)
        if not self._lag.isActive():
            self._lag.start()

    def _refresh_planes(self) -> None:
        layers, self._pending = self._pending, []
        self.mirror.refresh([lay for lay in layers if lay in self.viewer.layers],
                            thumbnail=False, extent=False, highlight=False)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Fit the planes once their canvases have their size."""
        super().showEvent(event)
        QTimer.singleShot(0, self.reset_view)

    def close_canvases(self) -> None:
        """Close the three canvases (their GL resources go) and stop following."""
        self._detach()
        for canvas in self.canvases.values():
            canvas.close()
        if self.pane3d is not None:
            self.pane3d.close()
            self.pane3d.canvas.close()
            self.pane3d = None
        self.canvases.clear()
        self.models.clear()
        self.crosshairs.clear()
        self.letters.clear()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.close_canvases()
        super().closeEvent(event)

    def reset_view(self, *_) -> None:
        """Fit every plane to the data."""
        for model in self.models.values():
            model.reset_view(margin=letter_margin(model.canvas.size))
        if self.pane3d is not None:
            self.pane3d.reset_view()

    # -- the cursor -------------------------------------------------------------------------
    def cursor(self) -> np.ndarray | None:
        """The shared cursor: the main viewer's slice point in world mm (z, y, x)."""
        point = np.asarray(self.viewer.dims.point, float)
        return point[-3:] if point.size >= 3 else None

    def follow(self, *_) -> None:
        """Show the slices through the cursor and draw the crosshair on it."""
        p = self.cursor()
        if p is None:
            return
        for name, model in self.models.items():
            if model.dims.ndim < 3:
                continue
            offset = model.dims.ndim - 3
            order = tuple(range(offset)) + tuple(a + offset for a in PLANES[name][1])
            if tuple(model.dims.order) != order:
                model.dims.order = order
            model.dims.set_point(list(range(offset, offset + 3)), tuple(p))
            self._draw_crosshair(name, model, p)

    def show(self, index_zyx) -> None:
        """Centre every plane on voxel ``index_zyx`` of the case (the cursor is already
        there: the main viewer moved)."""
        layer = self.link.layers.label_layer
        if layer is None:
            return
        world = np.asarray(layer.data_to_world(np.asarray(index_zyx, float)), float)
        self.viewer.dims.set_point(list(range(self.viewer.dims.ndim - 3, self.viewer.dims.ndim)),
                                   tuple(world[-3:]))
        for name, model in self.models.items():
            shown = [world[-3:][a] for a in PLANES[name][1][1:]]
            model.scene.camera.center = tuple(shown)

    def _on_selection(self, index) -> None:
        """Follow the selection to another lesion (not the same one listed again)."""
        lesion = self.link.session.selected_lesion
        key = None if lesion is None else (lesion.label, lesion.seed)
        if key != self._followed:
            self._followed = key
            if lesion is not None:
                self.show(lesion.centroid)

    def _on_location(self, location) -> None:
        if location is not None:
            self.show(location)

    def _draw_crosshair(self, name: str, model, p: np.ndarray) -> None:
        extent = self.viewer.layers.extent.world[:, -3:]
        vectors = np.zeros((3, 2, 3))
        for a in range(3):
            vectors[a, 0] = p
            vectors[a, 0, a] = extent[0, a]
            vectors[a, 1, a] = extent[1, a] - extent[0, a]
        layer = self.crosshairs.get(name)
        if layer is None or layer not in model.layers:
            from napari.layers import Vectors

            layer = Vectors(vectors, name="crosshair", edge_color=CROSSHAIR_COLOUR,
                            edge_width=self._line_width(model), vector_style="line",
                            metadata={ROLE_KEY: "crosshair"}, opacity=0.8,
                            units=self.viewer.layers[0].units if len(self.viewer.layers) else None)
            model.layers.append(layer)
            self.crosshairs[name] = layer
            model.scene.camera.events.zoom.connect(
                lambda e, m=model, lay=layer: setattr(lay, "edge_width", self._line_width(m)))
        else:
            layer.data = vectors

    @staticmethod
    def _line_width(model) -> float:
        """A crosshair line width of about 1.5 screen pixels, in world mm."""
        return 1.5 / max(float(model.scene.camera.zoom), 1e-6)

    def _navigator(self):
        """A click (no drag) in a plane moves the cursor there."""
        me = weakref.ref(self)

        def navigate(model, event):
            start = np.asarray(event.position, float)
            clicked = yield from click_without_drag(event)
            dock = me()
            if dock is None or not clicked:
                return
            try:
                n = dock.viewer.dims.ndim
                dock.viewer.dims.set_point(list(range(n - 3, n)), tuple(start[-3:]))
            except (SessionError, ValueError, IndexError):
                pass

        return navigate


def _titled(title: str, widget: QWidget) -> QVBoxLayout:
    box = QVBoxLayout()
    box.addWidget(QLabel(title))
    box.addWidget(widget, 1)
    return box


def _detacher(link, mirror, viewer, follow):
    """Stop a planes dock following its viewer (once; safe after its Qt side is gone)."""
    done = []

    def detach(*_):
        if done:
            return
        done.append(True)
        link.views[:] = [v for v in link.views if getattr(v, "mirror", None) is not mirror]
        mirror.close()
        viewer.dims.events.point.disconnect(follow)

    return detach


class _CloseWith(QObject):
    """Closes a planes dock's canvases when the main window that holds it closes."""

    def __init__(self, window: QObject, dock: PlanesDock):
        super().__init__(dock)
        self._dock = weakref.ref(dock)
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Close:
            dock = self._dock()
            if dock is not None:
                dock.close_canvases()
        return False
