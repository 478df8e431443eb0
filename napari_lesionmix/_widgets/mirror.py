"""Copies of a viewer's layers in other viewer models, kept in step with them.

The three-plane view shows the main viewer's layers in viewer models of its own. Each
copy is a new layer over the *same* array (no data is copied): it follows its original's
display properties (colour map, contrast, opacity, visibility, transform, ...) and data
assignments, and is refreshed when its original was written in place (:meth:`refresh`,
called by whoever wrote). Layers are copied in the main viewer's order.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

__all__ = ["LayerMirror"]

#: properties never copied: they belong to each viewer, or are handled apart
SKIP = {"thumbnail", "name", "data", "mode", "loaded", "set_data", "refresh", "highlight",
        "extent", "_extent_augmented", "_overlays", "selected_label", "n_edit_dimensions",
        "editable", "interactive", "cursor", "cursor_size", "help", "status", "reload"}


def _synced_properties(layer: Any) -> list[str]:
    """The names of a layer's evented, settable properties worth copying."""
    from napari.utils.events.event import WarningEmitter

    cls = type(layer)
    names = []
    for name, emitter in layer.events.emitters.items():
        prop = getattr(cls, name, None)
        if (name not in SKIP and not isinstance(emitter, WarningEmitter)
                and isinstance(prop, property) and prop.fset is not None):
            names.append(name)
    return names


def copy_layer(layer: Any) -> Any:
    """A new layer of the same type over the same data, with the same state (the
    properties the layer's state leaves out, e.g. a label outline, included)."""
    from napari.layers import Layer

    data, state, kind = layer.as_layer_data_tuple()
    copy = Layer.create(data, state, kind)
    for name in _synced_properties(layer):
        if name in state:
            continue
        try:
            value = getattr(layer, name)
            if not _same(getattr(copy, name), value):
                setattr(copy, name, value)
        except (ValueError, TypeError, AttributeError):
            pass  # a property the copy cannot take
    return copy


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b)))
    except (ValueError, TypeError):
        return a is b


class LayerMirror:
    """Keeps copies of ``viewer``'s layers in ``models``.

    Parameters
    ----------
    viewer : napari.Viewer
        The original.
    models : list of napari.components.ViewerModel
        The viewer models that show copies.
    """

    def __init__(self, viewer: Any, models: list):
        self._viewer = weakref.ref(viewer)
        self.models = models
        self.copies: dict = {}  # id(original) -> [copy per model]
        self._callbacks: dict = {}
        for layer in viewer.layers:
            self._add(layer, len(self.models[0].layers) if self.models else 0)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        viewer.layers.events.moved.connect(self._on_moved)

    def close(self) -> None:
        """Stop following the viewer."""
        viewer = self._viewer()
        if viewer is None:
            return
        for emitter, cb in ((viewer.layers.events.inserted, self._on_inserted),
                            (viewer.layers.events.removed, self._on_removed),
                            (viewer.layers.events.moved, self._on_moved)):
            emitter.disconnect(cb)
        for layer in list(viewer.layers):
            self._unfollow(layer)

    def copies_of(self, layer: Any) -> list:
        """The copies of ``layer`` (one per model), or []."""
        return self.copies.get(id(layer), [])

    def refresh(self, layers, **kwargs) -> None:
        """Refresh the copies of ``layers`` after their data were written in place."""
        for layer in layers:
            for copy in self.copies_of(layer):
                copy.refresh(**kwargs)

    # -- following ----------------------------------------------------------------------
    def _add(self, layer: Any, index: int) -> None:
        copies = []
        for model in self.models:
            copy = copy_layer(layer)
            model.layers.insert(min(index, len(model.layers)), copy)
            copies.append(copy)
        self.copies[id(layer)] = copies
        ref = weakref.ref(layer)
        callbacks = [(name, self._syncer(ref, name)) for name in _synced_properties(layer)]
        callbacks += [("data", self._syncer(ref, "data")), ("name", self._syncer(ref, "name"))]
        for name, cb in callbacks:
            layer.events.emitters[name].connect(cb)
        self._callbacks[id(layer)] = callbacks

    def _syncer(self, ref, name: str):
        """A callback that copies property ``name`` of the layer ``ref`` to its copies."""

        def sync(event=None):
            original = ref()
            if original is None:
                return
            for copy in self.copies_of(original):
                try:
                    setattr(copy, name, getattr(original, name))
                except (ValueError, TypeError, AttributeError):
                    pass  # a property the copy cannot take (e.g. mid-change)

        return sync

    def _unfollow(self, layer: Any) -> None:
        for name, cb in self._callbacks.pop(id(layer), []):
            layer.events.emitters[name].disconnect(cb)

    def _on_inserted(self, event) -> None:
        self._add(event.value, event.index)

    def _on_removed(self, event) -> None:
        layer = event.value
        self._unfollow(layer)
        for model, copy in zip(self.models, self.copies.pop(id(layer), [])):
            if copy in model.layers:
                model.layers.remove(copy)

    def _on_moved(self, event) -> None:
        dest = event.new_index if event.new_index < event.index else event.new_index + 1
        for model in self.models:
            model.layers.move(event.index, dest)
