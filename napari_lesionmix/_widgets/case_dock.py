"""The "Case" dock: the layers of the case, its lesion classes, and the lesion table.

The pickers (:mod:`.pickers`) offer the viewer's layers; every image on the label
layer's grid is a channel by default. Without a case, the first choice that makes one
is used at once; with a case, "Use these layers" switches to the new choice. A dataset
that ships a ``lesionmix_recipe.json`` brings its recipe (:mod:`napari_lesionmix.session.
recipes`); when the recipe was changed by hand, a dialog asks which one to keep.

Clicking a row selects the lesion and the views go to it; clicking a lesion on the
canvas selects its row. Centroids are physical coordinates in mm (LPS: x grows to the
patient's left, y to posterior, z to superior).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)
from superqt.utils import signals_blocked

from ..core.recipe import BOUNDS
from ..session.errors import SessionError
from ._base import LesionMixDock
from .pickers import LayerPickers
from .viewer_link import notify

__all__ = ["CaseDock", "parse_classes"]

COLUMNS = ("#", "class", "voxels", "ml", "centroid x, y, z (mm)")


def parse_classes(text: str) -> list[int] | None:
    """Lesion classes from text such as ``"1"``, ``"1,2"`` or ``"2 3"``; empty = None.

    Raises
    ------
    SessionError
        Not a list of positive integers.

    Examples
    --------
    >>> parse_classes("1, 2"), parse_classes("")
    ([1, 2], None)
    """
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        return None
    try:
        values = sorted({int(p) for p in parts})
    except ValueError:
        raise SessionError(f"lesion classes: {text!r} is not a list of label values such as "
                           "'1' or '1,2'") from None
    if values[0] < 1:
        raise SessionError("lesion classes: label values must be positive (0 is background)")
    return values


def recipe_origin_text(origin: str, source: str | None) -> str:
    """One line on where the recipe came from."""
    where = Path(source).parent.name + "/" + Path(source).name if source else ""
    return {"default": "recipe: the default", "dataset": f"recipe: the dataset's ({where})",
            "edited": "recipe: edited by hand", "file": f"recipe: loaded from {where}"}[origin]


class CaseDock(LesionMixDock):
    """Choose the case's layers and lesion classes; a table of its lesions.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.pickers = LayerPickers(self.viewer)
        self.question: QMessageBox | None = None
        form = QFormLayout()
        form.addRow("Channels", self.pickers.images.native)
        form.addRow("Label layer", self.pickers.labels.native)
        form.addRow("Placement", self.pickers.placement.native)
        self.classes = QLineEdit()
        self.classes.setPlaceholderText("all non-zero labels (e.g. 1 or 1,2)")
        self.organ = QSpinBox()
        self.organ.setRange(0, BOUNDS["organ_label"][1])
        self.organ.setSpecialValueText("none")
        self.organ.setToolTip("context label that bounds placement (e.g. 1 = liver); 0 = none")
        form.addRow("Lesion classes", self.classes)
        form.addRow("Context label", self.organ)
        self.layout().addLayout(form)
        row = QHBoxLayout()
        self.use = QPushButton("Use these layers")
        self.use.setToolTip("build the case from the chosen layers (the history is cleared)")
        row.addWidget(self.use)
        self.layout().addLayout(row)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.recipe_line = QLabel("")
        self.recipe_line.setWordWrap(True)
        self.layout().addWidget(self.summary)
        self.layout().addWidget(self.recipe_line)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(6 * self.table.fontMetrics().height() + 30)
        self.layout().addWidget(self.table, 1)

        st = self.state
        self.use.clicked.connect(self.use_layers)
        self.pickers.changed.connect(self.on_pickers)
        self.classes.editingFinished.connect(self.apply_classes)
        self.organ.valueChanged.connect(self.apply_organ)
        self.table.itemSelectionChanged.connect(self.on_row_selected)
        self.listen(st.lesions_changed, self.fill_table)
        self.listen(st.selection_changed, self.show_selection)
        self.listen(st.case_changed, self.show_case)
        self.listen(st.recipe_changed, self.show_recipe)
        self.listen(st.recipe_question, self.ask_recipe)
        self.enable_when(lambda: self.pickers.labels.value is not None, self.use)
        self.show_recipe()
        if st.case is None:
            self.on_pickers()
        else:
            self.pickers.set_chosen(self.layers.image_layers, self.layers.label_layer,
                                    self.layers.placement_layer)
            self.show_case()
            self.fill_table()
        self.update_enabled()

    # -- choices -------------------------------------------------------------------------
    def on_pickers(self) -> None:
        """Without a case, use the first choice that makes one (the banner says why not)."""
        if self.state.case is None and self.pickers.labels.value is not None:
            self.layers.try_use(*self.pickers.chosen())
        self.update_enabled()

    def use_layers(self) -> bool:
        """Build the case from the chosen layers; a notification says what is wrong."""
        why = self.layers.try_use(*self.pickers.chosen())
        if why:
            notify(f"Case: {why}", "warning")
        return not why

    def apply_classes(self) -> None:
        """Set the lesion classes from the text field."""
        try:
            classes = parse_classes(self.classes.text())
            if classes != self.state.recipe.lesion_classes:
                self.state.set_lesion_classes(classes)
        except SessionError as exc:
            notify(f"Case: {exc}", "warning")
            self.show_recipe()

    def apply_organ(self, value: int) -> None:
        """Set the context (organ) label."""
        if (value or None) == self.state.recipe.organ_label:
            return
        try:
            self.state.set_organ_label(value or None)
        except SessionError as exc:
            notify(f"Case: {exc}", "warning")
            self.show_recipe()

    def ask_recipe(self, path: str) -> None:
        """The new dataset brings a recipe but the current one was chosen by hand: ask."""
        box = QMessageBox(QMessageBox.Icon.Question, "LesionMix: which recipe?",
                          f"The new case's dataset has its own recipe:\n{path}\n\nYour recipe "
                          "was edited or loaded by hand. Use the dataset's recipe, or keep "
                          "yours?", parent=self)
        self.adopt_btn = box.addButton("Use the dataset's recipe",
                                       QMessageBox.ButtonRole.AcceptRole)
        self.keep_btn = box.addButton("Keep my recipe", QMessageBox.ButtonRole.RejectRole)
        box.buttonClicked.connect(
            lambda b: self.state.adopt_dataset_recipe(path) if b is self.adopt_btn else None)
        self.question = box
        box.open()

    # -- views of the session --------------------------------------------------------------
    def show_recipe(self) -> None:
        """Show the recipe's lesion classes, organ label and origin."""
        r = self.state.recipe
        self.classes.setText(",".join(str(c) for c in r.lesion_classes or []))
        with signals_blocked(self.organ):
            self.organ.setValue(r.organ_label or 0)
        self.recipe_line.setText(recipe_origin_text(self.state.recipe_origin,
                                                    self.state.recipe_source))

    def show_case(self) -> None:
        """Show the case's layers in the pickers and a summary."""
        case = self.state.case
        if case is None:
            self.summary.setText("")
            self.fill_table()
            return
        self.pickers.set_chosen(self.layers.image_layers, self.layers.label_layer,
                                self.layers.placement_layer)
        self.fill_table()

    def fill_table(self) -> None:
        """One row per lesion; the summary line."""
        st, case = self.state, self.state.case
        lesions = st.lesions if case is not None else []
        with signals_blocked(self.table):
            self.table.setRowCount(len(lesions))
            for r, les in enumerate(lesions):
                xyz = case.geometry.index_to_physical(np.asarray(les.centroid, float))
                values = (r + 1, les.label, les.voxels, f"{les.volume_ml:.3f}",
                          ", ".join(f"{v:.1f}" for v in xyz))
                for c, value in enumerate(values):
                    self.table.setItem(r, c, QTableWidgetItem(str(value)))
            self.table.resizeColumnsToContents()
        if case is not None:
            load = sum(les.volume_mm3 for les in lesions)
            spacing = ", ".join(f"{s:.3g}" for s in case.geometry.spacing)
            notes = [lay.metadata.get("lesionmix_note") for lay in self.layers.layers]
            self.summary.setText(
                f"{case.name}: {case.n_channels} channel(s) "
                f"({', '.join(case.channel_names)}), {len(lesions)} lesion(s), load "
                f"{load / 1000:.2f} ml, classes {st.lesion_classes}; grid "
                f"{' x '.join(map(str, case.spatial_shape[::-1]))}, spacing {spacing} mm"
                + "".join(f"\n{n}" for n in notes if n))
        self.show_selection(st.selected)

    def on_row_selected(self) -> None:
        """A row was clicked: select that lesion (the views go to it)."""
        rows = self.table.selectionModel().selectedRows()
        index = rows[0].row() if rows else None
        if index != self.state.selected:
            self.state.select(index)

    def show_selection(self, index: int | None) -> None:
        """Select the row of the selected lesion."""
        with signals_blocked(self.table):
            if index is None:
                self.table.clearSelection()
            elif index < self.table.rowCount():
                self.table.selectRow(index)
                self.table.scrollToItem(self.table.item(index, 0))
