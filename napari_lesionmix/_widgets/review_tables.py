"""The Review dock's tables: the cases (sortable, filterable) and the lesions of one case.

Both are views over a :class:`~napari_lesionmix.review.session.ReviewSession`: the case
table shows ``session.visible()`` in the session's order (a click on a header sorts the
session, so next/previous follow what is on screen); a click on a row opens that case.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..review.changes import describe_params
from ..review.qc import ORIGIN_COLOURS
from ..review.session import COLUMNS

__all__ = ["CaseTable", "CaseFilters", "LesionTable"]

#: the first item of each filter box: no filter
ALL = {"status": "any status", "decision": "any decision", "source": "any source"}


def _fmt(key: str, value) -> str:
    if value is None:
        return ""
    if key in ("target", "achieved"):
        return f"{value / 1000:.2f}"
    return str(value)


class CaseTable(QTableWidget):
    """The cases as the session shows them; header clicks sort, row clicks open."""

    def __init__(self, session, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.session = session
        self.keys = list(COLUMNS)
        self.setHorizontalHeaderLabels(list(COLUMNS.values()))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        self.horizontalHeader().setSortIndicatorShown(True)
        self.horizontalHeader().setDefaultSectionSize(64)
        self.horizontalHeader().sectionClicked.connect(self._sort)
        self.cellClicked.connect(self._open)
        self.names: list = []
        session.rows_changed.connect(self.refresh)
        session.case_changed.connect(lambda _case: self.mark_current())

    def _sort(self, column: int) -> None:
        key = self.keys[column]
        descending = key == self.session.sort_key and not self.session.descending
        self.session.sort(key, descending)

    def _open(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.names) and (self.session.current is None
                                           or self.session.current.name != self.names[row]):
            self.session.go(self.names[row])

    def refresh(self) -> None:
        rows = self.session.visible()
        self.names = [r.name for r in rows]
        self.setRowCount(len(rows))
        for i, row in enumerate(rows):
            verdict = self.session.verdict(row.name)
            for j, key in enumerate(self.keys):
                value = self.session.value(row, key)
                item = QTableWidgetItem("" if key == "decision" and value == "undecided"
                                        else _fmt(key, value))
                if key == "decision" and verdict is not None:
                    item.setToolTip(f"{verdict.decision or 'withdrawn'} by {verdict.reviewer} "
                                    f"at {verdict.time}" + (f": {verdict.note}"
                                                            if verdict.note else ""))
                if row.problem:
                    item.setToolTip(row.problem)
                self.setItem(i, j, item)
        col = self.keys.index(self.session.sort_key)
        order = Qt.SortOrder.DescendingOrder if self.session.descending \
            else Qt.SortOrder.AscendingOrder
        self.horizontalHeader().setSortIndicator(col, order)
        self.resizeColumnsToContents()
        self.mark_current()

    def mark_current(self) -> None:
        cur = self.session.current
        if cur is not None and cur.name in self.names:
            k = self.names.index(cur.name)
            self.blockSignals(True)
            self.selectRow(k)
            self.blockSignals(False)
            self.scrollToItem(self.item(k, 0))
        else:
            self.clearSelection()


class CaseFilters(QWidget):
    """One box per filter (status, decision, source): "all" or one value."""

    KEYS = ("status", "decision", "source")

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.boxes = {}
        for key in self.KEYS:
            box = QComboBox()
            box.setObjectName(f"filter_{key}")
            box.setMinimumContentsLength(5)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setToolTip(f"show only cases of this {key}")
            box.currentTextChanged.connect(lambda text, k=key: self._changed(k, text))
            row.addWidget(box, 1)
            self.boxes[key] = box
        session.dataset_changed.connect(self.fill)

    def fill(self) -> None:
        for key, box in self.boxes.items():
            box.blockSignals(True)
            box.clear()
            box.addItems([ALL[key]] + self.session.choices(key))
            box.blockSignals(False)

    def _changed(self, key: str, text: str) -> None:
        self.session.set_filter(key, None if text in (ALL[key], "") else [text])


class LesionTable(QTableWidget):
    """The lesions of the current case by origin; a click goes to the lesion."""

    HEADERS = ("#", "origin", "class", "ml", "donor", "centre x, y, z (mm)", "transform")

    def __init__(self, session, parent=None):
        super().__init__(0, len(self.HEADERS), parent)
        self.session = session
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        self.cellClicked.connect(lambda row, _col: session.select_lesion(row))
        session.case_changed.connect(self.fill)

    def fill(self, case) -> None:
        from qtpy.QtGui import QColor

        lesions = [] if case is None else case.changes.lesions
        self.setRowCount(len(lesions))
        for i, les in enumerate(lesions):
            values = (str(i + 1), les.origin, str(les.label), f"{les.volume_mm3 / 1000:.3f}",
                      les.donor or "", ", ".join(f"{v:.0f}" for v in les.centroid_mm),
                      describe_params(les.params) if les.params else "")
            tip = les.describe()
            for j, v in enumerate(values):
                item = QTableWidgetItem(v)
                item.setToolTip(tip)
                if j == 1:
                    item.setForeground(QColor(ORIGIN_COLOURS[les.origin]))
                self.setItem(i, j, item)
        self.resizeColumnsToContents()
