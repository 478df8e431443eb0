"""Placeholder for the "Synthesise and export" dock (being written by another developer).

It exists so that the manifest's ``napari-lesionmix.synthesise_widget`` command resolves
and ``npe2 validate`` passes; it will be replaced entirely.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget


class SynthDock(QWidget):
    """Placeholder dock: shows "coming"."""

    def __init__(self, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("coming"))
