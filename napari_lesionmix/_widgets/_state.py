"""The per-viewer state every LesionMix dock shares.

One :class:`LesionMixState` per napari viewer (:func:`get_state`) holds what the user
chose and what the engine computed from it:

============================  ==========================================================
``image_layers``              the chosen Image layers (one per channel)
``label_layer``               the chosen Labels layer (edited in place by Apply)
``placement_layer``           optional placement mask layer (``recipe.organ_label`` is
                              the other way to bound placement: a context label)
``recipe``                    the :class:`~napari_lesionmix.core.recipe.Recipe`: lesion
                              classes, organ label, every transform range, inpaint and
                              likelihood options. The one object the engine takes; the
                              Synthesise dock saves and loads it as JSON.
``case``                      :class:`~napari_lesionmix.core.case.Case` built from the
                              layers **without copying** when it can: ``case.labels``
                              *is* the Labels layer's array, ``case.channels[0]`` views a
                              float32 single-channel image layer.
``lesions`` / ``selected``    :func:`~napari_lesionmix.core.lesions.find_lesions` of the
                              case; index of the selected lesion (or None)
``bank``                      :class:`~napari_lesionmix.core.lesions.LesionBank`: from
                              the current case unless another one was set
``likelihood``                :class:`~napari_lesionmix.core.likelihood.LikelihoodMap`
``context``                   :class:`~napari_lesionmix.core.mix.CaseContext` (cached)
``undo_stack``                inverse :class:`~napari_lesionmix.core.mix.Edit` of every
                              applied change, newest last (with the layers' own boxes,
                              so Undo is bit for bit in any voxel type)
``location``                  the voxel (array index) where "Add" places a lesion
============================  ==========================================================

Signals (psygnal): ``case_changed``, ``lesions_changed``, ``selection_changed(int|None)``,
``likelihood_changed``, ``recipe_changed``, ``bank_changed``, ``preview_changed``,
``history_changed``, ``location_changed(tuple|None)``, ``click_mode_changed(str)``.

Preview protocol
----------------
:meth:`LesionMixState.preview` applies an Edit to the case (and so to the layers)
and keeps its inverse; the next preview first restores that patch, so previews never
accumulate. :meth:`clear_preview` restores it; :meth:`commit_preview` keeps the change
and pushes the inverse onto ``undo_stack``. Until it is committed, the case's real state
is the data minus the preview patch: the lesion list, the context, the bank and
snapshots for workers (:meth:`LesionMixState.real_case`) are computed without it, and
what was derived from the data is dropped when an applied change alters them. Only the edit's box is copied to the layers (when
the case does not share their memory) and the layers are refreshed; a preview
re-slices only the displayed data (no thumbnails, no extent), the thumbnails follow on
clear, commit, undo and reset.

Errors from user choices raise :class:`StateError` *before* anything changes; the docks
show them as napari notifications.

This module imports napari only for layer types; it holds no Qt widget.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from .._layers import ROLE_KEY, geometry_of_layer
from ..core.case import Case
from ..core.edits import CaseContext, Edit
from ..core.image_io import cast_to
from ..core.lesions import LesionBank, extract_entry, find_lesions, lesion_classes_of
from ..core.likelihood import LikelihoodMap
from ..core.recipe import Recipe, RecipeError

__all__ = ["LesionMixState", "StateError", "get_state", "is_helper_layer"]

_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class StateError(ValueError):
    """A user choice the state refuses (nothing was changed). The message says why."""


def get_state(viewer: Any) -> LesionMixState:
    """The shared state of ``viewer`` (created on first use, one per viewer).

    Parameters
    ----------
    viewer : napari.Viewer

    Returns
    -------
    LesionMixState
    """
    state = _STATES.get(viewer)
    if state is None:
        state = LesionMixState(viewer)
        _STATES[viewer] = state
    return state


def is_helper_layer(layer: Any) -> bool:
    """True for layers the plugin made for display (overlay, selection marker)."""
    return bool(getattr(layer, "metadata", {}).get(ROLE_KEY))


def _same_array(a: Any, b: Any) -> bool:
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.shares_memory(a, b)


@dataclass
class _LayerEdit(Edit):
    """An inverse :class:`Edit` that also holds the layers' own box before the change.

    The case keeps float32 copies of layers of other voxel types (float64, int32 > 2**24
    do not survive a round trip through float32), so restoring a layer is done from
    ``layer_boxes`` (image layer index -> box in the layer's dtype), bit for bit.
    """

    layer_boxes: dict = field(default_factory=dict)


class LesionMixState:
    """Shared state of the LesionMix docks of one viewer (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        Kept as a weak reference.
    """

    case_changed = Signal()
    lesions_changed = Signal()
    selection_changed = Signal(object)
    likelihood_changed = Signal()
    recipe_changed = Signal()
    bank_changed = Signal()
    preview_changed = Signal()
    history_changed = Signal()
    location_changed = Signal(object)
    click_mode_changed = Signal(str)

    def __init__(self, viewer: Any):
        self._viewer = weakref.ref(viewer)
        self.image_layers: list = []
        self.label_layer = None
        self.placement_layer = None
        self.recipe = Recipe()
        self.recipe_source: str | None = None  # a dataset recipe adopted on set_layers
        self.case: Case | None = None
        self.lesions: list = []
        self.selected: int | None = None
        self.likelihood: LikelihoodMap | None = None
        self.undo_stack: list[Edit] = []
        self.location: tuple | None = None
        self.click_mode = "select"
        self._bank: LesionBank | None = None
        self._bank_from_case = True
        self._context: CaseContext | None = None
        self._context_key: tuple | None = None
        self._preview: Edit | None = None
        self._entry_cache: tuple | None = None
        self._channel_views: list[bool] = []
        #: bumped whenever the applied data change (new case, apply, undo, reset)
        self.version = 0
        self._install_click()
        self._watch_removals()

    # ------------------------------------------------------------------ basics
    @property
    def viewer(self):
        """The viewer (None once it is gone)."""
        return self._viewer()

    @property
    def selected_lesion(self):
        """The selected :class:`~napari_lesionmix.core.lesions.Lesion`, or None."""
        if self.selected is None or self.selected >= len(self.lesions):
            return None
        return self.lesions[self.selected]

    @property
    def lesion_classes(self) -> list[int]:
        """The lesion classes in use: the recipe's, else every non-zero non-organ label."""
        if self.case is None:
            return list(self.recipe.lesion_classes or [])
        return list(self.context.classes)

    # ------------------------------------------------------------------ the case
    def set_layers(self, image_layers: Sequence, label_layer, placement_layer=None) -> None:
        """Choose the layers and build the case from them.

        Parameters
        ----------
        image_layers : sequence of napari.layers.Image
            One layer per channel, all on the label layer's grid.
        label_layer : napari.layers.Labels
        placement_layer : napari.layers.Labels or Image, optional
            Non-zero voxels are where lesions may go.

        Raises
        ------
        StateError
            No image or label layer, shapes or geometries that disagree, unsupported
            data (RGB, multiscale, NaN). Nothing is changed.
        """
        self.clear_preview()  # the case is built from the real data, never the preview
        case, views = self._build_case(list(image_layers), label_layer, placement_layer)
        same_arrays = (self.case is not None and label_layer is self.label_layer
                       and case.labels is self.case.labels
                       and len(image_layers) == len(self.image_layers)
                       and all(a is b for a, b in zip(image_layers, self.image_layers)))
        if not same_arrays:
            self.undo_stack.clear()
        self.image_layers = list(image_layers)
        self.label_layer = label_layer
        self.placement_layer = placement_layer
        self.case = case
        self._channel_views = views
        self._adopt_dataset_recipe(label_layer)
        self._case_replaced()
        if self._bank_from_case:
            self.bank_changed.emit()

    def _adopt_dataset_recipe(self, label_layer) -> None:
        """Take the recipe a dataset ships (``lesionmix_recipe.json``, e.g. the liver
        sample's organ label and tumour class) while the recipe is still the default."""
        path = getattr(label_layer, "metadata", {}).get("lesionmix_recipe")
        if not path or self.recipe != Recipe():
            return
        try:
            self.recipe = Recipe.from_json(path)
        except (RecipeError, OSError):
            return  # a broken file beside the data must not stop the user; the default stays
        self.recipe_source = str(path)
        self.recipe_changed.emit()

    def _case_replaced(self) -> None:
        """Drop what was derived from the previous case and tell the docks."""
        self.version += 1
        self._context = self._entry_cache = None
        if self._bank_from_case:
            self._bank = None
        self.location = None
        self.case_changed.emit()
        self.history_changed.emit()
        self.refresh_lesions()

    def _build_case(self, image_layers: list, label_layer, placement_layer):
        if label_layer is None:
            raise StateError("choose a Labels layer: the case needs a label map")
        if not image_layers:
            raise StateError("choose at least one Image layer")
        labels = label_layer.data
        if getattr(label_layer, "multiscale", False):
            raise StateError(f"labels {label_layer.name!r}: multiscale layers are not supported")
        labels = np.asarray(labels)
        if labels.ndim not in (2, 3):
            raise StateError(f"labels {label_layer.name!r}: expected a 2D or 3D label map, got "
                             f"shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise StateError(f"labels {label_layer.name!r}: integer labels needed, got "
                             f"{labels.dtype}")
        try:
            geometry = geometry_of_layer(label_layer)
        except ValueError as exc:
            raise StateError(f"labels {label_layer.name!r}: {exc}") from None
        channels, views = [], []
        for layer in image_layers:
            if getattr(layer, "rgb", False) or getattr(layer, "multiscale", False):
                raise StateError(f"image {layer.name!r}: RGB and multiscale images are not "
                                 "supported")
            data = np.asarray(layer.data)
            if data.shape != labels.shape:
                raise StateError(f"image {layer.name!r} has shape {data.shape} but labels "
                                 f"{label_layer.name!r} have shape {labels.shape}: they must "
                                 "be on the same voxel grid")
            try:
                diff = geometry.difference(geometry_of_layer(layer))
            except ValueError as exc:
                raise StateError(f"image {layer.name!r}: {exc}") from None
            if diff:
                raise StateError(f"image {layer.name!r} and labels {label_layer.name!r} have "
                                 f"different geometry: {diff}")
            if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
                raise StateError(f"image {layer.name!r} holds NaN or Inf values")
            if data.dtype.kind not in "biuf":
                raise StateError(f"image {layer.name!r}: unsupported voxel type {data.dtype}")
            channels.append(data)
            views.append(data.dtype == np.float32 and len(image_layers) == 1)
        if len(channels) == 1:
            stacked = channels[0][None] if views[0] else channels[0].astype(np.float32)[None]
        else:
            stacked = np.stack([c.astype(np.float32, copy=False) for c in channels])
        placement = None
        if placement_layer is not None:
            pdata = np.asarray(placement_layer.data)
            if pdata.shape != labels.shape:
                raise StateError(f"placement {placement_layer.name!r} has shape {pdata.shape} "
                                 f"but labels have shape {labels.shape}")
            placement = pdata != 0
        case = Case(channels=stacked, labels=labels, geometry=geometry, name=label_layer.name,
                    placement=placement,
                    channel_names=[layer.name for layer in image_layers],
                    image_dtypes=[c.dtype.name if c.dtype.kind in "iuf" else "float32"
                                  for c in channels])
        return case, views

    def rebuild_case(self) -> None:
        """Build the case again from the chosen layers (e.g. after their data changed)."""
        self.set_layers(self.image_layers, self.label_layer, self.placement_layer)

    # ------------------------------------------------------------------ recipe
    def set_recipe(self, recipe: Recipe) -> None:
        """Replace the recipe; lesions, context and bank follow when their fields change."""
        old = self.recipe
        self.recipe = recipe
        structural = (old.lesion_classes != recipe.lesion_classes
                      or old.organ_label != recipe.organ_label
                      or old.min_voxels != recipe.min_voxels
                      or old.connectivity != recipe.connectivity
                      or old.populate.margin != recipe.populate.margin)
        self.recipe_changed.emit()
        if structural and self.case is not None:
            self.clear_preview()
            self._context = None
            self._entry_cache = None
            if self._bank_from_case:
                self._bank = None
                self.bank_changed.emit()
            self.refresh_lesions()

    def update_recipe(self, section: str | None = None, **fields: Any) -> Recipe:
        """Change some recipe fields (validated); ``section`` is populate/inpaint/likelihood.

        Raises
        ------
        StateError
            A bad value (the message names the field); the recipe is unchanged.
        """
        data = self.recipe.to_dict()
        target = data if section is None else data[section]
        for key, value in fields.items():
            target[key] = list(value) if isinstance(value, tuple) else value
        try:
            recipe = Recipe.from_dict(data)
        except RecipeError as exc:
            raise StateError(str(exc)) from None
        self.set_recipe(recipe)
        return recipe

    def set_lesion_classes(self, classes: Sequence[int] | None) -> None:
        """Set ``recipe.lesion_classes`` (None = every non-zero label but the organ)."""
        self.update_recipe(lesion_classes=None if not classes else [int(c) for c in classes])

    def set_organ_label(self, value: int | None) -> None:
        """Set ``recipe.organ_label``: the context label that bounds placement."""
        self.update_recipe(organ_label=None if not value else int(value))

    # ------------------------------------------------------------------ derived objects
    @property
    def context(self) -> CaseContext | None:
        """:class:`CaseContext` of the case, rebuilt only when its inputs change.

        It depends on the lesion classes, the organ label and the placement; other recipe
        fields (transform ranges, inpaint options) are read from ``context.recipe``, which
        is kept equal to the current recipe.
        """
        if self.case is None:
            return None
        key = (tuple(self.recipe.lesion_classes or ()), self.recipe.organ_label,
               id(self.case))
        if self._context is None or self._context_key != key:
            self._context = CaseContext(self.real_case(), self.recipe)
            self._context_key = key
        self._context.recipe = self.recipe
        return self._context

    @property
    def bank(self) -> LesionBank | None:
        """The lesion bank: from the current case unless :meth:`set_bank` gave another."""
        if self._bank is None and self._bank_from_case and self.case is not None:
            self._bank = LesionBank.from_recipe([self.real_case()], self.recipe)
        return self._bank

    def real_labels(self) -> np.ndarray | None:
        """The case's labels without the preview patch (None without a case).

        The case's own array while no preview is shown, else a copy with the patch
        restored: what lesion lists, loads and maps are computed from.
        """
        if self.case is None:
            return None
        if self._preview is None:
            return self.case.labels
        labels = self.case.labels.copy()
        labels[tuple(self._preview.slices)] = self._preview.labels
        return labels

    def real_case(self, copy: bool = False) -> Case | None:
        """The case without the preview patch (None without a case).

        Parameters
        ----------
        copy : bool
            Always return a copy (a snapshot a thread worker can read while later
            previews change the case in place). Without it the case itself is returned
            while no preview is shown.

        Returns
        -------
        Case or None
        """
        if self.case is None:
            return None
        if self._preview is None and not copy:
            return self.case
        case = self.case.copy()
        if self._preview is not None:
            Edit(self._preview.slices, self._preview.channels,
                 self._preview.labels).apply(case)
        return case

    @property
    def bank_is_from_case(self) -> bool:
        """True while the bank is built from the current case (no :meth:`set_bank` bank)."""
        return self._bank_from_case

    def set_bank(self, bank: LesionBank | None) -> None:
        """Use another bank (e.g. built from a training folder); None = from the case."""
        self._bank = bank
        self._bank_from_case = bank is None
        self.bank_changed.emit()

    def set_likelihood(self, lmap: LikelihoodMap | None) -> None:
        """Set (or clear) the likelihood map."""
        self.likelihood = lmap
        self.likelihood_changed.emit()

    def refresh_lesions(self) -> None:
        """Find the lesions of the case again (one labelling pass); keep the selection
        when the selected lesion still exists (same seed voxel and class)."""
        previous = self.selected_lesion
        if self.case is None:
            self.lesions = []
        else:
            labels = self.real_labels()  # a preview is not a lesion of the case
            classes = lesion_classes_of(labels, self.recipe.lesion_classes,
                                        self.recipe.organ_label)
            self.lesions = find_lesions(labels, classes,
                                        self.case.geometry.spacing_zyx,
                                        self.recipe.min_voxels, self.recipe.connectivity,
                                        self.case.name)
        self.selected = None
        self._entry_cache = None
        if previous is not None:
            for i, les in enumerate(self.lesions):
                if les.label == previous.label and les.seed == previous.seed:
                    self.selected = i
                    break
        self.lesions_changed.emit()
        self.selection_changed.emit(self.selected)

    def select(self, index: int | None) -> None:
        """Select a lesion by its index in :attr:`lesions` (None clears the selection)."""
        if index is not None and not 0 <= index < len(self.lesions):
            raise StateError(f"no lesion #{index}")
        if index == self.selected:
            return
        self.clear_preview()
        self.selected = index
        self._entry_cache = None
        self.selection_changed.emit(index)

    def lesion_at(self, index_zyx: Sequence[int]) -> int | None:
        """The index of the lesion holding voxel ``index_zyx``, or None."""
        if self.case is None:
            return None
        idx = tuple(int(round(v)) for v in index_zyx)
        shape = self.case.spatial_shape
        if len(idx) != len(shape) or any(not 0 <= i < n for i, n in zip(idx, shape)):
            return None
        labels = self.real_labels()
        value = int(labels[idx])
        for k, les in enumerate(self.lesions):
            if les.label == value and all(s.start <= i < s.stop for s, i in zip(les.bbox, idx)):
                comp_mask, box = _component_mask(labels, les, self.recipe.connectivity)
                local = tuple(i - s.start for i, s in zip(idx, box))
                if comp_mask[local]:
                    return k
        return None

    def selected_entry(self):
        """The selected lesion cut out of the case as a bank entry (cached per selection).

        Taken from the case as it is without the preview patch.
        """
        lesion = self.selected_lesion
        if lesion is None or self.case is None:
            return None
        key = (self.selected, lesion.seed, lesion.label)
        if self._entry_cache is None or self._entry_cache[0] != key:
            restore = self._preview
            if restore is not None:
                self.clear_preview()  # cut the lesion from the real data
            ctx = self.context
            entry = extract_entry(self.case, lesion, self.recipe.populate.margin,
                                  self.recipe.connectivity, stats=ctx.stats)
            self._entry_cache = (key, entry)
        return self._entry_cache[1]

    # ------------------------------------------------------------------ location / clicks
    def set_location(self, index_zyx: Sequence[float] | None) -> None:
        """Where "Add" centres the lesion (array index), or None."""
        self.location = None if index_zyx is None else tuple(int(round(v)) for v in index_zyx)
        self.location_changed.emit(self.location)

    def set_click_mode(self, mode: str) -> None:
        """``"select"``: a click selects the lesion under it; ``"location"``: a click sets
        :attr:`location`."""
        if mode not in ("select", "location"):
            raise ValueError(f"unknown click mode {mode!r}")
        self.click_mode = mode
        self.click_mode_changed.emit(mode)

    def world_to_index(self, position: Sequence[float]) -> tuple | None:
        """Voxel index (case grid) of a world position, None if outside or no case."""
        if self.case is None or self.label_layer is None:
            return None
        data = np.asarray(self.label_layer.world_to_data(position), float)
        idx = tuple(int(v) for v in np.round(data))
        if any(not 0 <= i < n for i, n in zip(idx, self.case.spatial_shape)):
            return None
        return idx

    def handle_click(self, position: Sequence[float]) -> None:
        """React to a click at a world position according to :attr:`click_mode`."""
        idx = self.world_to_index(position)
        if idx is None:
            return
        if self.click_mode == "location":
            self.set_location(idx)
        else:
            k = self.lesion_at(idx)
            if k is not None:
                self.select(k)

    def forget_case(self) -> None:
        """Drop the case (its layers left the viewer): no case, no lesions, no history."""
        self._preview = None  # its layers are gone: nothing to restore
        self.case = None
        self.image_layers, self.label_layer, self.placement_layer = [], None, None
        self.undo_stack.clear()
        self._case_replaced()

    def _watch_removals(self) -> None:
        viewer = self.viewer
        if viewer is None:
            return
        ref = weakref.ref(self)

        def on_removed(event):
            state = ref()
            if state is None or state.case is None:
                return
            used = [*state.image_layers, state.label_layer, state.placement_layer]
            if any(event.value is lay for lay in used if lay is not None):
                state.forget_case()

        viewer.layers.events.removed.connect(on_removed)

    def _install_click(self) -> None:
        viewer = self.viewer
        if viewer is None:
            return
        ref = weakref.ref(self)

        def on_mouse(_viewer, event):
            state = ref()
            if state is None or event.type != "mouse_press" or state.case is None:
                return
            if getattr(event, "button", None) not in (None, 1) or len(_viewer.dims.displayed) != 2:
                return
            active = _viewer.layers.selection.active
            if getattr(active, "mode", "pan_zoom") not in ("pan_zoom", "transform"):
                return  # painting, picking, drawing: not ours
            if state.click_mode == "location":
                state.handle_click(event.position)
                return
            start = np.asarray(event.position, float)
            yield
            moved = False
            while event.type == "mouse_move":
                moved = True
                yield
            if not moved or np.allclose(start, event.position):
                state.handle_click(start)

        on_mouse.__name__ = "lesionmix_click"
        viewer.mouse_drag_callbacks.append(on_mouse)

    # ------------------------------------------------------------------ edits
    @property
    def has_preview(self) -> bool:
        """True while a preview patch is shown."""
        return self._preview is not None

    def _layer_boxes(self, slices: tuple) -> dict:
        """The box of every image layer that does not share the case's memory, copied in
        the layer's own voxel type (what restores it bit for bit)."""
        boxes = {}
        for c, layer in enumerate(self.image_layers):
            if not _same_array(self.case.channels[c], layer.data):
                boxes[c] = np.array(layer.data[tuple(slices)], copy=True)
        return boxes

    def _write_box(self, slices: tuple, exact: dict | None = None) -> None:
        """Copy a box of the case into the layers that do not share its memory.

        ``exact`` (image layer index -> box in the layer's dtype) is written as it is
        instead (restoring a preview or an applied change).
        """
        full = (slice(None),) + tuple(slices)
        for c, layer in enumerate(self.image_layers):
            if not _same_array(self.case.channels[c], layer.data):
                dst = layer.data
                if exact is not None and c in exact:
                    dst[tuple(slices)] = exact[c]
                    continue
                dst[tuple(slices)] = cast_to(self.case.channels[full][c], dst.dtype)
        if self.label_layer is not None and not _same_array(self.case.labels,
                                                            self.label_layer.data):
            self.label_layer.data[tuple(slices)] = self.case.labels[tuple(slices)]

    def _refresh_layers(self, thumbnail: bool = True) -> None:
        """Redraw the layers after their data changed in place.

        ``thumbnail=False`` (previews) only re-slices the displayed data: the thumbnails
        (two full-slice colour maps and a repaint of the layer list), the extent (the
        shape never changes; clearing it makes the viewer recompute its dims) and the
        highlight stay as they are. The thumbnails are brought up to date by the next
        full refresh (clear, commit, undo, reset).
        """
        for layer in [*self.image_layers, self.label_layer]:
            if layer is None:
                continue
            if not _selective_refresh(layer):
                layer.refresh()
            elif thumbnail:
                layer.refresh(extent=False)
            else:
                layer.refresh(thumbnail=False, extent=False, highlight=False)

    def _refresh_thumbnails(self) -> None:
        """Bring the layer thumbnails up to date (the displayed data already is)."""
        for layer in [*self.image_layers, self.label_layer]:
            if layer is None or not layer.visible:
                continue
            if _selective_refresh(layer):
                layer.refresh(data_displayed=False, extent=False, highlight=False)
            else:
                layer.refresh()

    def _apply(self, edit: Edit, refresh: bool = True) -> Edit:
        """Write ``edit`` into the case and the layers; return its inverse (which also
        holds the layers' boxes in their own voxel types, see :class:`_LayerEdit`)."""
        boxes = self._layer_boxes(edit.slices)
        inverse = edit.apply(self.case)
        self._write_box(edit.slices, getattr(edit, "layer_boxes", None))
        if refresh:
            self._refresh_layers()
        return _LayerEdit(inverse.slices, inverse.channels, inverse.labels, boxes)

    def preview(self, make_edit: Callable[[Case, CaseContext], Edit | None]) -> Edit | None:
        """Replace the preview with the edit ``make_edit(case, context)`` returns.

        The current preview is restored first, so ``make_edit`` sees the case without
        it (what the preview is computed from is the real state). The layers are
        refreshed once. If ``make_edit`` raises, the old preview stays removed and the
        error propagates.

        Parameters
        ----------
        make_edit : callable(case, context) -> Edit or None
            Computes the new preview with the engine; None shows no preview.

        Returns
        -------
        Edit or None
            The edit shown.
        """
        if self.case is None:
            return None
        if self._preview is not None:
            self._apply(self._preview, refresh=False)
            self._preview = None
        try:
            edit = make_edit(self.case, self.context)
            if edit is not None:
                self._preview = self._apply(edit, refresh=False)
        finally:
            self._refresh_layers(thumbnail=False)
            self.preview_changed.emit()
        return edit

    def clear_preview(self) -> None:
        """Restore the data under the preview patch, if any."""
        if self._preview is not None and self.case is not None:
            self._apply(self._preview)
            self._preview = None
            self.preview_changed.emit()

    def commit_preview(self) -> bool:
        """Keep the previewed change; push its inverse on the undo stack.

        Returns
        -------
        bool
            False if there was nothing to commit.
        """
        if self._preview is None:
            return False
        self.undo_stack.append(self._preview)
        self._preview = None
        self._refresh_thumbnails()
        self._after_change()
        return True

    def undo(self) -> bool:
        """Undo the last committed change (bit for bit). False if there is none."""
        self.clear_preview()
        if not self.undo_stack:
            return False
        self._apply(self.undo_stack.pop())
        self._after_change()
        return True

    def reset(self) -> int:
        """Undo every committed change (and the preview); return how many were undone."""
        self.clear_preview()
        n = len(self.undo_stack)
        while self.undo_stack:
            self._apply(self.undo_stack.pop())
        if n:
            self._after_change()
        return n

    def _after_change(self) -> None:
        """The applied data changed: what was derived from them is computed again."""
        self.version += 1
        self._context = None
        self._entry_cache = None
        if self._bank_from_case:
            self._bank = None
            self.bank_changed.emit()
        self.preview_changed.emit()
        self.history_changed.emit()
        self.refresh_lesions()


_SELECTIVE: dict = {}


def _selective_refresh(layer: Any) -> bool:
    """True when ``layer.refresh`` takes ``thumbnail=``/``extent=`` (napari ≥ 0.5.x);
    older versions only refresh everything."""
    cls = type(layer)
    if cls not in _SELECTIVE:
        import inspect

        try:
            params = inspect.signature(layer.refresh).parameters
        except (TypeError, ValueError):
            params = {}
        _SELECTIVE[cls] = all(k in params for k in ("thumbnail", "extent", "highlight",
                                                     "data_displayed"))
    return _SELECTIVE[cls]


def _component_mask(labels: np.ndarray, lesion, connectivity: str):
    from ..core.lesions import lesion_mask

    return lesion_mask(labels, lesion, connectivity)
