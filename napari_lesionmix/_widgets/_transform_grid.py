"""The Augment dock's two tables: this lesion's exact values, and the batch ranges.

- :class:`ExactValues`: one slider per transform of the lesion being previewed (a
  :class:`LesionParams` field) and the soft blend's sigma (a recipe field); a value the
  batch would never draw is flagged beside its slider.
- :class:`BatchRanges`: the probability and range batch generation draws each transform
  from (``recipe.populate``), bounded by ``recipe.BOUNDS``.

The widgets only convert between controls and values; the dock owns the session.
"""

from __future__ import annotations

from dataclasses import replace

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QWidget
from superqt import QLabeledDoubleSlider
from superqt.utils import signals_blocked

from ..core.recipe import BOUNDS, PopulateOptions
from ..core.transforms import LesionParams

__all__ = ["BatchRanges", "ExactValues", "RANGES", "SLIDERS"]

#: exact-value sliders: name -> (label, low, high, decimals); a slider widens to take in
#: the batch range when that is wider
SLIDERS = {
    "rotate0": ("rotate about z (°)", -180.0, 180.0, 1),
    "rotate1": ("rotate about y (°)", -180.0, 180.0, 1),
    "rotate2": ("rotate about x (°)", -180.0, 180.0, 1),
    "scale": ("scale", 0.2, 3.0, 2),
    "elastic_sigma": ("elastic sigma (vox)", 0.0, 10.0, 1),
    "elastic_magnitude": ("elastic strength (vox)", 0.0, 5.0, 2),
    "brightness": ("brightness", 0.5, 1.5, 3),
    "noise_std": ("noise std (z)", 0.0, 0.5, 3),
    "blend_sigma": ("blend sigma (vox)", *BOUNDS["populate.blend_sigma"], 2),
}
#: batch rows: label -> (probability field, range field) of PopulateOptions (None = none)
RANGES = {
    "flip": ("flip_p", None),
    "rotate (°)": ("rotate_p", "rotate_deg"),
    "scale": ("scale_p", "scale"),
    "elastic sigma (vox)": ("elastic_p", "elastic_sigma"),
    "elastic strength (vox)": (None, "elastic_magnitude"),
    "brightness": ("brightness_p", "brightness"),
    "noise std (z)": ("noise_p", "noise_std"),
}
#: the slider a range field widens
WIDENS = {"rotate_deg": ("rotate0", "rotate1", "rotate2"), "scale": ("scale",),
          "elastic_sigma": ("elastic_sigma",), "elastic_magnitude": ("elastic_magnitude",),
          "brightness": ("brightness",), "noise_std": ("noise_std",)}
#: decimals shown for each batch field
DECIMALS = {"rotate_deg": 1, "scale": 2, "elastic_sigma": 1, "elastic_magnitude": 2,
            "brightness": 3, "noise_std": 3}
FLAG_STYLE = "QLabel { color: #ff9f1c; }"


class RangeBox(QDoubleSpinBox):
    """A spin box without buttons, never narrower than its widest value."""

    def minimumSizeHint(self):  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        texts = (self.textFromValue(self.minimum()), self.textFromValue(self.maximum()))
        need = max(self.fontMetrics().horizontalAdvance(t) for t in texts) + 22
        hint.setWidth(need)
        return hint

    def sizeHint(self):  # noqa: N802 - Qt API
        hint = super().sizeHint()
        hint.setWidth(self.minimumSizeHint().width())
        return hint


def _spin(field: str, decimals: int, step: float) -> QDoubleSpinBox:
    box = RangeBox()
    box.setRange(*BOUNDS[f"populate.{field}"])
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)
    # a compact table of numbers: typed, or changed with the wheel and the arrow keys (the
    # viewer's style sheet would make every box 90 px wide)
    box.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
    box.setStyleSheet("QDoubleSpinBox { min-width: 30px; padding: 1px 4px; }")
    box.setAlignment(Qt.AlignmentFlag.AlignRight)
    return box


