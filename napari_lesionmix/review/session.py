"""The review session: the model behind the Review dock, with no napari and no Qt.

It holds the open dataset, the reviewer's decision store, the case table as shown
(filtered and sorted), the one case in memory and the selected lesion, and tells its
views what changed through psygnal signals. Stepping to the next or previous case reads
only that case (reusing the volumes of the case shown before when it is this case's
source or variant).

Examples
--------
>>> s = ReviewSession(reviewer="alice")             # doctest: +SKIP
>>> s.open("out/dataset.json"); s.next()            # doctest: +SKIP
>>> s.decide("reject", "lesion in a ventricle")     # doctest: +SKIP
"""

from __future__ import annotations

from psygnal import Signal

from .decisions import DECISIONS, DecisionStore, case_fingerprint
from .index import LoadedCase, ReviewDataset, ReviewError
from .summary import QAState, qa_state

__all__ = ["ReviewSession", "COLUMNS", "FILTERS"]

#: table columns: key -> header
COLUMNS = {"case": "case", "source": "source", "target": "target ml", "achieved": "achieved ml",
           "status": "status", "added": "+", "removed": "−", "decision": "decision"}
#: what the table can be filtered on
FILTERS = ("status", "decision", "source", "kind")


class ReviewSession:
    """One reviewer going through one dataset (see the module's docstring).

    Parameters
    ----------
    reviewer : str, optional
        Default: ``$LESIONMIX_REVIEWER``, else the login name.

    Attributes
    ----------
    review : ReviewDataset or None
    store : DecisionStore or None
    state : QAState or None
        Rows and current decisions (read again after every decision).
    filters : dict
        Filter key (see :data:`FILTERS`) -> set of allowed values; a missing key allows all.
    sort_key : str
    descending : bool
    current : LoadedCase or None
    selected : int or None
        Index into ``current.changes.lesions``.
    """

    dataset_changed = Signal()
    rows_changed = Signal()
    case_changed = Signal(object)
    decision_changed = Signal(str)
    lesion_selected = Signal(object)
    message = Signal(str, str)

    def __init__(self, reviewer: str | None = None):
        self.reviewer = reviewer
        self.review: ReviewDataset | None = None
        self.store: DecisionStore | None = None
        self.state: QAState | None = None
        self.filters: dict = {}
        self.sort_key, self.descending = "case", False
        self.current: LoadedCase | None = None
        self.selected: int | None = None
        self._fingerprints: dict = {}  # files, sizes, times -> fingerprint

    # ------------------------------------------------------------------ dataset
    def open(self, path) -> None:
        """Open a dataset (folder, dataset.json or imagesTr/); the first visible case is
        not loaded until asked (:meth:`go`, :meth:`next`).

        Raises
        ------
        ReviewError
            Not a dataset (the message names the path).
        """
        review = ReviewDataset.open(path)
        self.review = review
        self.store = DecisionStore(review.root, self.reviewer)
        self.filters, self.current, self.selected = {}, None, None
        self._fingerprints = {}
        self.refresh()
        self.dataset_changed.emit()
        self.case_changed.emit(None)
        for note in self.state.problems:
            self.message.emit("warning", note)

    def refresh(self) -> None:
        """Read the decisions again (other reviewers may have written)."""
        if self.review is None:
            return
        self.state = qa_state(self.review, self.store, self._fingerprints)
        self.rows_changed.emit()

    def reload(self) -> None:
        """List the cases on disk again, then the decisions (cases removed or written by
        someone else since the dataset was opened). Filters and order are kept; when the
        case shown is gone, the next case of the table is shown instead.

        Raises
        ------
        ReviewError
            The dataset can no longer be read (the message names the file).
        """
        if self.review is None:
            return
        shown = [r.name for r in self.visible()]
        self.review.refresh()
        self.refresh()
        if self.current is not None and self.current.name not in self.review.names:
            gone = self.current.name
            self.current, self.selected = None, None
            if self.go_on_from(gone, shown) is None:
                left = self.visible()
                if left:
                    self.go(left[-1].name)
                else:
                    self.case_changed.emit(None)

    def go_on_from(self, name: str, shown: list) -> LoadedCase | None:
        """Go to the first case after ``name`` in ``shown`` (the table's names before it
        changed) that the table still shows; None (and no move) if there is none."""
        left = {r.name for r in self.visible()}
        after = [n for n in shown[shown.index(name) + 1:] if n in left] if name in shown else []
        return self.go(after[0]) if after else None

    # ------------------------------------------------------------------ table
    def value(self, row, key: str):
        """The value of a table cell (None when unknown)."""
        if key == "decision":
            return self.state.decision(row.name) or "undecided"
        return {"case": row.name, "source": row.source, "target": row.target_load_mm3,
                "achieved": row.achieved_load_mm3, "status": row.status or row.kind,
                "added": row.added, "removed": row.removed, "kind": row.kind}[key]

    def choices(self, key: str) -> list:
        """The values a filter can take in this dataset."""
        if self.state is None:
            return []
        if key == "decision":
            return list(DECISIONS) + ["undecided"]
        return sorted({str(self.value(r, key)) for r in self.state.rows
                       if self.value(r, key) is not None})

    def set_filter(self, key: str, values) -> None:
        """Show only rows whose ``key`` is one of ``values`` (None or empty: all)."""
        if key not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, got {key!r}")
        if values:
            self.filters[key] = {str(v) for v in values}
        else:
            self.filters.pop(key, None)
        self.rows_changed.emit()

    def sort(self, key: str, descending: bool = False) -> None:
        if key not in COLUMNS:
            raise ValueError(f"sort key must be one of {list(COLUMNS)}, got {key!r}")
        self.sort_key, self.descending = key, bool(descending)
        self.rows_changed.emit()

    def visible(self) -> list:
        """The rows as shown: filtered, then sorted (unknown values last)."""
        if self.state is None:
            return []
        rows = [r for r in self.state.rows
                if all(str(self.value(r, k)) in allowed for k, allowed in self.filters.items())]
        known = [r for r in rows if self.value(r, self.sort_key) is not None]
        unknown = [r for r in rows if self.value(r, self.sort_key) is None]
        known.sort(key=lambda r: (self.value(r, self.sort_key), r.name), reverse=self.descending)
        return known + unknown

    # ------------------------------------------------------------------ moving
    def go(self, name: str) -> LoadedCase | None:
        """Load case ``name`` (the previous one is dropped); None if it cannot be read
        (a ``message`` says why and the previous case stays)."""
        try:
            loaded = self.review.load(name, reuse=self.current)
        except ReviewError as exc:
            self.message.emit("error", str(exc))
            return None
        self.current, self.selected = loaded, None
        if loaded.source is None and loaded.source_note:
            self.message.emit("warning", loaded.source_note)
        self.case_changed.emit(loaded)
        return loaded

    def step(self, delta: int) -> LoadedCase | None:
        """Go ``delta`` rows down (up if negative) in the visible table; stays at the ends."""
        rows = self.visible()
        if not rows:
            return None
        names = [r.name for r in rows]
        if self.current is None or self.current.name not in names:
            k = 0 if delta >= 0 else len(names) - 1
        else:
            k = min(max(names.index(self.current.name) + delta, 0), len(names) - 1)
            if names[k] == self.current.name:
                return self.current
        return self.go(names[k])

    def next(self) -> LoadedCase | None:
        return self.step(1)

    def previous(self) -> LoadedCase | None:
        return self.step(-1)

    def select_lesion(self, index: int | None) -> None:
        """Select a lesion of the current case (its row in the lesion table)."""
        if self.current is None or index is None:
            self.selected = None
        else:
            if not 0 <= index < len(self.current.changes.lesions):
                raise IndexError(f"lesion {index} of {len(self.current.changes.lesions)}")
            self.selected = index
        self.lesion_selected.emit(None if self.selected is None
                                  else self.current.changes.lesions[self.selected])

    # ------------------------------------------------------------------ deciding
    def decide(self, decision: str, note: str = "", name: str | None = None) -> None:
        """Record a decision for the current case (or ``name``), saved at once."""
        name = name or (self.current.name if self.current is not None else None)
        if name is None:
            raise ValueError("no case to decide on: open a case first")
        row = self.review.row(name)
        self.store.decide(name, decision, note, case_fingerprint(row.image_paths,
                                                                 row.label_path))
        self.state = qa_state(self.review, self.store, self._fingerprints)
        self.decision_changed.emit(name)
        self.rows_changed.emit()

    def verdict(self, name: str | None = None):
        """The current :class:`~.decisions.Verdict` of a case (None if undecided)."""
        name = name or (self.current.name if self.current is not None else None)
        return None if self.state is None or name is None else self.state.verdicts.get(name)
