"""The "Likelihood" dock: build, show, save and load the lesion likelihood map.

The map is built with :meth:`LikelihoodMap.from_cases` (the current case) or
:meth:`LikelihoodMap.from_label_files` (a folder of training masks) in a thread worker
with a progress bar. Smoothing (mm) and floor are the recipe's ``likelihood`` fields.
The map is shown as a helper Image layer (colormap ``inferno``, additive blending) with
its geometry's scale and translate.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSlider,
)

from .._layers import ROLE_KEY
from ..core.io_utils import IMAGE_SUFFIXES, label_files_of
from ..core.likelihood import LikelihoodMap
from ._base import LesionMixDock, notify
from ._state import StateError

__all__ = ["LikelihoodDock", "map_summary"]

OVERLAY_NAME = "LesionMix likelihood"


def map_summary(lmap: LikelihoodMap) -> str:
    """One line about a map, numbers written plainly: ``map (24, 48, 48), 310 voxels > 0;
    spacing (2, 0.8, 0.8) mm``."""
    shape = ", ".join(str(int(n)) for n in lmap.prob.shape)
    nonzero = int((lmap.prob > 0).sum())
    spacing = ", ".join(f"{float(s):.4g}" for s in lmap.geometry.spacing_zyx)
    return f"map ({shape}), {nonzero} voxels > 0; spacing ({spacing}) mm"


class LikelihoodDock(LesionMixDock):
    """Build the likelihood map from the case or a folder; show it as an overlay.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        form = QFormLayout()
        self.sigma = QDoubleSpinBox()
        self.sigma.setRange(0.0, 100.0)
        self.sigma.setSingleStep(0.5)
        self.sigma.setSuffix(" mm")
        self.floor = QDoubleSpinBox()
        self.floor.setRange(0.0, 1.0)
        self.floor.setDecimals(3)
        self.floor.setSingleStep(0.01)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        form.addRow("Smoothing", self.sigma)
        form.addRow("Floor", self.floor)
        form.addRow("Overlay opacity", self.opacity)
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
        self.opacity.valueChanged.connect(self.set_opacity)
        self.from_case.clicked.connect(self.build_from_case)
        self.from_folder.clicked.connect(self._ask_folder)
        self.save.clicked.connect(self._ask_save)
        self.load.clicked.connect(self._ask_load)
        self.listen(self.state.likelihood_changed, self.show_map)
        self.listen(self.state.recipe_changed, self.show_recipe)
        self.enable_when(lambda: self.state.case is not None, self.from_case)
        self.enable_when(lambda: self.state.likelihood is not None, self.save)
        self.show_recipe()
        if self.state.likelihood is not None:
            self.show_map()

    # -- options -----------------------------------------------------------------------------
    def show_recipe(self) -> None:
        """Show the recipe's smoothing and floor."""
        opts = self.state.recipe.likelihood
        for box, value in ((self.sigma, opts.sigma_mm), (self.floor, opts.floor)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def apply_options(self, **fields) -> None:
        """Write the changed option(s) into the recipe (default: smoothing and floor).

        Only the field the user changed is written: the other box shows a rounded value.
        """
        if not fields:
            fields = {"sigma_mm": self.sigma.value(), "floor": self.floor.value()}
        try:
            self.state.update_recipe("likelihood", **fields)
        except StateError as exc:
            notify(f"Likelihood: {exc}", "warning")
            self.show_recipe()

    # -- building ------------------------------------------------------------------------------
    def build_from_case(self):
        """Build the map from the current case (without the preview) in a worker;
        returns the worker."""
        if self.state.case is None:
            notify("Likelihood: no case yet; choose the layers in the Case dock", "warning")
            return None
        # a snapshot without the preview: the worker reads it while later previews
        # change the case in place
        case = self.state.real_case(copy=True)
        return self.run_worker(LikelihoodMap.from_recipe, [case], self.state.recipe,
                               case.placement, desc="Likelihood map from the case",
                               on_done=self.state.set_likelihood)

    def build_from_folder(self, folder: str | Path):
        """Build the map from every label file of ``folder`` in a worker.

        The map is built on the current case's grid when there is a case (other grids
        are resampled through their geometry), else on the first file's grid.

        Returns
        -------
        worker or None
        """
        try:
            paths = label_files_of(folder)
        except OSError as exc:
            notify(f"Likelihood: {exc}", "warning")
            return None
        r = self.state.recipe
        case = self.state.case
        reference = None if case is None else (case.geometry, case.spatial_shape)
        return self.run_worker(LikelihoodMap.from_label_files, paths, r.lesion_classes,
                               r.organ_label, r.likelihood.sigma_mm, r.likelihood.floor,
                               reference=reference,
                               desc=f"Likelihood map from {len(paths)} label files",
                               on_done=self.state.set_likelihood)

    # -- files -------------------------------------------------------------------------------------
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

    # -- display ---------------------------------------------------------------------------------
    def overlay(self):
        """The overlay layer, or None."""
        for layer in self.viewer.layers:
            if layer.metadata.get(ROLE_KEY) == "likelihood":
                return layer
        return None

    def show_map(self) -> None:
        """Show (or update, or remove) the overlay for the state's map."""
        lmap = self.state.likelihood
        layer = self.overlay()
        if lmap is None:
            if layer is not None:
                self.viewer.layers.remove(layer)
            self.info.setText("no map")
            return
        g = lmap.geometry
        if layer is not None and layer.data.shape == lmap.prob.shape:
            layer.data = lmap.prob
            layer.scale, layer.translate = g.napari_scale(), g.napari_translate()
        else:
            if layer is not None:
                self.viewer.layers.remove(layer)
            active = self.viewer.layers.selection.active
            self.viewer.add_image(lmap.prob, name=OVERLAY_NAME, colormap="inferno",
                                  blending="additive", opacity=self.opacity.value() / 100,
                                  contrast_limits=(0.0, 1.0), scale=g.napari_scale(),
                                  translate=g.napari_translate(),
                                  metadata={ROLE_KEY: "likelihood"})
            if active is not None:
                self.viewer.layers.selection.active = active
        self.info.setText(map_summary(lmap))

    def set_opacity(self, value: int) -> None:
        """Overlay opacity in percent."""
        layer = self.overlay()
        if layer is not None:
            layer.opacity = value / 100
