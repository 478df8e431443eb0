"""The edit session: one case, its recipe, the selection, the preview and the history.

The preview is an :class:`~napari_lesionmix.core.edits.Edit` kept beside the case, never
written into it: what the case holds is always the data the user applied. :meth:`apply`
writes the preview into the case and keeps the edit that undoes it; :meth:`undo` writes
that back. Views that hold copies of the case (napari layers of another voxel type) hear
:attr:`EditSession.before_change` and :attr:`EditSession.data_changed` and keep
what they need in :attr:`Change.extra`, so an undo restores them bit for bit.

A user choice the session refuses raises :class:`SessionError` before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from psygnal import Signal

from ..core.case import Case
from ..core.edits import CaseContext, Edit
from ..core.lesions import LesionBank, extract_entry, find_lesions, lesion_classes_of, lesion_mask
from ..core.likelihood import LikelihoodMap
from ..core.recipe import Recipe
from .errors import SessionError
from .history import Change, History
from .recipes import RecipeRules

__all__ = ["EditSession"]


class EditSession(RecipeRules, History):
    """What a person editing one case works with (see the package docstring).

    Parameters
    ----------
    recipe : Recipe, optional
        The starting recipe (default: ``Recipe()``).

    Attributes
    ----------
    case : Case or None
    case_error : str
        Why there is no case (the chosen layers could not make one), or "".
    recipe : Recipe
    recipe_origin, recipe_source : str, str or None
        Where the recipe came from (see :mod:`.recipes`).
    lesions : list of Lesion
    selected : int or None
    likelihood : LikelihoodMap or None
    location : tuple of int or None
        The voxel (array index) where an added lesion is centred.
    click_mode : {"select", "location"}
        What a click on the canvas does.
    preview : Edit or None
        The change shown, not applied.
    preview_kind : str
        ``"add"``, ``"remove"`` or "" (no preview).
    preview_reason : str
        Why the batch engine would refuse the previewed location ("" = it would accept).
    undo_stack : list of Change
        Applied changes, newest last.
    history_note : str
        Why the history was last cleared, when it was not the user's doing.
    version : int
        Bumped whenever the case's data change (new case, apply, undo, reset).
    """

    case_changed = Signal()
    lesions_changed = Signal()
    selection_changed = Signal(object)
    likelihood_changed = Signal()
    recipe_changed = Signal()
    recipe_question = Signal(str)
    bank_changed = Signal()
    preview_changed = Signal()
    history_changed = Signal()
    location_changed = Signal(object)
    click_mode_changed = Signal(str)
    focus_requested = Signal(object)
    before_change = Signal(object, object)
    data_changed = Signal(object, object, bool)
    message = Signal(str, str)

    def __init__(self, recipe: Recipe | None = None):
        self.recipe = recipe if recipe is not None else Recipe()
        self.recipe_origin = "default"
        self.recipe_source: str | None = None
        self.case: Case | None = None
        self.case_error = ""
        self.lesions: list = []
        self.selected: int | None = None
        self.likelihood: LikelihoodMap | None = None
        self.location: tuple | None = None
        self.click_mode = "select"
        self.preview: Edit | None = None
        self.preview_kind = ""
        self.preview_reason = ""
        self.undo_stack: list[Change] = []
        self.history_note = ""
        self.version = 0
        self._dataset_recipe: str | None = None
        self._bank: LesionBank | None = None
        self._bank_from_case = True
        self._context: CaseContext | None = None
        self._context_key: tuple | None = None
        self._entry_cache: tuple | None = None

    # ------------------------------------------------------------------ the case
    def set_case(self, case: Case, dataset_recipe: str | None = None,
                 keep_history: bool = False, note: str = "") -> None:
        """Work on ``case`` from now on.

        Parameters
        ----------
        case : Case
        dataset_recipe : str, optional
            The ``lesionmix_recipe.json`` of the dataset the case comes from: adopted,
            or asked about, by the rules of :func:`.recipes.decide`.
        keep_history : bool
            The same data again (e.g. the same layers chosen again): keep the undo stack.
        note : str
            Why the history was cleared, when it was not the user's doing.
        """
        self.clear_preview()
        if not keep_history:
            self.undo_stack.clear()
            self.history_note = note
        self.case = case
        self.case_error = ""
        if dataset_recipe != self._dataset_recipe:
            self._dataset_recipe = dataset_recipe
            self._follow_dataset(dataset_recipe)
        self._case_replaced()

    def forget_case(self, why: str = "") -> None:
        """No case any more (its layers left the viewer): no lesions, no history."""
        self.preview = None
        self.preview_kind = self.preview_reason = ""
        self.case = None
        self.case_error = why
        self.undo_stack.clear()
        self._case_replaced()
        self.preview_changed.emit()

    def set_case_error(self, why: str) -> None:
        """The chosen layers make no case: say why (the current case, if any, stays)."""
        self.case_error = why
        self.case_changed.emit()

    def why_idle(self) -> str:
        """Why nothing can be edited ("" when there is a case)."""
        if self.case is not None:
            return ""
        if self.case_error:
            return f"No case: {self.case_error}"
        return "No case yet: open an image and its label map, then choose them in the Case tab."

    def snapshot(self) -> Case | None:
        """A copy of the case a thread worker can read while the user applies changes."""
        return None if self.case is None else self.case.copy()

    def _case_replaced(self) -> None:
        previous = self.selected_lesion  # the same lesion stays selected in the same data
        self.lesions, self.selected = [], None  # nothing of the old case while views update
        self.version += 1
        self._context = self._entry_cache = None
        if self._bank_from_case:
            self._bank = None
        self.location = None
        self.case_changed.emit()
        self.location_changed.emit(None)
        self.history_changed.emit()
        if self._bank_from_case:
            self.bank_changed.emit()
        self.refresh_lesions(previous)

    # ------------------------------------------------------------------ derived objects
    @property
    def context(self) -> CaseContext | None:
        """The engine's :class:`CaseContext` of the case (rebuilt when its inputs change);
        its ``recipe`` is kept equal to the current recipe."""
        if self.case is None:
            return None
        key = (tuple(self.recipe.lesion_classes or ()), self.recipe.organ_label,
               id(self.case), self.version)
        if self._context is None or self._context_key != key:
            self._context = CaseContext(self.case, self.recipe)
            self._context_key = key
        self._context.recipe = self.recipe
        return self._context

    @property
    def lesion_classes(self) -> list[int]:
        """The lesion classes in use: the recipe's, else every non-zero non-organ label."""
        if self.case is None:
            return list(self.recipe.lesion_classes or [])
        return list(self.context.classes)

    @property
    def bank(self) -> LesionBank | None:
        """The lesion bank: from the current case unless :meth:`set_bank` gave another."""
        if self._bank is None and self._bank_from_case and self.case is not None:
            self._bank = LesionBank.from_recipe([self.case], self.recipe)
        return self._bank

    @property
    def bank_is_from_case(self) -> bool:
        """True while the bank is built from the current case."""
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

    # ------------------------------------------------------------------ lesions
    @property
    def selected_lesion(self):
        """The selected :class:`~napari_lesionmix.core.lesions.Lesion`, or None."""
        if self.selected is None or self.selected >= len(self.lesions):
            return None
        return self.lesions[self.selected]

    def refresh_lesions(self, previous=None) -> None:
        """Find the lesions again; the selection stays on the same lesion if it exists
        (``previous``: the lesion to keep selected, default the selected one)."""
        previous = previous if previous is not None else self.selected_lesion
        if self.case is None:
            self.lesions = []
        else:
            classes = lesion_classes_of(self.case.labels, self.recipe.lesion_classes,
                                        self.recipe.organ_label)
            self.lesions = find_lesions(self.case.labels, classes,
                                        self.case.geometry.spacing_zyx, self.recipe.min_voxels,
                                        self.recipe.connectivity, self.case.name)
        self.selected = None
        self._entry_cache = None
        if previous is not None:
            self.selected = next((i for i, les in enumerate(self.lesions)
                                  if les.label == previous.label and les.seed == previous.seed),
                                 None)
        self.lesions_changed.emit()
        self.selection_changed.emit(self.selected)

    def select(self, index: int | None, focus: bool = True) -> None:
        """Select a lesion by its index in :attr:`lesions` (None clears the selection);
        ``focus`` asks the views to show it."""
        if index is not None and not 0 <= index < len(self.lesions):
            raise SessionError(f"no lesion #{index}")
        if index != self.selected:
            self.clear_preview()
            self.selected = index
            self._entry_cache = None
            self.selection_changed.emit(index)
        if focus and index is not None:
            self.focus_requested.emit(tuple(self.lesions[index].centroid))

    def select_step(self, step: int) -> int | None:
        """Select the next (``step=1``) or previous (``-1``) lesion, wrapping around."""
        if not self.lesions:
            return None
        start = -1 if step > 0 else 0
        index = ((self.selected if self.selected is not None else start) + step) % len(
            self.lesions)
        self.select(index)
        return index

    def lesion_at(self, index_zyx: Sequence[float]) -> int | None:
        """The index of the lesion holding voxel ``index_zyx``, or None."""
        if self.case is None:
            return None
        idx = tuple(int(round(v)) for v in index_zyx)
        shape = self.case.spatial_shape
        if len(idx) != len(shape) or any(not 0 <= i < n for i, n in zip(idx, shape)):
            return None
        value = int(self.case.labels[idx])
        for k, les in enumerate(self.lesions):
            if les.label == value and all(s.start <= i < s.stop for s, i in zip(les.bbox, idx)):
                mask, box = lesion_mask(self.case.labels, les, self.recipe.connectivity)
                if mask[tuple(i - s.start for i, s in zip(idx, box))]:
                    return k
        return None

    def selected_entry(self):
        """The selected lesion cut out of the case as a bank entry (cached)."""
        lesion = self.selected_lesion
        if lesion is None:
            return None
        key = (self.selected, lesion.seed, lesion.label, self.version,
               self.recipe.populate.margin)
        if self._entry_cache is None or self._entry_cache[0] != key:
            entry = extract_entry(self.case, lesion, self.recipe.populate.margin,
                                  self.recipe.connectivity, stats=self.context.stats)
            self._entry_cache = (key, entry)
        return self._entry_cache[1]

    # ------------------------------------------------------------------ location, clicks
    def set_location(self, index_zyx: Sequence[float] | None, focus: bool = True) -> None:
        """Where an added lesion is centred (array index), or None; ``focus`` asks the
        views to show it."""
        loc = None if index_zyx is None else tuple(int(round(v)) for v in index_zyx)
        if loc is not None and self.case is not None and (
                len(loc) != self.case.ndim
                or any(not 0 <= i < n for i, n in zip(loc, self.case.spatial_shape))):
            raise SessionError(f"location {loc} is outside the case {self.case.spatial_shape}")
        self.location = loc
        self.location_changed.emit(loc)
        if focus and loc is not None:
            self.focus_requested.emit(tuple(float(v) for v in loc))

    def set_click_mode(self, mode: str) -> None:
        """``"select"``: a click selects the lesion under it; ``"location"``: a click sets
        :attr:`location`."""
        if mode not in ("select", "location"):
            raise ValueError(f"unknown click mode {mode!r}")
        self.click_mode = mode
        self.click_mode_changed.emit(mode)

    def click(self, index_zyx: Sequence[float]) -> None:
        """A click on voxel ``index_zyx`` of the case, read by :attr:`click_mode`."""
        if self.case is None:
            return
        if self.click_mode == "location":
            self.set_location(index_zyx, focus=False)
            return
        k = self.lesion_at(index_zyx)
        if k is not None:
            self.select(k, focus=False)
