"""The "Case" dock: choose the layers and lesion classes, browse the lesions.

Clicking a table row selects the lesion, moves the viewer to it and marks it (a square
marker around it in a helper Points layer); clicking a lesion in the canvas selects its
row (the click itself is handled by the shared state, see
:meth:`~napari_lesionmix._widgets._state.LesionMixState.handle_click`).
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)

from .._layers import ROLE_KEY
from ._base import LayerChecklist, LayerCombo, LesionMixDock, notify
from ._state import StateError

__all__ = ["CaseDock", "parse_classes"]

MARKER_NAME = "LesionMix selection"
COLUMNS = ("id", "class", "voxels", "volume ml", "centroid (z, y, x)")


def parse_classes(text: str) -> list[int] | None:
    """Lesion classes from text such as ``"1"``, ``"1,2"`` or ``"2 3"``; empty = None.

    Raises
    ------
    StateError
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
        raise StateError(f"lesion classes: {text!r} is not a list of label values such as "
                         "'1' or '1,2'") from None
    if values[0] < 1:
        raise StateError("lesion classes: label values must be positive (0 is background)")
    return values


class CaseDock(LesionMixDock):
    """Pick image/label/placement layers and lesion classes; a table of the lesions.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        v = self.viewer
        form = QFormLayout()
        self.images = LayerChecklist(v, (Image,))
        self.labels = LayerCombo(v, (Labels,))
        self.placement = LayerCombo(v, (Labels, Image), allow_none=True)
        self.classes = QLineEdit()
        self.classes.setPlaceholderText("all non-zero labels (e.g. 1 or 1,2)")
        self.organ = QSpinBox()
        self.organ.setRange(0, 65535)
        self.organ.setSpecialValueText("none")
        self.organ.setToolTip("context label that bounds placement (e.g. 1 = liver); "
                              "0 = none")
        self.use = QPushButton("Use these layers")
        form.addRow("Image layer(s)", self.images)
        form.addRow("Label layer", self.labels)
        form.addRow("Placement layer", self.placement)
        form.addRow("Lesion classes", self.classes)
        form.addRow("Context label", self.organ)
        self.layout().addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.use)
        self.refresh = QPushButton("Refresh lesions")
        row.addWidget(self.refresh)
        self.layout().addLayout(row)
        self.summary = QLabel("no case yet")
        self.summary.setWordWrap(True)
        self.layout().addWidget(self.summary)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.layout().addWidget(self.table)

        self.use.clicked.connect(self.use_layers)
        self.refresh.clicked.connect(self.state.refresh_lesions)
        self.classes.editingFinished.connect(self.apply_classes)
        self.organ.valueChanged.connect(self.apply_organ)
        self.table.itemSelectionChanged.connect(self.on_row_selected)
        self.listen(self.state.lesions_changed, self.fill_table)
        self.listen(self.state.selection_changed, self.show_selection)
        self.listen(self.state.case_changed, self.show_case)
        self.listen(self.state.recipe_changed, self.show_recipe)
        self.enable_when(lambda: self.state.case is not None, self.refresh)
        self._auto_use()

    # -- choices -------------------------------------------------------------------------
    def _auto_use(self) -> None:
        """Build the case at once when the viewer already holds an image and labels."""
        if self.state.case is None and self.images.layers() and self.labels.layer() is not None:
            try:
                self.state.set_layers(self.images.layers(), self.labels.layer(),
                                      self.placement.layer())
            except StateError:
                pass  # the user sees the pickers and chooses
        elif self.state.case is not None:
            self.show_case()
            self.fill_table()

    def use_layers(self) -> bool:
        """Build the case from the chosen layers; a notification says what is wrong.

        Returns
        -------
        bool
            True if the case was built.
        """
        try:
            self.state.set_layers(self.images.layers(), self.labels.layer(),
                                  self.placement.layer())
        except StateError as exc:
            notify(f"Case: {exc}", "warning")
            return False
        return True

    def apply_classes(self) -> None:
        """Set the lesion classes from the text field."""
        try:
            classes = parse_classes(self.classes.text())
            if classes != self.state.recipe.lesion_classes:
                self.state.set_lesion_classes(classes)
        except StateError as exc:
            notify(f"Case: {exc}", "warning")
            self.show_recipe()

    def apply_organ(self, value: int) -> None:
        """Set the context (organ) label."""
        if (value or None) == self.state.recipe.organ_label:
            return
        try:
            self.state.set_organ_label(value or None)
        except StateError as exc:
            notify(f"Case: {exc}", "warning")
            self.show_recipe()

    # -- views of the state ----------------------------------------------------------------
    def show_recipe(self) -> None:
        """Show the recipe's lesion classes and organ label."""
        r = self.state.recipe
        self.classes.setText(",".join(str(c) for c in r.lesion_classes or []))
        self.organ.blockSignals(True)
        self.organ.setValue(r.organ_label or 0)
        self.organ.blockSignals(False)

    def show_case(self) -> None:
        """Show the chosen layers and a one-line summary of the case."""
        case = self.state.case
        if case is None:
            self.summary.setText("no case yet")
            return
        if self.state.label_layer is not None and self.state.label_layer in self.labels._layers:
            self.labels.blockSignals(True)
            self.labels.set_layer(self.state.label_layer)
            self.labels.blockSignals(False)
        g = case.geometry
        self.summary.setText(
            f"{case.name}: {case.n_channels} channel(s), shape {case.spatial_shape}, "
            f"spacing {tuple(round(s, 3) for s in g.spacing_zyx)} mm (z, y, x)")

    def fill_table(self) -> None:
        """One row per lesion."""
        lesions = self.state.lesions
        self.table.blockSignals(True)
        self.table.setRowCount(len(lesions))
        for r, les in enumerate(lesions):
            values = (f"{les.label}:{les.component}", les.label, les.voxels,
                      f"{les.volume_ml:.3f}",
                      ", ".join(f"{c:.1f}" for c in les.centroid))
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()
        self.table.blockSignals(False)
        load = sum(les.volume_mm3 for les in lesions)
        case = self.state.case
        if case is not None:
            self.summary.setText(
                f"{case.name}: {len(lesions)} lesion(s), load {load / 1000:.2f} ml, "
                f"shape {case.spatial_shape}, classes {self.state.lesion_classes}")
        self.show_selection(self.state.selected)

    def on_row_selected(self) -> None:
        """A row was clicked: select that lesion in the state."""
        rows = self.table.selectionModel().selectedRows()
        index = rows[0].row() if rows else None
        if index != self.state.selected:
            self.state.select(index)

    def show_selection(self, index: int | None) -> None:
        """Select the row, move the viewer to the lesion and mark it."""
        self.table.blockSignals(True)
        if index is None:
            self.table.clearSelection()
        else:
            self.table.selectRow(index)
            self.table.scrollToItem(self.table.item(index, 0))
        self.table.blockSignals(False)
        self.update_marker()
        if index is not None:
            self.go_to(self.state.lesions[index].centroid)

    # -- the canvas --------------------------------------------------------------------------
    def go_to(self, index_zyx) -> None:
        """Move the dims slider and the camera to a voxel of the case."""
        layer = self.state.label_layer
        if layer is None:
            return
        world = np.asarray(layer.data_to_world(np.asarray(index_zyx, float)), float)
        offset = self.viewer.dims.ndim - world.size
        displayed = set(self.viewer.dims.displayed)
        for k, value in enumerate(world):
            axis = k + offset
            if axis not in displayed:
                self.viewer.dims.set_point(axis, float(value))
        center = [world[d - offset] for d in self.viewer.dims.displayed if d >= offset]
        scene = getattr(self.viewer, "scene", None)  # napari >= 0.9; before: viewer.camera
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(center)

    def update_marker(self) -> None:
        """Show a square around the selected lesion (a helper Points layer).

        The marker follows the case: its scale and translate are the case's, and it is
        made again when the case has another number of dimensions.
        """
        lesion = self.state.selected_lesion
        layer = self._marker_layer(create=lesion is not None)
        if layer is None:
            return
        if lesion is None:
            layer.data = np.zeros((0, layer.ndim))
            return
        extent = max(s.stop - s.start for s in lesion.bbox) + 4
        layer.data = np.asarray([lesion.centroid], float)
        layer.size = float(extent)

    def _marker_layer(self, create: bool):
        """The marker layer on the case's grid (None if there is none and ``create`` is
        false, or no case)."""
        case = self.state.case
        layer = next((lay for lay in self.viewer.layers
                      if lay.metadata.get(ROLE_KEY) == "selection"), None)
        if layer is not None and case is not None and layer.ndim != case.ndim:
            self.viewer.layers.remove(layer)  # another number of dimensions: a new one
            layer = None
        if layer is not None:
            if case is not None:
                scale, translate = self._case_placement()
                if not (np.allclose(layer.scale, scale) and
                        np.allclose(layer.translate, translate)):
                    layer.scale, layer.translate = scale, translate
            return layer
        if not create or case is None:
            return None
        scale, translate = self._case_placement()
        active = self.viewer.layers.selection.active
        layer = self.viewer.add_points(
            np.zeros((0, case.ndim)), name=MARKER_NAME, symbol="square",
            face_color="transparent", border_color="yellow", border_width=0.08,
            scale=scale, translate=translate, metadata={ROLE_KEY: "selection"})
        if active is not None:
            self.viewer.layers.selection.active = active  # keep the user's active layer
        return layer

    def _case_placement(self) -> tuple:
        """Scale and translate of the case's grid in the viewer (its label layer's)."""
        layer = self.state.label_layer
        if layer is not None:
            return tuple(layer.scale), tuple(layer.translate)
        g = self.state.case.geometry
        return g.napari_scale(), g.napari_translate()
