"""The Review dock: visual QA of a dataset, a view over a ReviewSession.

Open a dataset (an nnU-Net v2 raw dataset; best one written by ``lesionmix generate`` or
Export), browse its cases in a table that sorts (click a header) and filters (status,
decision, source), step with PageDown / PageUp, see source and case on the same grid
(toggled in place with Q, or side by side), the difference map (W), lesions coloured by
origin (amber added, blue kept, magenta outlines on the source where a lesion was
removed) with donor and transform in the lesion table and in the status bar on hover; a
click on a lesion row goes to it. Accept / Reject / Flag (Ctrl+1 / Ctrl+2 / Ctrl+3) with a
note, or Clear (Ctrl+4), are saved at once to the dataset's ``qa/`` folder (*then next*
moves on to the next case after each decision); a line counts
the decisions, and *Remove rejected…* (after a confirmation that names the cases) removes
the rejected cases the way ``lesionmix remove-rejected`` does. The second tab runs the
blinded real-or-synthetic test.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..review.decisions import default_reviewer
from ..review.index import ReviewError
from ..review.session import ReviewSession
from .blinded_panel import BlindedPanel
from .review_layers import ReviewLayers
from .review_removal import ask_and_remove, outcome
from .review_tables import CaseFilters, CaseTable, LesionTable
from .viewer_link import notify

__all__ = ["ReviewDock", "SHORTCUTS"]

#: key -> what it does (listed in the dock)
SHORTCUTS = {"PgDown": "next case", "PgUp": "previous case", "Q": "source / case",
             "W": "difference", "Ctrl+1": "accept", "Ctrl+2": "reject", "Ctrl+3": "flag",
             "Ctrl+4": "clear"}
#: the same, in one short line under the buttons
KEYS_LINE = ("Keys: PgDown / PgUp case · Q source · W difference · Ctrl+1…4 accept / "
             "reject / flag / clear")


class ReviewDock(QWidget):
    """Review a dataset case by case (see the module's docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = ReviewSession()
        self.removal_note = ""  # what the last Remove rejected… did
        self.layers = ReviewLayers(napari_viewer)
        self._build()
        self._connect()
        self._install_shortcuts()
        self.show_case(None)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.open_btn = QPushButton("Open dataset…")
        self.path = QLineEdit()
        self.path.setPlaceholderText("dataset folder or dataset.json, then Enter")
        self.reviewer = QLineEdit(default_reviewer())
        self.reviewer.setToolTip("who decides: stored with every decision")
        top = QHBoxLayout()
        top.addWidget(self.open_btn)
        top.addWidget(self.path, 1)
        self.path.setMinimumWidth(120)
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip("read the cases on disk and every reviewer's decisions "
                                    "again")
        self.remove_btn = QPushButton("Remove rejected…")
        self.remove_btn.setToolTip("delete the rejected cases' files and update the manifest, "
                                   "dataset.json and splits_final.json (asks first)")
        who = QHBoxLayout()
        who.addWidget(QLabel("reviewer"))
        who.addWidget(self.reviewer, 1)
        who.addWidget(self.refresh_btn)
        who.addWidget(self.remove_btn)
        self.filters = CaseFilters(self.session)
        self.progress = QLabel()  # the tally of decisions
        self.progress.setWordWrap(True)
        self.cases = CaseTable(self.session)
        self.prev_btn, self.next_btn = QPushButton("◀ Previous"), QPushButton("Next ▶")
        nav = QHBoxLayout()
        nav.addWidget(self.prev_btn)
        nav.addWidget(self.next_btn)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.toggle_btn = QPushButton("Source (Q)")
        self.toggle_btn.setToolTip("show the source in place of the case, and back")
        self.side = QCheckBox("side by side")
        self.diff = QCheckBox("difference (W)")
        self.channel = QComboBox()
        self.channel.setToolTip("image channel shown")
        view = QHBoxLayout()
        for w in (self.toggle_btn, self.side, self.diff, self.channel):
            view.addWidget(w)
        self.lesions = LesionTable(self.session)
        self.note = QLineEdit()
        self.note.setPlaceholderText("note (saved with the decision)")
        self.accept_btn = QPushButton("Accept")
        self.reject_btn = QPushButton("Reject")
        self.flag_btn = QPushButton("Flag")
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.setToolTip("withdraw the decision: the case is undecided again")
        self.advance = QCheckBox("then next")
        self.advance.setToolTip("after Accept, Reject or Flag, show the next case of the "
                                "table (with the decision filter on 'undecided': the next "
                                "case left to review)")
        decide = QHBoxLayout()
        for w in (self.accept_btn, self.reject_btn, self.flag_btn, self.clear_btn,
                  self.advance):
            decide.addWidget(w)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        keys = QLabel(KEYS_LINE)
        keys.setToolTip("\n".join(f"{k}: {v}" for k, v in SHORTCUTS.items()))
        keys.setWordWrap(True)
        keys.setStyleSheet("color: gray")

        review = QWidget()
        box = QVBoxLayout(review)
        box.addLayout(top)
        box.addLayout(who)
        box.addWidget(self.filters)
        box.addWidget(self.progress)
        middle = QWidget()
        mbox = QVBoxLayout(middle)
        mbox.setContentsMargins(0, 0, 0, 0)
        mbox.addLayout(nav)
        mbox.addWidget(self.title)
        mbox.addLayout(view)
        mbox.addWidget(self.lesions, 1)
        split = QSplitter(Qt.Orientation.Vertical)  # cases above, the case's lesions below
        split.addWidget(self.cases)
        split.addWidget(middle)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        box.addWidget(split, 1)
        box.addWidget(self.note)
        box.addLayout(decide)
        box.addWidget(self.verdict)
        box.addWidget(keys)
        self.blinded = BlindedPanel(self.session)
        self.tabs = QTabWidget()
        self.tabs.addTab(review, "Review")
        self.tabs.addTab(self.blinded, "Blinded test")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)
        self.setMinimumWidth(340)

    def sizeHint(self):  # noqa: N802 - Qt API
        from qtpy.QtCore import QSize
        return QSize(420, 760)

    def _connect(self) -> None:
        s = self.session
        self.open_btn.clicked.connect(lambda: self.choose())
        self.path.returnPressed.connect(lambda: self.open(self.path.text()))
        self.reviewer.editingFinished.connect(self._set_reviewer)
        self.refresh_btn.clicked.connect(lambda: self.reload())
        self.remove_btn.clicked.connect(lambda: self.remove_rejected())
        self.prev_btn.clicked.connect(lambda: s.previous())
        self.next_btn.clicked.connect(lambda: s.next())
        self.toggle_btn.clicked.connect(lambda: self.toggle())
        self.side.toggled.connect(self._side_by_side)
        self.diff.toggled.connect(self._difference)
        self.channel.currentIndexChanged.connect(self._channel)
        for btn, what in ((self.accept_btn, "accept"), (self.reject_btn, "reject"),
                          (self.flag_btn, "flag"), (self.clear_btn, "clear")):
            btn.clicked.connect(lambda _=False, w=what: self.decide(w))
        s.case_changed.connect(self.show_case)
        s.decision_changed.connect(lambda _name: self.show_verdict())
        s.rows_changed.connect(self.show_progress)
        s.lesion_selected.connect(self._go_to)
        s.message.connect(lambda level, text: notify(f"Review: {text}", level))
        self.tabs.currentChanged.connect(self._tab)

    def _install_shortcuts(self) -> None:
        actions = {"next case": self.session.next, "previous case": self.session.previous,
                   "source / case": self.toggle, "difference": self.diff.toggle,
                   "accept": lambda: self.decide("accept"),
                   "reject": lambda: self.decide("reject"), "flag": lambda: self.decide("flag"),
                   "clear": lambda: self.decide("clear")}
        self.shortcuts = []
        for key, what in SHORTCUTS.items():
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(lambda fn=actions[what]: self._if_reviewing(fn))
            self.shortcuts.append(sc)

    def _if_reviewing(self, fn) -> None:
        if self.isVisible() and self.tabs.currentIndex() == 0:
            fn()

    # ------------------------------------------------------------------ actions
    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset's dataset.json", "",
                                              "dataset.json (dataset.json);;JSON (*.json)")
        if path:
            self.open(path)

    def open(self, path) -> bool:
        """Open a dataset and show its first case; False (and a notice) if it is not one."""
        self._set_reviewer()
        try:
            self.session.open(path)
        except ReviewError as exc:
            notify(f"Review: {exc}", "warning")
            return False
        self.removal_note = ""
        self.path.setText(str(self.session.review.root))
        n = self.session.review.n_channels
        self.channel.blockSignals(True)
        self.channel.clear()
        names = self.session.review.channel_names
        self.channel.addItems([f"{c}: {names.get(str(c), c)}" for c in range(n)])
        self.channel.setVisible(n > 1)
        self.channel.blockSignals(False)
        self.session.next()
        self.viewer.reset_view()
        return True

    def _set_reviewer(self) -> None:
        name = self.reviewer.text().strip() or default_reviewer()
        self.session.reviewer = name
        if self.session.store is not None:
            self.session.store.reviewer = name

    def decide(self, decision: str) -> None:
        if self.session.current is None:
            notify("Review: open a case first", "info")
            return
        self._set_reviewer()
        name, shown = self.session.current.name, [r.name for r in self.session.visible()]
        self.session.decide(decision, self.note.text())
        self.note.clear()
        if self.advance.isChecked() and decision != "clear":
            self.session.go_on_from(name, shown)

    def reload(self) -> None:
        """Refresh: the cases on disk and every reviewer's decisions, read again."""
        try:
            self.session.reload()
        except ReviewError as exc:
            notify(f"Review: {exc}", "error")
        self.show_verdict()

    def remove_rejected(self) -> bool:
        """Ask, then remove the rejected cases (and finish an interrupted removal) as
        ``lesionmix remove-rejected`` does; the table is read again afterwards. Returns
        True when something was removed."""
        if self.session.review is None:
            return False
        try:
            results = ask_and_remove(self, self.session)
        except (OSError, ValueError) as exc:
            notify(f"Review: removal stopped: {exc}; Remove rejected… again finishes it",
                   "error")
            self.reload()
            return False
        if results is None:
            return False
        self.reload()
        full = outcome(results)
        done = sum(len(r.plan.cases) for r in results)
        before, after = results[-1].num_training if results else (None, None)
        self.removal_note = f"{done} case(s) removed, numTraining {before} → {after}"
        self.progress.setToolTip(f"Last removal: {full}")
        notify(f"Review: {full}", "info")
        for w in (w for r in results for w in r.warnings):
            notify(f"Review: {w}", "warning")
        self.show_progress()
        return any(r.plan.cases for r in results)

    def toggle(self) -> None:
        if self.session.current is None or self.session.current.source is None:
            return
        shown = self.layers.toggle()
        self.toggle_btn.setText("Case (Q)" if shown == "source" else "Source (Q)")

    def _side_by_side(self, on: bool) -> None:
        self.layers.side_by_side = bool(on)
        if self.session.current is not None:
            self.layers.apply_view()

    def _difference(self, on: bool) -> None:
        layer = self.layers.layer("difference")
        if layer is not None:
            layer.visible = bool(on) and self.layers.has_difference

    def _channel(self, index: int) -> None:
        self.layers.channel = max(index, 0)
        if self.session.current is not None:
            self.layers.show(self.session.current)

    def _go_to(self, lesion) -> None:
        if lesion is not None:
            self.layers.go_to(lesion)

    def _tab(self, index: int) -> None:
        """The blinded test hides the case shown (nothing on screen names a trial)."""
        blinded = index == 1
        for key in ("source", "result", "lesions", "removed", "difference"):
            layer = self.layers.layer(key)
            if layer is not None:
                layer.visible = False if blinded else layer.visible
        if not blinded and self.session.current is not None:
            self.layers.apply_view()

    # ------------------------------------------------------------------ showing
    def show_case(self, case) -> None:
        has = case is not None
        for w in (self.accept_btn, self.reject_btn, self.flag_btn, self.clear_btn, self.note):
            w.setEnabled(has)
        self.toggle_btn.setEnabled(has and case.source is not None)
        self.diff.setEnabled(has and case.difference is not None)
        if not has:
            self.title.setText("Open a dataset (its folder or dataset.json)." if
                               self.session.review is None else "No case shown.")
            self.verdict.setText("")
            return
        self.layers.showing = "result"
        self.toggle_btn.setText("Source (Q)")
        self.layers.show(case)
        diff = self.layers.layer("difference")
        want = self.diff.isChecked() and self.layers.has_difference
        if diff.visible != want:
            diff.visible = want
        r, c = case.row, case.changes.counts()
        text = f"<b>{case.name}</b> ({r.kind}"
        if r.source:
            text += f" of {r.source}"
        text += f"), {r.status or 'status unknown'}: +{c['added']} added, −{c['removed']} removed"
        if r.target_load_mm3 is not None:
            text += (f"; load target {r.target_load_mm3 / 1000:.2f} ml, achieved "
                     f"{(r.achieved_load_mm3 or 0) / 1000:.2f} ml")
        if case.source_note and case.source is None:
            text += f"<br><i>{case.source_note}</i>"
        self.title.setText(text)
        self.show_verdict()

    def show_progress(self) -> None:
        """The decisions so far: how many cases are accepted, rejected, flagged, left."""
        st = self.session.state
        if st is None:
            self.progress.setText("")
            self.remove_btn.setEnabled(False)
            return
        c = st.counts()
        text = (f"{len(st.rows)} cases: {c['accept']} accepted · {c['reject']} rejected · "
                f"{c['flag']} flagged · {c['undecided']} undecided")
        if c["stale"]:
            text += f" ({c['stale']} stale)"
        if st.pending_removal:
            text += ("<br><b>A removal was interrupted</b>: Remove rejected… finishes it "
                     "(until then nnU-Net refuses the dataset).")
        if self.removal_note:
            text += f"<br>Last removal: {self.removal_note}"
        self.progress.setText(text)
        self.remove_btn.setEnabled(bool(c["reject"] or st.pending_removal))

    def show_verdict(self) -> None:
        v = self.session.verdict()
        if v is None or not v.history:
            self.verdict.setText("No decision yet.")
            return
        text = (f"<b>{v.decision or 'withdrawn'}</b> by {v.reviewer}, {v.time[:16]} UTC"
                + (f": {v.note}" if v.note else ""))
        if v.stale:
            text += " (stale: the case changed since)"
        if len(v.history) > 1:
            text += f" — {len(v.history)} decisions in its history"
            if v.disagreement:
                text += ", reviewers disagree"
        self.verdict.setText(text)


def open_dataset_in_dock(viewer, path) -> ReviewDock:
    """Open (or reuse) the Review dock in ``viewer`` and open ``path`` in it."""
    _, dock = viewer.window.add_plugin_dock_widget("napari-lesionmix", "Review")
    dock.open(Path(path))
    return dock


__all__ += ["open_dataset_in_dock"]
