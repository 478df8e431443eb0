"""The transform grid of the Augment dock: one row per transform of the spec.

Columns: the exact value used by the preview (a :class:`LesionParams` field) | p | lo |
hi, the probability and range batch generation draws from (``recipe.populate``). The
widget only converts between controls and values; the dock owns the state.
"""

from __future__ import annotations

from dataclasses import replace

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QWidget
from superqt import QLabeledDoubleSlider

from ..core.recipe import BOUNDS, PopulateOptions
from ..core.transforms import LesionParams

__all__ = ["TransformGrid", "SLIDERS", "RANGES"]

#: exact-value sliders: name -> (label, min, max, decimals)
SLIDERS = {
    "rotate0": ("rotate about z (°)", -180.0, 180.0, 1),
    "rotate1": ("rotate about y (°)", -180.0, 180.0, 1),
    "rotate2": ("rotate about x (°)", -180.0, 180.0, 1),
    "scale": ("scale", 0.2, 3.0, 2),
    "elastic_sigma": ("elastic sigma (vox)", 0.0, 10.0, 1),
    "elastic_magnitude": ("elastic strength (vox)", 0.0, 5.0, 2),
    "brightness": ("brightness", 0.5, 1.5, 3),
    "noise_std": ("noise std (z-units)", 0.0, 0.5, 3),
    "blend_sigma": ("blend sigma (vox)", *BOUNDS["populate.blend_sigma"], 2),  # a recipe field
}
#: batch columns per row: row -> (p field, range field) of PopulateOptions (None = none)
RANGES = {
    "flip": ("flip_p", None),
    "rotate0": ("rotate_p", "rotate_deg"),
    "scale": ("scale_p", "scale"),
    "elastic_sigma": ("elastic_p", "elastic_sigma"),
    "elastic_magnitude": (None, "elastic_magnitude"),
    "brightness": ("brightness_p", "brightness"),
    "noise_std": ("noise_p", "noise_std"),
}

#: decimals shown for each batch range (its bounds are ``recipe.BOUNDS``)
DECIMALS = {"rotate_deg": 1, "scale": 2, "elastic_sigma": 1, "brightness": 3, "noise_std": 3}


def _spin(lo: float, hi: float, decimals: int = 2, step: float = 0.05) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)
    return box


