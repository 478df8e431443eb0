"""The "Augment" dock: tune one lesion by hand with a live preview; Apply, Undo, Reset.

Two modes on the selected lesion:

- **Add** (populate): the lesion, augmented with the exact values of the transform grid,
  is inserted centred at the chosen location (click the canvas with "Pick location", or
  sample one from the likelihood map). The engine computes it in the lesion's own patch
  (:func:`~napari_lesionmix.core.mix.prepare_lesion` + :func:`place_edit`);
  :func:`check_location` says whether the batch engine would accept that location.
- **Remove** (inpaint): :func:`~napari_lesionmix.core.mix.inpaint_edit` with the method
  (slices / slice-axis + axis / 3d), dilation and texture of ``recipe.inpaint``.

Every change recomputes the preview (debounced to one per event-loop turn) through
:meth:`LesionMixState.preview`, which touches only the edit's box.
"""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import Qt, QTimer
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

from ..core.edits import (
    check_location,
    find_location,
    inpaint_edit,
    place_edit,
    prepare_lesion,
)
from ..core.likelihood import LikelihoodError
from ..core.mix import location_sampler
from ..core.recipe import INPAINT_METHODS
from ..core.transforms import LesionParams, sample_params
from ._base import LesionMixDock, notify
from ._state import StateError
from ._transform_grid import TransformGrid

__all__ = ["AugmentDock"]

TIMING_HZ = 4  # at most this many updates a second of the preview-time label


