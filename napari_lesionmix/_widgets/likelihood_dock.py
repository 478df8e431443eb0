"""The "Likelihood" dock: build, show, save and load the lesion likelihood map.

The map is built with :meth:`LikelihoodMap.from_recipe` (the current case) or
:meth:`LikelihoodMap.from_label_files` (a folder of training masks, on the case's grid)
in a thread worker with a progress bar. Smoothing (mm) and floor are the recipe's
``likelihood`` fields. The heatmap's look (threshold, opacity) is the display's only:
see :mod:`.heatmap`.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSlider,
)
from superqt.utils import signals_blocked

from ..core.io_utils import IMAGE_SUFFIXES, label_files_of
from ..core.likelihood import LikelihoodMap
from ..core.recipe import BOUNDS
from ..session.errors import SessionError
from ._base import LesionMixDock
from .viewer_link import notify

__all__ = ["LikelihoodDock", "map_summary"]


def map_summary(lmap: LikelihoodMap) -> str:
    """One line about a map, numbers written plainly: ``map (24, 48, 48), 310 voxels > 0;
    spacing (2, 0.8, 0.8) mm``."""
    shape = ", ".join(str(int(n)) for n in lmap.prob.shape)
    nonzero = int((lmap.prob > 0).sum())
    spacing = ", ".join(f"{float(s):.4g}" for s in lmap.geometry.spacing_zyx)
    return f"map ({shape}), {nonzero} voxels > 0; spacing ({spacing}) mm"


def _spin(field: str, step: float, decimals: int, suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(*BOUNDS[field])
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)
    return box


class LikelihoodDock(LesionMixDock):
    """Build the likelihood map from the case or a folder; tune how it is shown.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        heat = self.link.heatmap
        form = QFormLayout()
        self.sigma = _spin("likelihood.sigma_mm", 0.5, 1, " mm")
        self.floor = _spin("likelihood.floor", 0.01, 3)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(heat.threshold)
        self.threshold.setToolTip("the heatmap is not drawn below this fraction of its maximum")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(heat.opacity * 100)))
        self.show_heat = QCheckBox("Show heatmap")
        self.show_heat.setChecked(heat.visible)
        self.show_heat.setToolTip("the heatmap and its colour bar (also the layer's eye)")
        form.addRow("Smoothing", self.sigma)
        form.addRow("Floor", self.floor)
        form.addRow("Hide below", self.threshold)
        form.addRow("Heatmap opacity", self.opacity)
        form.addRow("", self.show_heat)
        self.layout().addLayout(form)
        grid = QGridLayout()
        self.from_case = QPushButton("Build from the case")
        self.from_folder = QPushButton("Build from a folder…")
        self.save = QPushButton("Save…")
        self.load = QPushButton("Load…")
        grid.addWidget(self.from_case, 0, 0)
        grid.addWidget(self.from_folder, 0, 1)
        grid.addWidget(self.save, 1, 0)
        grid.addWidget(self.load, 1, 1)
        self.layout().addLayout(grid)
        self.info = QLabel("no map")
        self.info.setWordWrap(True)
        self.layout().addWidget(self.info)
        self.layout().addStretch(1)

        self.sigma.valueChanged.connect(lambda v: self.apply_options(sigma_mm=v))
        self.floor.valueChanged.connect(lambda v: self.apply_options(floor=v))
        self.threshold.valueChanged.connect(heat.set_threshold)
        self.opacity.valueChanged.connect(lambda v: heat.set_opacity(v / 100))
        self.show_heat.toggled.connect(heat.set_visible)
        self.listen(heat.visibility_changed, self._heat_shown)
        self.from_case.clicked.connect(self.build_from_case)
        self.from_folder.clicked.connect(self._ask_folder)
        self.save.clicked.connect(self._ask_save)
        self.load.clicked.connect(self._ask_load)
        self.listen(self.state.likelihood_changed, self.show_map)
        self.listen(self.state.recipe_changed, self.show_recipe)
        self.enable_when(lambda: self.state.case is not None, self.from_case)
        self.enable_when(lambda: self.state.likelihood is not None, self.save)
        self.show_recipe()
        self.show_map()
        self.update_enabled()

    def idle_reason(self) -> str:
        """Without a case a map can still be built from a folder."""
        why = self.state.why_idle()
        return f"{why}\nA map can still be built from a folder of label files." if why else ""

    def _heat_shown(self, visible: bool) -> None:
        """The heatmap was shown or hidden elsewhere (its eye): the box follows."""
        with signals_blocked(self.show_heat):
            self.show_heat.setChecked(visible)

    def overlay(self):
        """The heatmap layer, or None."""
        return self.link.heatmap.layer()

    # -- options -----------------------------------------------------------------------------
    def show_recipe(self) -> None:
        """Show the recipe's smoothing and floor."""
        opts = self.state.recipe.likelihood
        for box, value in ((self.sigma, opts.sigma_mm), (self.floor, opts.floor)):
            with signals_blocked(box):
                box.setValue(value)

    def apply_options(self, **fields) -> None:
        """Write the option the user changed into the recipe (only that one: the other
        box shows a rounded value)."""
        try:
            self.state.update_recipe("likelihood", **fields)
        except SessionError as exc:
            notify(f"Likelihood: {exc}", "warning")
            self.show_recipe()

    # -- building ------------------------------------------------------------------------------
    def build_from_case(self):
        """Build the map from the current case in a worker; returns the worker."""
        if self.state.case is None:
            notify("Likelihood: no case yet; choose the layers in the Case tab", "warning")
            return None
        case = self.state.snapshot()  # the worker reads it while changes are applied
        self.info.setText("building the map from the case…")
        return self.run_worker(LikelihoodMap.from_recipe, [case], self.state.recipe,
                               case.placement, desc="Likelihood map from the case",
                               on_done=self.state.set_likelihood)

    def build_from_folder(self, folder: str | Path):
        """Build the map from every label file of ``folder`` in a worker, on the case's
        grid when there is a case (other grids are resampled through their geometry),
        else on the first file's grid.

        Returns
        -------
        worker or None
        """
        try:
            paths = label_files_of(folder)
        except OSError as exc:
            notify(f"Likelihood: {exc}", "warning")
            return None
        r, case = self.state.recipe, self.state.case
        reference = None if case is None else (case.geometry, case.spatial_shape)
        self.info.setText(f"building the map from {len(paths)} label files…")
        return self.run_worker(LikelihoodMap.from_label_files, paths, r.lesion_classes,
                               r.organ_label, r.likelihood.sigma_mm, r.likelihood.floor,
                               reference=reference,
                               desc=f"Likelihood map from {len(paths)} label files",
                               on_done=self.state.set_likelihood)

    # -- files -----------------------------------------------------------------------------
    def save_map(self, path: str | Path) -> bool:
        """Save the map (NIfTI unless the name says another format)."""
        lmap = self.state.likelihood
        if lmap is None:
            notify("Likelihood: no map to save", "warning")
            return False
        path = Path(path)
        if not path.name.lower().endswith(IMAGE_SUFFIXES):
            path = path.with_name(path.name + ".nii.gz")
        try:
            lmap.save(path, overwrite=True)
        except (ValueError, OSError) as exc:
            notify(f"Likelihood: {exc}", "warning")
            return False
        self.info.setText(f"{map_summary(lmap)}\nsaved to {path}")
        return True

    def load_map(self, path: str | Path) -> bool:
        """Load a map saved earlier (any non-negative image)."""
        lmap = self.guard(LikelihoodMap.load, path, what="Likelihood")
        if lmap is None:
            return False
        self.state.set_likelihood(lmap)
        return True

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of training label maps")
        if folder:
            self.build_from_folder(folder)

    def _ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the likelihood map",
                                              "likelihood.nii.gz", "NIfTI (*.nii.gz *.nii)")
        if path:
            self.save_map(path)

    def _ask_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load a likelihood map", "", "Images (*.nii.gz *.nii *.nrrd *.mha *.mhd)")
        if path:
            self.load_map(path)

    def show_map(self) -> None:
        """Describe the state's map."""
        lmap = self.state.likelihood
        self.info.setText("no map" if lmap is None else map_summary(lmap))
