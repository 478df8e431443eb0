"""The preview and the undo history of an edit session (a part of :class:`EditSession`).

The preview is an :class:`~napari_lesionmix.core.edits.Edit` kept beside the case, never
written into it. :meth:`History.apply` writes it into the case and keeps the edit that
undoes it; :meth:`History.undo` writes that back. Views that hold copies of the case hear
``before_change`` and ``data_changed`` and keep what they need in :attr:`Change.extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.edits import Edit

__all__ = ["Change", "History"]


@dataclass
class Change:
    """One applied change.

    Attributes
    ----------
    undo : Edit
        Writing it back into the case undoes the change.
    kind : str
        ``"add"`` or ``"remove"``.
    extra : dict
        What views attached to the change (e.g. the layers' own boxes in their voxel type).
    """

    undo: Edit | None
    kind: str
    extra: dict = field(default_factory=dict)


class History:
    """Preview, apply, undo and reset: the part of :class:`EditSession` that changes the
    case's data (it uses the session's case, signals and derived objects)."""

    @property
    def has_preview(self) -> bool:
        """True while a preview is shown."""
        return self.preview is not None

    def show_preview(self, edit: Edit | None, kind: str = "", reason: str = "") -> None:
        """Show ``edit`` as the preview (None clears it); the case does not change."""
        self.preview = edit
        self.preview_kind = kind if edit is not None else ""
        self.preview_reason = reason if edit is not None else ""
        self.preview_changed.emit()

    def clear_preview(self) -> None:
        """Stop showing the preview."""
        if self.preview is not None:
            self.show_preview(None)

    def apply(self) -> Change | None:
        """Write the preview into the case; it can be undone. The location is cleared,
        so the next added lesion does not land on this one. None without a preview."""
        edit = self.preview
        if edit is None or self.case is None:
            return None
        change = Change(None, self.preview_kind)
        self.before_change.emit(edit.slices, change)
        change.undo = edit.apply(self.case)
        self.undo_stack.append(change)
        self.history_note = ""
        self.show_preview(None)
        self.data_changed.emit(edit.slices, change, False)
        self.set_location(None, focus=False)
        self._after_change()
        return change

    def undo(self) -> bool:
        """Undo the last applied change (bit for bit). False if there is none."""
        self.clear_preview()
        if not self.undo_stack:
            return False
        self._undo_one()
        self._after_change()
        return True

    def reset(self) -> int:
        """Undo every applied change; return how many were undone."""
        self.clear_preview()
        n = len(self.undo_stack)
        while self.undo_stack:
            self._undo_one()
        if n:
            self._after_change()
        return n

    def _undo_one(self) -> None:
        change = self.undo_stack.pop()
        change.undo.apply(self.case)
        self.data_changed.emit(change.undo.slices, change, True)

    def _after_change(self) -> None:
        self.version += 1
        self._context = self._entry_cache = None
        if self._bank_from_case:
            self._bank = None
            self.bank_changed.emit()
        self.history_changed.emit()
        self.refresh_lesions()

