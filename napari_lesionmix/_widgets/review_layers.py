"""The Review dock's layers: the case shown, its source, lesions by origin, the difference.

Layers are made once and their data replaced when the case changes, so stepping through
a dataset does not rebuild the layer list. Every layer is placed with the case's
geometry (the same helper as the reader), so source and result lie on the same grid in
world coordinates, and the editor's views (which follow the viewer's slice point) follow
the lesion shown here. All of them carry ``ROLE_KEY: "review"`` in their metadata, so
the editing docks' layer pickers leave them alone.

Lesions by origin is one Labels layer with one id per lesion of the lesion table and a
``features`` table (origin, class, volume, donor, transform), which napari shows in the
status bar when the mouse is over a lesion; removed lesions are a second Labels layer
drawn as outlines over the source.
"""

from __future__ import annotations

import numpy as np

from .._layers import ROLE_KEY, display_layout, layer_kwargs
from ..review.qc import ORIGIN_COLOURS
from ..review.sheet import window_of

__all__ = ["ReviewLayers", "NAMES"]

NAMES = {"source": "review: source", "result": "review: case",
         "lesions": "review: lesions by origin", "removed": "review: removed (on source)",
         "difference": "review: difference (case − source)"}
_DIFF_COLOURS = [[0.15, 0.45, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.35, 0.1, 1.0]]


def _rgba(colour: str, alpha: float = 1.0) -> np.ndarray:
    c = colour.lstrip("#")
    return np.array([int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)] + [alpha])


#: the lesion of row k has id 3k + code: its colour follows from the id alone, so one fixed
#: colour map serves every case (a new one per case would rebuild every canvas's shader)
ORIGIN_ID = {"kept": 1, "lesion": 1, "added": 2, "removed": 3}
_UINT8_ROWS = 84  # 3 * 84 + 3 = 255


def lesion_id(row: int, origin: str) -> int:
    """The label value of row ``row`` of the lesion table."""
    return 3 * row + ORIGIN_ID[origin]


def origin_colormap(n_ids: int):
    """A direct colour map for ids 1..n_ids: id mod 3 gives kept / added / removed."""
    from napari.utils.colormaps import DirectLabelColormap

    by_code = {1: _rgba(ORIGIN_COLOURS["kept"]), 2: _rgba(ORIGIN_COLOURS["added"]),
               0: _rgba(ORIGIN_COLOURS["removed"])}
    colours = {None: np.zeros(4), 0: np.zeros(4)}
    colours.update({i: by_code[i % 3] for i in range(1, n_ids + 1)})
    return DirectLabelColormap(color_dict=colours)


def lesion_maps(case) -> tuple[np.ndarray, np.ndarray, dict]:
    """Label maps of the lesion table's rows: result lesions (kept and added) and removed
    ones (on the source), ids from :func:`lesion_id`, and the features table (its
    ``index`` column holds the ids)."""
    from ..core.lesions import Lesion, lesion_mask
    from ..review.changes import describe_params

    shape = case.result.labels.shape
    n = len(case.changes.lesions)
    # uint8 while the ids fit: napari maps a direct colormap over the whole dtype range
    dtype = np.uint8 if n <= _UINT8_ROWS else np.uint16
    res = np.zeros(shape, dtype)
    gone = np.zeros(shape, dtype)
    src_labels = case.source.labels if case.source is not None else None
    for k, les in enumerate(case.changes.lesions):
        removed = les.origin == "removed"
        labels = src_labels if removed else case.result.labels
        if labels is None:
            continue
        if les.seed is not None:
            mask, box = lesion_mask(labels, Lesion(les.label, 0, les.voxels, les.volume_mm3,
                                                   les.centroid, les.bbox, les.seed))
        else:  # an added spot below min_voxels: its voxels in the operation's box
            box = les.bbox
            mask = (case.changes.origin[box] == 2) & (labels[box] == les.label)
        view = (gone if removed else res)[box]
        view[mask & (view == 0)] = lesion_id(k, les.origin)
    features = {"index": [0], "origin": ["none"], "class": [0], "volume_mm3": [0.0],
                "donor": [""], "transform": [""]}
    for k, les in enumerate(case.changes.lesions):
        features["index"].append(lesion_id(k, les.origin))
        features["origin"].append(les.origin)
        features["class"].append(les.label)
        features["volume_mm3"].append(round(les.volume_mm3, 1))
        features["donor"].append(les.donor or "")
        features["transform"].append(describe_params(les.params) if les.params else "")
    return res, gone, features


