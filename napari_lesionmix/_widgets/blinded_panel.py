"""The blinded test in the Review dock: lesions shown unnamed, "real or synthetic?".

A view over :class:`~napari_lesionmix.review.blinded.BlindedSession`: each trial is shown
as its three zoomed planes in the radiological convention (axial, coronal, sagittal; drawn
here, not as napari layers, so nothing in the layer list names the case), with the buttons Real (key R) and Synthetic (key S). Every answer is
saved at once; at the end the score and its 95% interval are shown.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from qtpy.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..review.blinded import BlindedSession, trial_planes
from ..review.sheet import fit, panel

__all__ = ["BlindedPanel"]

SIZE = 150  # pixels of one plane


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img.copy())


class BlindedPanel(QWidget):
    """Start a blinded test on the session's dataset and answer its trials."""

    def __init__(self, review_session, parent=None):
        super().__init__(parent)
        self.review_session = review_session
        self.test: BlindedSession | None = None
        self.trial = None
        form = QFormLayout()
        self.rater = QLineEdit()
        self.rater.setPlaceholderText("your name (default: the reviewer)")
        self.n = QSpinBox()
        self.n.setRange(2, 1000)
        self.n.setValue(20)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("rater", self.rater)
        form.addRow("trials", self.n)
        form.addRow("seed", self.seed)
        self.start_btn = QPushButton("Start a blinded test")
        self.start_btn.clicked.connect(lambda: self.start())
        self.progress = QLabel("Real and synthesised lesions are shown one at a time, "
                               "shuffled and unnamed. Answer what you see.")
        self.progress.setWordWrap(True)
        self.images = {}
        planes = QGridLayout()
        for k, name in enumerate(("axial", "coronal", "sagittal")):
            label = QLabel()
            label.setFixedSize(SIZE, SIZE)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background: black")
            label.setToolTip(name)
            planes.addWidget(label, k // 2, k % 2)
            self.images[name] = label
        caption = QLabel("axial, coronal (top); sagittal (bottom). Radiological: the "
                         "patient's right on the left, anterior / superior up.")
        caption.setWordWrap(True)
        caption.setStyleSheet("color: gray")
        self.real_btn = QPushButton("Real (R)")
        self.synth_btn = QPushButton("Synthetic (S)")
        self.real_btn.clicked.connect(lambda: self.answer("real"))
        self.synth_btn.clicked.connect(lambda: self.answer("synthetic"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.real_btn)
        buttons.addWidget(self.synth_btn)
        self.score = QLabel("")
        self.score.setWordWrap(True)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.start_btn)
        box.addWidget(self.progress)
        box.addLayout(planes)
        box.addWidget(caption)
        box.addLayout(buttons)
        box.addWidget(self.score)
        box.addStretch(1)
        self.shortcuts = []
        for key, what in (("R", "real"), ("S", "synthetic")):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda w=what: self.answer(w))
            self.shortcuts.append(sc)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # R and S work once started
        self._enable(False)

    def _enable(self, on: bool) -> None:
        self.real_btn.setEnabled(on)
        self.synth_btn.setEnabled(on)

    def start(self) -> BlindedSession | None:
        review = self.review_session.review
        if review is None:
            self.progress.setText("Open a dataset first.")
            return None
        rater = self.rater.text().strip() or self.review_session.store.reviewer
        try:
            self.test = BlindedSession.new(review, rater, self.n.value(), self.seed.value())
        except ValueError as exc:
            self.progress.setText(str(exc))
            return None
        self.score.setText(f"answers are saved to {self.test.path}")
        self.show_trial()
        self.setFocus()
        return self.test

    def show_trial(self) -> None:
        self.trial = self.test.next_trial() if self.test is not None else None
        if self.trial is None:
            for label in self.images.values():
                label.clear()
            self._enable(False)
            if self.test is not None:
                self.progress.setText(f"Done: {len(self.test.trials)} trials answered.")
                self.score.setText(self.test.score().verdict())
            return
        shown = trial_planes(self.trial)
        for name, label in self.images.items():
            pic = shown["planes"].get(name)
            if pic is None:
                label.clear()
                continue
            size = fit(pic.shape, shown["pixel_size"][name], (SIZE, SIZE))
            label.setPixmap(_pixmap(panel(pic, shown["window"], size)))
        self.progress.setText(f"Trial {self.test.answered + 1} of {len(self.test.trials)} "
                              f"(id {self.trial.id}): real or synthetic?")
        self._enable(True)

    def answer(self, kind: str) -> None:
        if self.test is None or self.trial is None:
            return
        self.test.answer(self.trial.id, kind)
        self.show_trial()
