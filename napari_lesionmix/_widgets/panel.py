"""The LesionMix panel: the four steps as tabs, in order, in one dock.

1 Case → 2 Likelihood → 3 Augment → 4 Synthesise. Each tab scrolls on its own, so the
panel fits a 1280×800 screen; a button above the tabs opens the three-plane view.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .augment_dock import AugmentDock
from .case_dock import CaseDock
from .likelihood_dock import LikelihoodDock
from .synth_dock import SynthDock

__all__ = ["LesionMixPanel", "STEPS"]

#: the tabs, in the order a person works through them
STEPS = (("Case", CaseDock), ("Likelihood", LikelihoodDock), ("Augment", AugmentDock),
         ("Synthesise", SynthDock))
WIDTH = 430  # px: wide enough for every box, narrow enough for a 1280 px screen


class LesionMixPanel(QWidget):
    """Case, Likelihood, Augment and Synthesise as tabs of one dock.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    tabs : QTabWidget
    docks : dict
        Step name -> its dock widget.
    planes : PlanesDock or None
        The three-plane view, once opened.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.planes = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.planes_btn = QPushButton("Three-plane view")
        self.planes_btn.setToolTip("axial, coronal and sagittal views with a crosshair")
        self.planes_btn.clicked.connect(self.open_planes)
        row.addWidget(self.planes_btn)
        row.addStretch(1)
        layout.addLayout(row)
        self.tabs = QTabWidget()
        self.docks = {}
        for i, (name, cls) in enumerate(STEPS, start=1):
            dock = cls(napari_viewer)
            scroll = QScrollArea()
            scroll.setWidget(dock)
            scroll.setWidgetResizable(True)
            scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            self.tabs.addTab(scroll, f"{i} {name}")
            self.docks[name] = dock
        layout.addWidget(self.tabs, 1)
        self.setMinimumWidth(WIDTH)
        # the keyboard shortcuts work anywhere in the window, whichever tab is shown
        self.docks["Augment"].install_shortcuts(self)

    def show_step(self, name: str) -> None:
        """Bring a step's tab to the front."""
        self.tabs.setCurrentIndex([n for n, _ in STEPS].index(name))

    def open_planes(self):
        """Open the three-plane view at the bottom of the window (once)."""
        from .planes import PlanesDock

        if self.planes is None:
            self.planes = PlanesDock(self.viewer)
            self.viewer.window.add_dock_widget(self.planes, name="Three-plane view",
                                               area="bottom")
        return self.planes