class ExactValues(QWidget):
    """The exact values of the lesion being previewed.

    Signals
    -------
    params_edited
        An exact value changed (read :meth:`params`).
    blend_edited(float)
        The blend sigma slider changed (a recipe field, ``populate.blend_sigma``).
    """

    params_edited = Signal()
    blend_edited = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.flips = [QCheckBox(a) for a in ("z", "y", "x")]
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        for cb in self.flips:
            row.addWidget(cb)
            cb.toggled.connect(lambda *_: self.params_edited.emit())
        grid.addWidget(QLabel("flip"), 0, 0)
        grid.addWidget(box, 0, 1)
        self.sliders: dict[str, QLabeledDoubleSlider] = {}
        self.row_labels: dict[str, QLabel] = {}
        self.flags: dict[str, QLabel] = {"flip": self._flag()}
        grid.addWidget(self.flags["flip"], 0, 2)
        for r, (name, (text, lo, hi, dec)) in enumerate(SLIDERS.items(), start=1):
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(lo, hi)
            slider.setDecimals(dec)
            if name == "blend_sigma":
                slider.valueChanged.connect(lambda v: self.blend_edited.emit(float(v)))
            else:
                slider.valueChanged.connect(lambda *_: self.params_edited.emit())
            self.sliders[name] = slider
            self.row_labels[name] = QLabel(text)
            self.flags[name] = self._flag()
            grid.addWidget(self.row_labels[name], r, 0)
            grid.addWidget(slider, r, 1)
            grid.addWidget(self.flags[name], r, 2)
        grid.setColumnStretch(1, 1)
        self._ndim = 3

    @staticmethod
    def _flag() -> QLabel:
        flag = QLabel("")
        flag.setStyleSheet(FLAG_STYLE)
        return flag

    def set_ndim(self, ndim: int) -> None:
        """Show 3 flips and rotations in 3D, 2 flips and one rotation in 2D."""
        self.flips[0].setVisible(ndim == 3)
        for name in ("rotate1", "rotate2"):
            for w in (self.sliders[name], self.row_labels[name], self.flags[name]):
                w.setVisible(ndim == 3)
        self.row_labels["rotate0"].setText("rotate about z (°)" if ndim == 3 else "rotate (°)")
        self._ndim = ndim

    def params(self, base: LesionParams) -> LesionParams:
        """``base`` (seeds kept) with the exact values of the controls."""
        ndim = base.ndim
        n_rot = 3 if ndim == 3 else 1
        return replace(
            base,
            flip=tuple(cb.isChecked() for cb in self.flips[3 - ndim:]),
            rotate=tuple(self.sliders[f"rotate{k}"].value() for k in range(n_rot)),
            scale=self.sliders["scale"].value(),
            elastic_sigma=self.sliders["elastic_sigma"].value(),
            elastic_magnitude=self.sliders["elastic_magnitude"].value(),
            brightness=self.sliders["brightness"].value(),
            noise_std=self.sliders["noise_std"].value(),
        )

    def blend_sigma(self) -> float:
        """The soft-blend sigma (a recipe field)."""
        return self.sliders["blend_sigma"].value()

    def set_blend_sigma(self, value: float) -> None:
        """Show the recipe's blend sigma without emitting :attr:`blend_edited`."""
        with signals_blocked(self.sliders["blend_sigma"]):
            self.sliders["blend_sigma"].setValue(float(value))

    def set_params(self, params: LesionParams) -> None:
        """Show ``params`` without emitting :attr:`params_edited`."""
        for cb, on in zip(self.flips[3 - params.ndim:], params.flip):
            with signals_blocked(cb):
                cb.setChecked(bool(on))
        values = {f"rotate{k}": a for k, a in enumerate(params.rotate)}
        values.update({n: getattr(params, n) for n in
                       ("scale", "elastic_sigma", "elastic_magnitude", "brightness",
                        "noise_std")})
        for name, value in values.items():
            slider = self.sliders[name]
            if not slider.minimum() <= value <= slider.maximum():
                slider.setRange(min(slider.minimum(), value), max(slider.maximum(), value))
            with signals_blocked(slider):
                slider.setValue(float(value))

    def widen(self, options: PopulateOptions) -> None:
        """Let every slider reach the batch range of its transform."""
        for field, names in WIDENS.items():
            value = getattr(options, field)
            hi = max(value) if isinstance(value, tuple) else value
            for name in names:
                slider = self.sliders[name]
                lo = -hi if name.startswith("rotate") else slider.minimum()
                if hi > slider.maximum() or lo < slider.minimum():
                    slider.setRange(min(slider.minimum(), lo), max(slider.maximum(), hi))

    def show_flags(self, flags: dict) -> None:
        """Flag the values the batch would never draw (``{field: why}``); clear others."""
        for name, label in self.flags.items():
            why = flags.get(name, "")
            label.setText("⚠ batch" if why else "")
            label.setToolTip(why)


class BatchRanges(QWidget):
    """What batch generation draws: a probability and a range per transform.

    Signals
    -------
    options_edited(dict)
        ``{field: value}`` of ``PopulateOptions``. A range keeps the exact value of the
        bound the user did not touch.
    """

    options_edited = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for c, text in enumerate(("", "p", "low", "high")):
            grid.addWidget(QLabel(f"<b>{text}</b>"), 0, c)
        self.boxes: dict[str, QDoubleSpinBox] = {}
        self._exact: dict[str, float] = {}  # box key -> the recipe's value (unrounded)
        for r, (text, (p_field, range_field)) in enumerate(RANGES.items(), start=1):
            grid.addWidget(QLabel(text), r, 0)
            if p_field:
                self._add(grid, r, 1, p_field, _spin(p_field, 2, 0.05))
            if range_field == "elastic_magnitude":
                self._add(grid, r, 2, range_field, _spin(range_field, 2, 0.25))
            elif range_field:
                dec = DECIMALS[range_field]
                self._add(grid, r, 2, f"{range_field}[0]", _spin(range_field, dec, 0.05))
                self._add(grid, r, 3, f"{range_field}[1]", _spin(range_field, dec, 0.05))

    def _add(self, grid: QGridLayout, r: int, c: int, key: str, box: QDoubleSpinBox) -> None:
        box.setToolTip(f"recipe populate.{key}: what batch generation draws")
        box.valueChanged.connect(lambda *_, k=key: self._emit(k))
        self.boxes[key] = box
        grid.addWidget(box, r, c)

    def _emit(self, key: str) -> None:
        self._exact[key] = self.boxes[key].value()
        if key.endswith("]"):
            field = key[: key.index("[")]
            value = tuple(self._exact.get(f"{field}[{i}]", self.boxes[f"{field}[{i}]"].value())
                          for i in (0, 1))
        else:
            field, value = key, self.boxes[key].value()
        self.options_edited.emit({field: value})

    def set_options(self, options: PopulateOptions) -> None:
        """Show the batch probabilities and ranges without emitting."""
        for key, box in self.boxes.items():
            if key.endswith("]"):
                value = getattr(options, key[: key.index("[")])[int(key[-2])]
            else:
                value = getattr(options, key)
            self._exact[key] = float(value)
            with signals_blocked(box):
                box.setValue(float(value))