def _same(current, wanted) -> bool:
    """An attribute already holds ``wanted`` (arrays, transforms, numbers, names)."""
    if hasattr(current, "affine_matrix"):  # a napari Affine
        current = current.affine_matrix
    try:
        return bool(np.allclose(np.asarray(current, float), np.asarray(wanted, float)))
    except (TypeError, ValueError):
        return current == wanted


def _zeros(shape, dtype) -> np.ndarray:
    """A read-only array of zeros that takes no memory."""
    return np.broadcast_to(np.zeros((), dtype), shape)


class ReviewLayers:
    """Creates and updates the Review dock's layers in a viewer."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.showing = "result"  # or "source", when toggled in place
        self.side_by_side = False
        self.channel = 0
        self.has_source = self.has_difference = False
        self.geometry = None  # of the case shown (its file's)
        self._cmaps: dict = {}  # layer key -> its fixed origin colour map
        self._diff_cmap = None

    # ------------------------------------------------------------------ helpers
    def layer(self, key: str):
        """The review layer ``key`` (see :data:`NAMES`), or None."""
        name = NAMES[key]
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _put(self, key: str, data, kind: str, geometry, **style):
        """Show ``data`` (an array of the case's file grid) as review layer ``key``,
        transposed the way the reader shows the file (slices cut physical planes)."""
        axes, shown = display_layout(geometry)
        if tuple(axes) != tuple(range(data.ndim)):
            data = data.transpose(axes)
        kw = layer_kwargs(shown, NAMES[key], file_geometry=geometry, axes=axes)
        kw["metadata"][ROLE_KEY] = "review"
        layer = self.layer(key)
        if layer is not None and (layer.data.ndim != data.ndim
                                  or type(layer).__name__.lower() != kind):
            self.viewer.layers.remove(layer)
            layer = None
        if layer is None:
            add = self.viewer.add_image if kind == "image" else self.viewer.add_labels
            extra = {k: style.pop(k) for k in ("contour",) if k in style}
            layer = add(data, **kw, **style)
            for attr, value in extra.items():
                setattr(layer, attr, value)
            return layer
        for attr in ("scale", "translate", "affine"):
            if attr in kw and not _same(getattr(layer, attr), kw[attr]):
                setattr(layer, attr, kw[attr])  # each set redraws: only on a new grid
        layer.metadata.update(kw["metadata"])
        layer.data = data
        for attr, value in style.items():
            if attr == "features" or (attr == "colormap" and layer.colormap is not value) \
                    or (attr not in ("colormap", "features")
                        and not _same(getattr(layer, attr), value)):
                setattr(layer, attr, value)
        return layer

    def remove_all(self) -> None:
        for key in NAMES:
            layer = self.layer(key)
            if layer is not None:
                self.viewer.layers.remove(layer)

    # ------------------------------------------------------------------ showing a case
    def show(self, case) -> None:
        """Show ``case`` (a LoadedCase): replaces the data of the review layers.

        The five layers stay in the viewer from case to case (removing a Labels layer
        while another is drawn upsets napari's label textures); what a case lacks (an
        original has no source) gets a zero view and stays hidden.
        """
        geom = self.geometry = case.result.geometry
        ch = min(self.channel, case.result.n_channels - 1)
        result = case.result.channels[ch]
        shape = result.shape
        window = window_of(result)
        self.has_source = case.source is not None
        self.has_difference = case.difference is not None
        source = case.source.channels[ch] if self.has_source else _zeros(shape, result.dtype)
        self._put("source", source, "image", geom, colormap="gray", contrast_limits=window)
        self._put("result", result, "image", geom, colormap="gray", contrast_limits=window)
        res, gone, features = lesion_maps(case)
        from napari.utils import Colormap

        for key, data, style in (("lesions", res, {"opacity": 0.55}),
                                 ("removed", gone, {"opacity": 1.0, "contour": 1})):
            n_ids = int(np.iinfo(data.dtype).max) if data.dtype == np.uint8 \
                else lesion_id(len(case.changes.lesions), "removed")
            cmap = self._cmaps.get(key)
            if cmap is None or len(cmap.color_dict) - 2 < n_ids:  # one per layer, kept
                cmap = self._cmaps[key] = origin_colormap(n_ids)
            self._put(key, data, "labels", geom, colormap=cmap, features=features, **style)
        if self.has_difference:
            diff = case.difference[min(ch, case.difference.shape[0] - 1)]
            changed = np.abs(diff[diff != 0])
            top = float(np.percentile(changed, 98)) if changed.size else 1.0
        else:
            diff, top = _zeros(shape, np.float32), 1.0
        layer = self.layer("difference")
        visible = bool(layer is not None and layer.visible and self.has_difference)
        layer = self._put("difference", diff, "image", geom,
                          colormap=self._diff_cmap or Colormap(_DIFF_COLOURS,
                                                               name="review difference"),
                          contrast_limits=(-top, top))
        self._diff_cmap = layer.colormap
        if layer.visible != visible:
            layer.visible = visible
        self.apply_view()

    def _order(self) -> None:
        """Source, its outlines, the case, its lesions, the difference, in that order: on
        top of the other layers, or at the bottom side by side (napari's grid packs
        layers two by two from the bottom: source | case | difference)."""
        wanted = [self.layer(k) for k in ("source", "removed", "result", "lesions",
                                          "difference")]
        layers = self.viewer.layers
        mine = [lyr for lyr in wanted if lyr is not None]
        others = [lyr for lyr in layers if lyr.metadata.get(ROLE_KEY) != "review"]
        order = mine + others if self.side_by_side else others + mine
        for i, layer in enumerate(order):
            j = layers.index(layer)
            if j != i:
                layers.move(j, i)

    # ------------------------------------------------------------------ views
    def apply_view(self) -> None:
        """Visibility for toggle-in-place or side by side (napari's grid)."""
        src, res = self.layer("source"), self.layer("result")
        removed, lesions = self.layer("removed"), self.layer("lesions")
        if res is None:
            return
        canvas = getattr(self.viewer, "canvas", None)  # napari >= 0.9 moved the grid
        grid = canvas.grid if canvas is not None and hasattr(canvas, "grid") else self.viewer.grid
        self._order()
        if self.side_by_side and self.has_source:
            for layer in (src, res, removed, lesions):
                layer.visible = True
            grid.stride = 2
            grid.shape = (1, -1)
            grid.enabled = True
            return
        grid.enabled = False
        on_source = self.showing == "source" and self.has_source
        for layer, visible in ((src, on_source), (removed, on_source), (res, not on_source),
                               (lesions, not on_source)):
            if layer.visible != visible:
                layer.visible = visible

    def toggle(self) -> str:
        """Swap source and case in place; returns what is shown now."""
        self.showing = "source" if self.showing == "result" else "result"
        self.apply_view()
        return self.showing


    def go_to(self, lesion) -> tuple:
        """Move the viewer's slice point and camera to a lesion; returns the world point
        (physical mm, napari's z, y, x order)."""
        layer = self.layer("result")
        axes, _ = display_layout(self.geometry)
        shown = [lesion.centroid[a] for a in axes]
        world = tuple(float(v) for v in layer.data_to_world(shown))
        dims = self.viewer.dims
        for axis, value in enumerate(world[-dims.ndim:]):
            dims.set_point(axis, value)
        self.viewer.camera.center = world[-3:] if len(world) >= 3 else world
        return world
