"""The chosen layers of a viewer and the session's case, kept in step.

:class:`LayerLink` builds the session's case from the chosen image, label and placement
layers (:func:`.case_from_layers.case_from_layers`), writes every applied change into
the layers that do not share the case's memory (other voxel types), restores them bit
for bit on undo from the boxes it keeps on the change, and refreshes them. It forgets
the case when one of its layers leaves the viewer and builds it again when the user
paints the label layer. The user's layers change only here, on Apply, Undo and Reset.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from psygnal import Signal

from ..session.errors import SessionError
from ..session.history import Change
from ..session.session import EditSession
from .case_from_layers import case_from_layers, channel_layers, dataset_recipe_of, is_helper

__all__ = ["LayerLink"]


def _shares(a: Any, b: Any) -> bool:
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.shares_memory(a, b)


def _cast_into(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``src`` in ``dst``'s voxel type (integers rounded and clipped)."""
    if dst.dtype.kind in "iu":
        info = np.iinfo(dst.dtype)
        src = np.clip(np.rint(src), info.min, info.max)
    return src.astype(dst.dtype, copy=False)


class LayerLink:
    """Keeps a viewer's chosen layers and the session's case in step.

    Parameters
    ----------
    viewer : napari.Viewer
        Kept as a weak reference.
    session : EditSession

    Attributes
    ----------
    image_layers : list
        One layer per channel of the case.
    label_layer, placement_layer : layer or None
    written : psygnal.Signal
        Emitted with the chosen layers after a change was written into them (views
        holding copies of the layers refresh them).
    """

    written = Signal(object)

    def __init__(self, viewer: Any, session: EditSession):
        self._viewer = weakref.ref(viewer)
        self.session = session
        self.image_layers: list = []
        self.label_layer = None
        self.placement_layer = None
        session.before_change.connect(self._keep_boxes)
        session.data_changed.connect(self._write)
        me = weakref.ref(self)

        def removed(event):
            link = me()
            if link is not None:
                link._on_removed(event.value)
                link.auto_use()

        def inserted(event):
            link = me()
            if link is not None:
                link.auto_use()

        viewer.layers.events.removed.connect(removed)
        viewer.layers.events.inserted.connect(inserted)

    # -- choosing --------------------------------------------------------------------
    def use(self, image_layers: Sequence, label_layer: Any, placement_layer: Any = None,
            note: str = "") -> None:
        """Build the session's case from these layers.

        Raises
        ------
        SessionError
            The layers make no case (the message names the layer); nothing changed.
        """
        case = case_from_layers(list(image_layers), label_layer, placement_layer)
        same = (self.session.case is not None and label_layer is self.label_layer
                and case.labels is self.session.case.labels
                and list(image_layers) == self.image_layers and not note)
        self._watch_paint(False)
        self.image_layers = list(image_layers)
        self.label_layer = label_layer
        self.placement_layer = placement_layer
        self._watch_paint(True)
        self.session.set_case(case, dataset_recipe_of(label_layer), keep_history=same,
                              note=note)

    def try_use(self, image_layers: Sequence, label_layer: Any,
                placement_layer: Any = None) -> str:
        """:meth:`use`, returning why not ("" when the case was built); without a case
        the session shows the reason."""
        try:
            self.use(image_layers, label_layer, placement_layer)
        except SessionError as exc:
            if self.session.case is None:
                self.session.set_case_error(str(exc))
            return str(exc)
        return ""

    def auto_use(self) -> None:
        """Without a case, build one from the viewer's first label layer and every image
        on its grid (whichever docks are open); the session says why when that fails."""
        viewer = self._viewer()
        if viewer is None or self.session.case is not None:
            return
        from napari.layers import Image, Labels

        labels = [lay for lay in viewer.layers if isinstance(lay, Labels) and not is_helper(lay)]
        if not labels:
            return
        images = [lay for lay in viewer.layers if isinstance(lay, Image)]
        self.try_use(channel_layers(images, labels[0]), labels[0])

    @property
    def layers(self) -> list:
        """Every chosen layer."""
        return [lay for lay in (*self.image_layers, self.label_layer, self.placement_layer)
                if lay is not None]

    def source_files(self) -> tuple[list, str | None]:
        """The files the chosen image and label layers were read from (None if not)."""
        return ([lay.metadata.get("lesionmix_source") for lay in self.image_layers],
                None if self.label_layer is None
                else self.label_layer.metadata.get("lesionmix_source"))

    # -- applied changes -------------------------------------------------------------
    def _copies(self):
        """(index, layer, case array) of each chosen layer that does not share the case's
        memory; index -1 is the label layer."""
        case = self.session.case
        out = [(c, lay, case.channels[c]) for c, lay in enumerate(self.image_layers)
               if not _shares(case.channels[c], lay.data)]
        if self.label_layer is not None and not _shares(case.labels, self.label_layer.data):
            out.append((-1, self.label_layer, case.labels))
        return out

    def _keep_boxes(self, slices: tuple, change: Change) -> None:
        """Before a change: keep each copied layer's box in its own voxel type."""
        change.extra["layer_boxes"] = {
            c: np.array(lay.data[tuple(slices)], copy=True) for c, lay, _ in self._copies()}

    def _write(self, slices: tuple, change: Change, undone: bool) -> None:
        """After a change: write it into the copied layers (exactly on undo), refresh."""
        kept = change.extra.get("layer_boxes", {}) if undone else {}
        box = tuple(slices)
        for c, lay, src in self._copies():
            dst = lay.data
            dst[box] = kept[c] if c in kept else _cast_into(dst, src[box])
        for lay in self.layers:
            lay.refresh(extent=False)
        self.written.emit(self.layers)

    # -- the viewer ------------------------------------------------------------------
    def _on_removed(self, layer: Any) -> None:
        if self.session.case is not None and any(layer is lay for lay in self.layers):
            self._watch_paint(False)
            self.image_layers, self.label_layer, self.placement_layer = [], None, None
            self.session.forget_case(f"layer {layer.name!r} was removed; choose the layers "
                                     "in the Case tab")

    def _watch_paint(self, on: bool) -> None:
        layer = self.label_layer
        if layer is None or not hasattr(layer.events, "paint"):
            return
        if on:
            layer.events.paint.connect(self._painted)
        else:
            layer.events.paint.disconnect(self._painted)

    def _painted(self, event=None) -> None:
        """The user painted the label layer: the case is built again from it."""
        try:
            self.use(self.image_layers, self.label_layer, self.placement_layer,
                     note="history cleared: the label layer was painted")
        except SessionError as exc:
            self.session.message.emit("warning", f"after painting: {exc}")
