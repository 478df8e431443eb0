"""The Augment dock's widgets: mode, verdict, Apply/Undo/Reset/Clear, the Add box (location,
seed, this lesion's exact values), the batch ranges and the Remove box.

:class:`AugmentLayout` only builds them; :class:`~.augment_dock.AugmentDock` connects
them to the session.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QRect, Qt, QTimer
from qtpy.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
)

from ..core.recipe import BOUNDS, INPAINT_METHODS
from ._base import seed_box
from ._transform_grid import BatchRanges, ExactValues


class LinesLabel(QLabel):
    """A word-wrapped label exactly ``lines`` lines high in the font it is drawn with:
    napari's style sheet sets the font after the label is made, so the height follows
    every font or style change (a height taken from the first font cut the last line)."""

    def __init__(self, lines: int, text: str = ""):
        super().__init__(text)
        self.lines = lines
        self.setWordWrap(True)
        self._fit()

    def _fit(self) -> None:
        # the height Qt lays out for that many lines (more than lines × lineSpacing)
        text = self.fontMetrics().boundingRect(QRect(0, 0, 10_000, 10_000), 0,
                                               "\n".join(["Xg"] * self.lines)).height()
        m = self.contentsMargins()
        self.setFixedHeight(text + m.top() + m.bottom() + 2)

    def event(self, event) -> bool:
        done = super().event(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange,
                            QEvent.Type.Polish, QEvent.Type.ContentsRectChange):
            self._fit()
        return done

__all__ = ["SHORTCUTS", "AugmentLayout"]

#: the dock's keyboard shortcuts: key -> what it does (listed in the dock)
SHORTCUTS = {"Ctrl+Return": "apply", "Ctrl+Z": "undo", "N": "next lesion",
             "Shift+N": "previous lesion", "H": "preview on / off"}


class AugmentLayout:
    """Builds the Augment dock's children (a part of the dock; it has ``layout()``)."""

    def _build(self) -> None:
        lay = self.layout()
        self.lesion_info = QLabel("")
        self.lesion_info.setWordWrap(True)
        lay.addWidget(self.lesion_info)
        modes = QHBoxLayout()
        self.add_mode = QRadioButton("Add (populate)")
        self.remove_mode = QRadioButton("Remove (inpaint)")
        self.add_mode.setChecked(True)
        self._mode_group = QButtonGroup(self)
        for b in (self.add_mode, self.remove_mode):
            self._mode_group.addButton(b)
            modes.addWidget(b)
        modes.addStretch(1)
        lay.addLayout(modes)
        self.live = QCheckBox("Preview (H)")
        self.live.setChecked(True)
        self.live.setToolTip("show the preview; H turns it on and off")
        # The verdict wraps over up to three lines of a fixed height, so a new text never
        # changes the dock's layout; the preview time has its own fixed-size label.
        self.status = LinesLabel(3)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        lay.addWidget(self.status)
        row = QHBoxLayout()
        self.apply_btn = QPushButton("Apply")
        self.undo_btn = QPushButton("Undo")
        self.reset_btn = QPushButton("Reset")
        self.clear_btn = QPushButton("Clear")
        self.apply_btn.setToolTip("write the preview into the layers (Ctrl+Enter)")
        self.undo_btn.setToolTip("undo the last Apply (Ctrl+Z)")
        self.reset_btn.setToolTip("undo every Apply")
        self.clear_btn.setToolTip("remove the preview")
        for b in (self.apply_btn, self.undo_btn, self.reset_btn, self.clear_btn):
            row.addWidget(b)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.history = QLabel("no change applied")
        self.history.setWordWrap(True)
        self.timing = QLabel("")
        self.timing.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        metrics = self.timing.fontMetrics()
        self.timing.setFixedSize(metrics.horizontalAdvance("preview 00000 ms") + 6,
                                 metrics.height() + 4)
        self.timing.setToolTip("time to compute the last preview")
        row.addWidget(self.live)
        row.addWidget(self.history, 1)
        row.addWidget(self.timing)
        lay.addLayout(row)
        self._build_add(lay)
        self._build_remove(lay)
        keys = " · ".join(f"{k.replace('Return', 'Enter')} {v}" for k, v in SHORTCUTS.items())
        self.keys = QLabel(f"Keys: {keys}")
        self.keys.setWordWrap(True)
        lay.addWidget(self.keys)
        lay.addStretch(1)
        self._timing_shown_at = -1.0
        self._timing_timer = QTimer(self)
        self._timing_timer.setSingleShot(True)
        self._timing_timer.timeout.connect(self._show_timing)

    def _build_add(self, lay) -> None:
        self.add_box = QGroupBox("Add: this lesion")
        add = QVBoxLayout(self.add_box)
        row = QHBoxLayout()
        self.location_label = QLabel("location: none")
        self.location_label.setWordWrap(True)
        self.pick = QPushButton("Pick location")
        self.pick.setCheckable(True)
        self.pick.setToolTip("then click the canvas where the lesion goes")
        self.sample = QPushButton("Sample from heatmap")
        row.addWidget(self.pick)
        row.addWidget(self.sample)
        add.addLayout(row)
        add.addWidget(self.location_label)
        row = QHBoxLayout()
        self.seed = seed_box()
        self.seed.setToolTip("the seed Randomise draws this lesion's values with")
        row.addWidget(QLabel("Seed"))
        row.addWidget(self.seed, 1)
        add.addLayout(row)
        row = QHBoxLayout()
        self.randomise = QPushButton("Randomise")
        self.identity = QPushButton("Identity")
        row.addWidget(self.randomise)
        row.addWidget(self.identity)
        add.addLayout(row)
        self.grid = ExactValues()
        add.addWidget(self.grid)
        lay.addWidget(self.add_box)
        self.batch_box = QGroupBox("Batch ranges (what generation draws)")
        inner = QVBoxLayout(self.batch_box)
        self.ranges = BatchRanges()
        inner.addWidget(self.ranges)
        lay.addWidget(self.batch_box)

    def _build_remove(self, lay) -> None:
        self.remove_box = QGroupBox("Remove: inpaint")
        form = QFormLayout(self.remove_box)
        self.method = QComboBox()
        self.method.addItems(INPAINT_METHODS)
        self.axis = QSpinBox()
        self.axis.setRange(*BOUNDS["inpaint.axis"])
        self.dilate = QSpinBox()
        self.dilate.setRange(*BOUNDS["inpaint.dilate"])
        self.texture = QCheckBox("texture noise")
        self.noise_seed = seed_box()
        form.addRow("Method", self.method)
        form.addRow("Slice axis", self.axis)
        form.addRow("Dilate (vox)", self.dilate)
        form.addRow(self.texture)
        form.addRow("Noise seed", self.noise_seed)
        lay.addWidget(self.remove_box)