class AugmentDock(LesionMixDock):
    """Add (populate) or remove (inpaint) the selected lesion with a live preview.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    params : LesionParams
        The exact values the preview uses (seeds included).
    last_preview_ms : float
        Wall time of the last preview computation and display, in ms.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.params = LesionParams.identity(3)
        self.reason = ""
        self.last_preview_ms = 0.0
        self._lesion_key = None
        self._draws = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.update_preview)
        self._build()
        self._connect()
        self.show_recipe()
        self.on_case()

    # -- building --------------------------------------------------------------------------
    def _build(self) -> None:
        lay = self.layout()
        self.lesion_info = QLabel("select a lesion in the Case dock or click one")
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
        self.live = QCheckBox("live preview")
        self.live.setChecked(True)
        modes.addWidget(self.live)
        lay.addLayout(modes)

        self.add_box = QGroupBox("Add: transforms (value | batch p, lo, hi)")
        add = QVBoxLayout(self.add_box)
        self.grid = TransformGrid()
        add.addWidget(self.grid)
        row = QHBoxLayout()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.randomise = QPushButton("Randomise")
        self.identity = QPushButton("Identity")
        row.addWidget(self.seed)
        row.addWidget(self.randomise)
        row.addWidget(self.identity)
        add.addLayout(row)
        row = QHBoxLayout()
        self.location_label = QLabel("location: none")
        self.pick = QPushButton("Pick location")
        self.pick.setCheckable(True)
        self.sample = QPushButton("Sample from heatmap")
        row.addWidget(self.location_label, 1)
        row.addWidget(self.pick)
        row.addWidget(self.sample)
        add.addLayout(row)
        lay.addWidget(self.add_box)

        self.remove_box = QGroupBox("Remove: inpaint")
        form = QFormLayout(self.remove_box)
        self.method = QComboBox()
        self.method.addItems(INPAINT_METHODS)
        self.axis = QSpinBox()
        self.axis.setRange(0, 2)
        self.dilate = QSpinBox()
        self.dilate.setRange(0, 50)
        self.texture = QCheckBox("texture noise")
        self.noise_seed = QSpinBox()
        self.noise_seed.setRange(0, 2**31 - 1)
        form.addRow("Method", self.method)
        form.addRow("Slice axis", self.axis)
        form.addRow("Dilate (vox)", self.dilate)
        form.addRow(self.texture)
        form.addRow("Noise seed", self.noise_seed)
        lay.addWidget(self.remove_box)

        # The verdict (fit / refusal) wraps over up to three lines of a fixed height, so
        # a new text never changes the dock's layout; it is only set when it changes.
        # The preview time has its own fixed-size, non-wrapping label, updated at most
        # TIMING_HZ times a second: a slider drag repaints only that label.
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.status.setFixedHeight(3 * self.status.fontMetrics().lineSpacing() + 4)
        lay.addWidget(self.status)
        row = QHBoxLayout()
        self.apply_btn = QPushButton("Apply")
        self.undo_btn = QPushButton("Undo")
        self.reset_btn = QPushButton("Reset")
        self.clear_btn = QPushButton("Clear preview")
        for b in (self.apply_btn, self.undo_btn, self.reset_btn, self.clear_btn):
            row.addWidget(b)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.history = QLabel("no change applied")
        self.timing = QLabel("")
        self.timing.setWordWrap(False)
        self.timing.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        metrics = self.timing.fontMetrics()
        self.timing.setFixedSize(metrics.horizontalAdvance("preview 00000 ms") + 6,
                                 metrics.height() + 4)
        self.timing.setToolTip("time to compute and show the last preview")
        row.addWidget(self.history, 1)
        row.addWidget(self.timing)
        lay.addLayout(row)
        lay.addStretch(1)
        self._timing_shown_at = -1.0
        self._timing_timer = QTimer(self)
        self._timing_timer.setSingleShot(True)
        self._timing_timer.timeout.connect(self._show_timing)

    def _connect(self) -> None:
        st = self.state
        self.grid.params_edited.connect(self.on_params_edited)
        self.grid.blend_edited.connect(self.on_blend_edited)
        self.grid.options_edited.connect(self.on_options_edited)
        self.add_mode.toggled.connect(self.on_mode)
        self.live.toggled.connect(self.schedule)
        self.randomise.clicked.connect(self.on_randomise)
        self.identity.clicked.connect(self.on_identity)
        self.seed.valueChanged.connect(self.draw)
        self.pick.toggled.connect(
            lambda on: st.set_click_mode("location" if on else "select"))
        self.sample.clicked.connect(self.sample_location)
        for w in (self.axis, self.dilate, self.noise_seed):
            w.valueChanged.connect(self.on_inpaint_edited)
        self.method.currentTextChanged.connect(self.on_inpaint_edited)
        self.texture.toggled.connect(self.on_inpaint_edited)
        self.apply_btn.clicked.connect(self.apply)
        self.undo_btn.clicked.connect(self.undo)
        self.reset_btn.clicked.connect(self.reset)
        self.clear_btn.clicked.connect(self.clear)
        self.listen(st.case_changed, self.on_case)
        self.listen(st.selection_changed, self.on_selection)
        self.listen(st.location_changed, self.on_location)
        self.listen(st.click_mode_changed, self.on_click_mode)
        self.listen(st.recipe_changed, self.show_recipe)
        self.listen(st.history_changed, self.show_history)
        has_lesion = lambda: st.selected_lesion is not None  # noqa: E731
        self.enable_when(has_lesion, self.randomise, self.identity, self.sample, self.pick)
        self.enable_when(lambda: st.has_preview, self.apply_btn, self.clear_btn)
        self.enable_when(lambda: bool(st.undo_stack), self.undo_btn, self.reset_btn)
        self.on_mode()

    # -- reacting to the state ---------------------------------------------------------------
    def on_case(self) -> None:
        """A new case: match the number of axes; forget the heatmap sampler."""
        case = self.state.case
        ndim = case.ndim if case is not None else 3
        if self.params.ndim != ndim:
            self.params = LesionParams.identity(ndim)
        self.grid.set_ndim(ndim)
        self.grid.set_params(self.params, self.state.recipe.populate.blend_sigma)
        self.on_selection()
        self.show_history()

    def on_selection(self, *_):
        """Show the selected lesion; preview anew when it is another lesion."""
        lesion = self.state.selected_lesion
        key = None if lesion is None else (lesion.label, lesion.seed)
        if lesion is None:
            self.lesion_info.setText("select a lesion in the Case dock or click one")
        else:
            self.lesion_info.setText(
                f"lesion {lesion.label}:{lesion.component}: {lesion.voxels} voxels, "
                f"{lesion.volume_ml:.3f} ml")
        if key != self._lesion_key:
            self._lesion_key = key
            self.schedule()

    def on_location(self, location) -> None:
        """Show the location; preview there in Add mode."""
        self.location_label.setText(f"location: {location}" if location else "location: none")
        if self.add_mode.isChecked():
            self.schedule()

    def on_click_mode(self, mode: str) -> None:
        """Keep the Pick button in step with the state's click mode."""
        self.pick.blockSignals(True)
        self.pick.setChecked(mode == "location")
        self.pick.blockSignals(False)

    def show_recipe(self) -> None:
        """Show the recipe's batch ranges, blend sigma and inpaint options."""
        r = self.state.recipe
        self.grid.set_options(r.populate)
        self.grid.set_blend_sigma(r.populate.blend_sigma)
        for w, value in ((self.axis, r.inpaint.axis), (self.dilate, r.inpaint.dilate)):
            w.blockSignals(True)
            w.setValue(int(value))
            w.blockSignals(False)
        self.method.blockSignals(True)
        self.method.setCurrentText(r.inpaint.method)
        self.method.blockSignals(False)
        self.texture.blockSignals(True)
        self.texture.setChecked(bool(r.inpaint.texture))
        self.texture.blockSignals(False)
        self.axis.setEnabled(r.inpaint.method == "slice-axis")

    def show_history(self) -> None:
        """How many changes can be undone."""
        n = len(self.state.undo_stack)
        self.history.setText(f"{n} change(s) applied" if n else "no change applied")

    # -- user edits ----------------------------------------------------------------------------
    def on_params_edited(self) -> None:
        """An exact value changed: new params, then a preview."""
        self.params = self.grid.params(self.params)
        self.schedule()

    def on_blend_edited(self, sigma: float) -> None:
        """The blend slider moved: ``recipe.populate.blend_sigma``, then a preview."""
        if sigma != self.state.recipe.populate.blend_sigma:
            self._update_recipe("populate", blend_sigma=sigma)
        self.schedule()

    def on_options_edited(self, fields: dict) -> None:
        """A batch probability or range changed: update ``recipe.populate``."""
        self._update_recipe("populate", **fields)

    def on_inpaint_edited(self, *_):
        """An inpaint option changed: update ``recipe.inpaint``, then a preview."""
        self._update_recipe("inpaint", method=self.method.currentText(),
                            axis=self.axis.value(), dilate=self.dilate.value(),
                            texture=self.texture.isChecked())
        self.axis.setEnabled(self.method.currentText() == "slice-axis")
        if self.remove_mode.isChecked():
            self.schedule()

    def _update_recipe(self, section: str, **fields) -> None:
        try:
            self.state.update_recipe(section, **fields)
        except StateError as exc:
            notify(f"Augment: {exc}", "warning")
            self.show_recipe()

    def on_mode(self, *_):
        """Switch between Add and Remove."""
        add = self.add_mode.isChecked()
        self.add_box.setVisible(add)
        self.remove_box.setVisible(not add)
        if not add and self.state.click_mode == "location":
            self.state.set_click_mode("select")
        self.schedule()

    def on_randomise(self) -> None:
        """Draw the next parameter set (the seed box shows the seed used)."""
        self.seed.setValue(self.seed.value() + 1)  # -> draw()

    def draw(self, seed: int | None = None) -> None:
        """Draw parameters with ``sample_params`` from ``default_rng(seed)``."""
        seed = self.seed.value() if seed is None else int(seed)
        ndim = self.state.case.ndim if self.state.case is not None else 3
        rng = np.random.default_rng(seed)
        self.params = sample_params(rng, self.state.recipe.populate, ndim)
        self.grid.set_params(self.params)
        self.schedule()

    def on_identity(self) -> None:
        """Back to the unchanged lesion."""
        self.params = LesionParams.identity(self.params.ndim)
        self.grid.set_params(self.params)
        self.schedule()

    def sample_location(self) -> tuple | None:
        """Sample a location from the likelihood map (uniform over the allowed region
        without one), retrying like the batch engine until the lesion fits.

        Returns
        -------
        tuple or None
            The location set, or None.
        """
        st = self.state
        entry = st.selected_entry()
        if entry is None:
            notify("Augment: select a lesion first", "warning")
            return None
        st.clear_preview()
        ctx, case = st.context, st.case
        self._draws += 1
        rng = np.random.default_rng([self.seed.value(), self._draws])
        try:
            sampler = location_sampler(case, st.likelihood, ctx)
        except LikelihoodError as exc:
            notify(f"Augment: {exc}", "warning")
            return None
        prep = prepare_lesion(entry, self.params, ctx)
        chosen, reason, _ = find_location(case, prep, sampler, ctx, rng,
                                          st.recipe.populate.max_tries)
        if chosen is None:
            notify(f"Augment: no location where the batch engine would accept this lesion "
                   f"in {st.recipe.populate.max_tries} draws (last: {reason})", "warning")
            return None
        st.set_location(chosen)
        return chosen

    # -- preview ----------------------------------------------------------------------------------
    def schedule(self, *_):
        """Recompute the preview at the next event-loop turn (coalesces bursts)."""
        self._timer.start()

    def update_preview(self) -> None:
        """Compute the preview with the engine and show it (or clear it)."""
        st = self.state
        t0 = time.perf_counter()
        lesion = st.selected_lesion
        if not self.live.isChecked() or lesion is None or st.case is None:
            st.clear_preview()
            self.set_status("" if lesion is not None or st.case is None
                                else "no lesion selected")
            return
        add = self.add_mode.isChecked()
        if add and st.location is None:
            st.clear_preview()
            self.set_status("pick a location (Pick location, then click the canvas) or "
                                "sample one from the heatmap")
            return
        self.reason = ""

        def make(case, ctx):
            if not add:
                return inpaint_edit(case, lesion, ctx, self.noise_seed.value())
            prep = prepare_lesion(st.selected_entry(), self.params, ctx)
            self.reason = check_location(case, prep, st.location, ctx)
            return place_edit(case, prep, st.location, ctx)

        try:
            st.preview(make)
        except Exception as exc:  # noqa: BLE001 - a QTimer slot: nothing may escape
            self.set_status(f"no preview: {exc}")
            if not isinstance(exc, (ValueError, RuntimeError)):
                notify(f"Augment: no preview: {type(exc).__name__}: {exc}", "error")
            return
        self.last_preview_ms = (time.perf_counter() - t0) * 1000
        if add:
            verdict = ("the batch engine would accept this location" if not self.reason
                       else f"the batch engine would refuse this location: {self.reason}")
        else:
            verdict = f"lesion removed ({st.recipe.inpaint.method})"
        self.set_status(verdict)
        self._timing_due()

    def set_status(self, text: str) -> None:
        """Show ``text`` in the status line (nothing happens when it is already shown)."""
        if self.status.text() != text:
            self.status.setText(text)

    def _timing_due(self) -> None:
        """Show the preview time now, or when the rate limit allows (latest value)."""
        if self._timing_timer.isActive():
            return
        wait_ms = 1000 / TIMING_HZ - (time.perf_counter() - self._timing_shown_at) * 1000
        if wait_ms <= 0:
            self._show_timing()
        else:
            self._timing_timer.start(int(wait_ms) + 1)

    def _show_timing(self) -> None:
        self._timing_shown_at = time.perf_counter()
        self.timing.setText(f"preview {self.last_preview_ms:.0f} ms")

    # -- commit -------------------------------------------------------------------------------------
    def apply(self) -> bool:
        """Commit the preview (it becomes the case's data; Undo can take it back)."""
        if not self.state.has_preview:
            notify("Augment: nothing to apply (no preview shown)", "info")
            return False
        was_refused = self.add_mode.isChecked() and self.reason
        self.state.commit_preview()
        if was_refused:
            notify(f"Augment: applied, although the batch engine would refuse it "
                   f"({self.reason})", "info")
        self.set_status("applied")
        return True

    def undo(self) -> bool:
        """Undo the last applied change."""
        done = self.state.undo()
        self.set_status("undone" if done else "nothing to undo")
        return done

    def reset(self) -> int:
        """Undo every applied change and clear the preview."""
        n = self.state.reset()
        self.set_status(f"reset: {n} change(s) undone")
        return n

    def clear(self) -> None:
        """Remove the preview (the data goes back to its real state)."""
        self.state.clear_preview()
        self.set_status("preview cleared")
