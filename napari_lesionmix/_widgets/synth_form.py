"""The target-load controls of the "Synthesise and export" dock.

One combo box for the distribution and one spin box per parameter, in ml for people;
the recipe stores mm³ (``recipe.load``), so values are converted both ways here. A
parameter left at "auto" is absent from the recipe and comes from the reference loads.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QWidget
from superqt.utils import signals_blocked

from ..core.recipe import LOAD_DISTRIBUTIONS, LOAD_KEYS

__all__ = ["LoadForm", "PARAMS"]

#: parameter -> label
PARAMS = {"lo": "low (ml)", "hi": "high (ml)", "mean": "mean (ml)", "std": "std (ml)",
          "value": "value (ml)"}
_AUTO = -1.0
ML = 1000.0


class LoadForm(QWidget):
    """Distribution and parameters; emits :attr:`edited` when the user changes one.

    Signals
    -------
    edited
        Read :meth:`kind` and :meth:`params_mm3`.
    """

    edited = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.addItems(LOAD_DISTRIBUTIONS)
        form.addRow("Distribution", self.combo)
        self.spins: dict[str, QDoubleSpinBox] = {}
        #: the parameters in mm³, exactly as the recipe has them; a spin box (3 decimals
        #: of ml) only overwrites its own parameter, when the user changes it
        self._mm3: dict[str, float] = {}
        for name, label in PARAMS.items():
            box = QDoubleSpinBox()
            box.setRange(_AUTO, 100000.0)
            box.setDecimals(3)
            box.setSingleStep(0.1)
            box.setSpecialValueText("auto")
            box.setKeyboardTracking(False)
            box.setValue(_AUTO)
            box.valueChanged.connect(lambda value, n=name: self._on_spin(n, value))
            form.addRow(label, box)
            self.spins[name] = box
        self._form = form
        self.combo.currentTextChanged.connect(self._on_kind)
        self._show_rows()

    def kind(self) -> str:
        """The chosen distribution."""
        return self.combo.currentText()

    def params_mm3(self) -> dict:
        """The parameters the chosen distribution takes, in mm³ ("auto" ones left out)."""
        used = LOAD_KEYS[self.kind()] - {"reference"}
        return {name: value for name, value in self._mm3.items() if name in used}

    def _on_spin(self, name: str, value: float) -> None:
        """The user changed one parameter: only that one is taken from its box."""
        if value > _AUTO:
            self._mm3[name] = round(value * ML, 6)
        else:
            self._mm3.pop(name, None)
        self.edited.emit()

    def set_values(self, kind: str, load: dict) -> None:
        """Show a recipe's ``load_distribution`` and ``load`` (mm³) without emitting."""
        with signals_blocked(self), signals_blocked(self.combo):
            self.combo.setCurrentText(kind)
            self._mm3 = {name: float(load[name]) for name in self.spins if name in load}
            for name, box in self.spins.items():
                with signals_blocked(box):
                    box.setValue(load[name] / ML if name in load else _AUTO)
            self._show_rows()

    def set_param(self, name: str, value_mm3: float | None) -> None:
        """Set one parameter (None = auto) without emitting."""
        box = self.spins[name]
        if value_mm3 is None:
            self._mm3.pop(name, None)
        else:
            self._mm3[name] = float(value_mm3)
        with signals_blocked(box):
            box.setValue(_AUTO if value_mm3 is None else value_mm3 / ML)

    def _on_kind(self, *_):
        self._show_rows()
        self.edited.emit()

    def _show_rows(self) -> None:
        used = LOAD_KEYS[self.kind()]
        for name, box in self.spins.items():
            self._form.setRowVisible(box, name in used)
