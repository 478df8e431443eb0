"""The Case tab's layer pickers: magicgui widgets that follow the viewer's layers.

- ``labels``: a combo box of the Labels layers;
- ``images``: a list of the image layers where a click ticks or unticks a channel; every
  image layer on the label layer's grid is a channel by default, until the user changes
  the ticks (RGB and multiscale images are never offered);
- ``placement``: an optional layer whose non-zero voxels bound placement.

The plugin's own display layers (overlay, marks, previews) are never offered.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any

from magicgui.widgets import ComboBox, Select
from psygnal import Signal
from qtpy.QtWidgets import QAbstractItemView

from .case_from_layers import channel_layers, is_helper

__all__ = ["LayerPickers"]


class LayerPickers:
    """Image, label and placement pickers over a viewer's layers.

    Parameters
    ----------
    viewer : napari.Viewer

    Attributes
    ----------
    images : magicgui.widgets.Select
    labels, placement : magicgui.widgets.ComboBox
    changed : psygnal.Signal
        A choice changed (by the user, or because the layers did).
    """

    changed = Signal()

    def __init__(self, viewer: Any):
        from napari.layers import Image, Labels

        self._viewer = weakref.ref(viewer)
        self._kinds = {"image": (Image,), "labels": (Labels,), "placement": (Labels, Image)}
        self.labels = ComboBox(choices=self._choices("labels"))
        self.placement = ComboBox(choices=self._choices("placement"), nullable=True)
        self.images = Select(choices=self._choices("image"))
        self.images.native.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        rows = self.images.native.fontMetrics().height() + 6
        self.images.native.setMinimumHeight(2 * rows)
        self.images.native.setMaximumHeight(4 * rows)
        self.images.tooltip = ("the image layers that are the case's channels: click a layer "
                               "to add or remove it")
        self.hand_picked = False  # the user changed the ticks: keep them
        self._refilling = False
        self.labels.changed.connect(self._labels_changed)
        self.images.changed.connect(self._images_changed)
        self.placement.changed.connect(lambda *_: self._emit())
        me = weakref.ref(self)

        def refill(event=None):
            pickers = me()
            if pickers is not None:
                pickers.refill()

        def inserted(event):
            event.value.events.name.connect(refill)
            refill()

        for layer in viewer.layers:
            layer.events.name.connect(refill)
        viewer.layers.events.inserted.connect(inserted)
        viewer.layers.events.removed.connect(refill)
        viewer.layers.events.reordered.connect(refill)
        self._callbacks = (refill, inserted)  # kept alive with the pickers
        self.refill()

    def _choices(self, kind: str):
        def choices(widget=None) -> list:
            viewer = self._viewer()
            if viewer is None:
                return []
            return [(lay.name, lay) for lay in viewer.layers
                    if isinstance(lay, self._kinds[kind]) and not is_helper(lay)
                    and not (kind != "labels" and getattr(lay, "rgb", False))]

        return choices

    # -- reading and setting ---------------------------------------------------------
    def chosen(self) -> tuple[list, Any, Any]:
        """(image layers, label layer, placement layer) as chosen now."""
        return list(self.images.value), self.labels.value, self.placement.value

    def set_chosen(self, images: list, labels: Any, placement: Any = None) -> None:
        """Show a choice (e.g. the case's layers) without emitting :attr:`changed`."""
        with self._quiet():
            if labels is not None and labels in self.labels.choices:
                self.labels.value = labels
            self.images.value = [lay for lay in images if lay in self._image_choices()]
            self.placement.value = placement

    def default_images(self) -> list:
        """Every image layer on the label layer's grid."""
        return channel_layers(self._image_choices(), self.labels.value)

    def _image_choices(self) -> list:
        return [c for c in self.images.choices]

    # -- following the viewer --------------------------------------------------------
    def refill(self) -> None:
        """Offer the viewer's layers again; keep the choices that still exist."""
        before = self.chosen()
        with self._quiet():
            for widget in (self.labels, self.placement, self.images):
                widget.reset_choices()
            if not self.hand_picked:
                self.images.value = self.default_images()
        if self.chosen() != before:
            self._emit()

    def _labels_changed(self, *_) -> None:
        if self._refilling:
            return
        if not self.hand_picked:
            with self._quiet():
                self.images.value = self.default_images()
        self._emit()

    def _images_changed(self, *_) -> None:
        if self._refilling:
            return
        self.hand_picked = list(self.images.value) != self.default_images()
        self._emit()

    def _emit(self) -> None:
        if not self._refilling:
            self.changed.emit()

    @contextmanager
    def _quiet(self):
        """Change the widgets without reacting to their signals."""
        self._refilling = True
        try:
            yield
        finally:
            self._refilling = False