class TransformGrid(QWidget):
    """Exact transform values and the batch ranges beside them.

    Signals
    -------
    params_edited
        An exact value changed (read :meth:`params`).
    blend_edited(float)
        The blend sigma slider changed (a recipe field, ``populate.blend_sigma``).
    options_edited(dict)
        A batch field changed: ``{field: value}`` of ``PopulateOptions``. A range
        field keeps the exact value of the bound the user did not touch.
    """

    params_edited = Signal()
    blend_edited = Signal(float)
    options_edited = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for c, text in enumerate(("", "value", "p", "lo", "hi")):
            grid.addWidget(QLabel(f"<b>{text}</b>"), 0, c)
        self.flips = [QCheckBox(a) for a in ("z", "y", "x")]
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        for cb in self.flips:
            row.addWidget(cb)
            cb.toggled.connect(lambda *_: self.params_edited.emit())
        grid.addWidget(QLabel("flip"), 1, 0)
        grid.addWidget(box, 1, 1)
        self.sliders: dict[str, QLabeledDoubleSlider] = {}
        self.row_labels: dict[str, QLabel] = {}
        for r, (name, (text, lo, hi, dec)) in enumerate(SLIDERS.items(), start=2):
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(lo, hi)
            slider.setDecimals(dec)
            if name == "blend_sigma":
                slider.valueChanged.connect(lambda v: self.blend_edited.emit(float(v)))
            else:
                slider.valueChanged.connect(lambda *_: self.params_edited.emit())
            self.sliders[name] = slider
            self.row_labels[name] = QLabel(text)
            grid.addWidget(self.row_labels[name], r, 0)
            grid.addWidget(slider, r, 1)
        self.batch: dict[str, QDoubleSpinBox] = {}
        self._exact: dict[str, float] = {}  # batch key -> the recipe's value (unrounded)
        rows = {"flip": 1, **{n: r for r, n in enumerate(SLIDERS, start=2)}}
        for name, (p_field, range_field) in RANGES.items():
            r = rows[name]
            if p_field:
                self._add_batch(grid, r, 2, p_field,
                                _spin(*BOUNDS[f"populate.{p_field}"], 2, 0.05))
            if range_field == "elastic_magnitude":
                self._add_batch(grid, r, 3, range_field,
                                _spin(*BOUNDS[f"populate.{range_field}"], 2, 0.25))
            elif range_field:
                lo, hi = BOUNDS[f"populate.{range_field}"]
                dec = DECIMALS[range_field]
                self._add_batch(grid, r, 3, f"{range_field}[0]", _spin(lo, hi, dec))
                self._add_batch(grid, r, 4, f"{range_field}[1]", _spin(lo, hi, dec))
        grid.setColumnStretch(1, 3)

    def _add_batch(self, grid: QGridLayout, r: int, c: int, key: str,
                   box: QDoubleSpinBox) -> None:
        box.setToolTip(f"recipe populate.{key}: what batch generation draws")
        box.valueChanged.connect(lambda *_, k=key: self._emit_option(k))
        self.batch[key] = box
        grid.addWidget(box, r, c)

    def _emit_option(self, key: str) -> None:
        self._exact[key] = self.batch[key].value()
        if key.endswith("]"):
            # only the edited bound comes from its (rounded) box; the other keeps the
            # recipe's exact value
            field = key[: key.index("[")]
            value = tuple(self._exact.get(f"{field}[{i}]", self.batch[f"{field}[{i}]"].value())
                          for i in (0, 1))
        else:
            field, value = key, self.batch[key].value()
        self.options_edited.emit({field: value})

    # -- values ----------------------------------------------------------------------------
    def set_ndim(self, ndim: int) -> None:
        """Show 3 flips and rotations in 3D, 2 flips and one rotation in 2D."""
        self.flips[0].setVisible(ndim == 3)
        for name in ("rotate1", "rotate2"):
            self.sliders[name].setVisible(ndim == 3)
            self.row_labels[name].setVisible(ndim == 3)
        self.row_labels["rotate0"].setText("rotate about z (°)" if ndim == 3 else "rotate (°)")
        self._ndim = ndim

    def params(self, base: LesionParams) -> LesionParams:
        """``base`` (seeds kept) with the exact values of the controls."""
        ndim = base.ndim
        flips = self.flips[3 - ndim:]
        n_rot = 3 if ndim == 3 else 1
        return replace(
            base,
            flip=tuple(cb.isChecked() for cb in flips),
            rotate=tuple(self.sliders[f"rotate{k}"].value() for k in range(n_rot)),
            scale=self.sliders["scale"].value(),
            elastic_sigma=self.sliders["elastic_sigma"].value(),
            elastic_magnitude=self.sliders["elastic_magnitude"].value(),
            brightness=self.sliders["brightness"].value(),
            noise_std=self.sliders["noise_std"].value(),
        )

    def blend_sigma(self) -> float:
        """The soft-blend sigma (a recipe field, shown with the exact values)."""
        return self.sliders["blend_sigma"].value()

    def set_blend_sigma(self, value: float) -> None:
        """Show the recipe's blend sigma without emitting :attr:`blend_edited`."""
        slider = self.sliders["blend_sigma"]
        slider.blockSignals(True)
        try:
            slider.setValue(float(value))
        finally:
            slider.blockSignals(False)

    def set_params(self, params: LesionParams, blend_sigma: float | None = None) -> None:
        """Show ``params`` without emitting :attr:`params_edited`."""
        self.blockSignals(True)
        widgets = [*self.flips, *self.sliders.values()]
        for w in widgets:
            w.blockSignals(True)
        try:
            flips = self.flips[3 - params.ndim:]
            for cb, on in zip(flips, params.flip):
                cb.setChecked(bool(on))
            for k, angle in enumerate(params.rotate):
                self.sliders[f"rotate{k}"].setValue(float(angle))
            for name in ("scale", "elastic_sigma", "elastic_magnitude", "brightness",
                         "noise_std"):
                self.sliders[name].setValue(float(getattr(params, name)))
            if blend_sigma is not None:
                self.sliders["blend_sigma"].setValue(float(blend_sigma))
        finally:
            for w in widgets:
                w.blockSignals(False)
            self.blockSignals(False)

    def set_options(self, options: PopulateOptions) -> None:
        """Show the batch probabilities and ranges without emitting."""
        for key, box in self.batch.items():
            if key.endswith("]"):
                field, i = key[: key.index("[")], int(key[-2])
                value = getattr(options, field)[i]
            else:
                value = getattr(options, key)
            self._exact[key] = float(value)
            box.blockSignals(True)
            box.setValue(float(value))
            box.blockSignals(False)
