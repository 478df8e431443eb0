"""The "Augment" dock: tune one lesion by hand with a live preview; Apply, Undo, Reset.

Two modes on the selected lesion:

- **Add** (populate): the lesion, augmented with this lesion's exact values, centred at
  the location (a click on the canvas with "Pick location", or a draw from the heatmap
  where the batch engine would accept it); the verdict says whether the batch engine
  would accept the location, and values the batch would never draw are flagged.
- **Remove** (inpaint): the inpainting of the selected lesion with ``recipe.inpaint``.

Every change recomputes the preview once per event-loop turn
(:mod:`napari_lesionmix.session.augment`); the preview is drawn in its own layers and
the user's layers change only on Apply. Keyboard: Ctrl+Enter applies, Ctrl+Z undoes,
N / Shift+N select the next / previous lesion, H turns the preview on and off.
"""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QTimer
from superqt.utils import signals_blocked

from ..core.transforms import LesionParams, sample_params
from ..session.augment import outside_batch, preview_add, preview_remove, sample_location
from ..session.errors import SessionError
from ._base import LesionMixDock
from .augment_form import SHORTCUTS, AugmentLayout
from .shortcuts import window_shortcuts
from .viewer_link import notify

__all__ = ["AugmentDock", "SHORTCUTS"]

TIMING_HZ = 4  # at most this many updates a second of the preview-time label


class AugmentDock(AugmentLayout, LesionMixDock):
    """Add (populate) or remove (inpaint) the selected lesion with a live preview.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    params : LesionParams
        The exact values the preview uses (seeds included).
    last_preview_ms : float
        Wall time of the last preview computation, in ms.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        self.params = LesionParams.identity(3)
        self.last_preview_ms = 0.0
        self._lesion_key = None
        self._draws = 0
        self._shortcut_owner = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.update_preview)
        self._build()
        self._connect()
        self.show_recipe()
        self.on_case()
        self.update_enabled()

    def _connect(self) -> None:
        st = self.state
        self.grid.params_edited.connect(self.on_params_edited)
        self.grid.blend_edited.connect(self.on_blend_edited)
        self.ranges.options_edited.connect(self.on_options_edited)
        self.add_mode.toggled.connect(self.on_mode)
        self.live.toggled.connect(self.on_live)
        self.randomise.clicked.connect(self.on_randomise)
        self.identity.clicked.connect(self.on_identity)
        self.seed.valueChanged.connect(lambda *_: self.draw())
        self.pick.toggled.connect(lambda on: st.set_click_mode("location" if on else "select"))
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

    # -- keyboard ---------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Shown on its own (not in the panel): the shortcuts live on the dock."""
        super().showEvent(event)
        if self._shortcut_owner is None:
            self.install_shortcuts(self)

    def install_shortcuts(self, owner) -> None:
        """Make the keys of :data:`SHORTCUTS` work anywhere in the window that shows
        ``owner`` (the panel, or this dock), while ``owner`` is shown; once."""
        if self._shortcut_owner is not None:
            return
        self._shortcut_owner = owner
        actions = {"apply": self.apply_btn.click, "undo": self.undo_key,
                   "next lesion": lambda: self.state.select_step(1),
                   "previous lesion": lambda: self.state.select_step(-1),
                   "preview on / off": self.live.toggle}
        self.shortcuts = window_shortcuts(owner, {key: actions[what]
                                                  for key, what in SHORTCUTS.items()},
                                          on_error=lambda exc: notify(f"Augment: {exc}",
                                                                      "info"))

    def undo_key(self) -> None:
        """Ctrl+Z: undo the last Apply; with none, the active label layer's own undo."""
        if self.state.undo_stack:
            self.undo_btn.click()
            return
        active = self.viewer.layers.selection.active
        if active is not None and hasattr(active, "undo") and hasattr(active, "paint"):
            active.undo()

    def idle_reason(self) -> str:
        """No case, or no lesion selected."""
        why = self.state.why_idle()
        if not why and self.state.selected_lesion is None:
            why = ("No lesion selected: choose one in the Case tab's table, click one on the "
                   "canvas, or press N.")
        return why

    # -- reacting to the session --------------------------------------------------------------
    def on_case(self) -> None:
        """A new case: match the number of axes."""
        case = self.state.case
        ndim = case.ndim if case is not None else 3
        if self.params.ndim != ndim:
            self.params = LesionParams.identity(ndim)
        self.grid.set_ndim(ndim)
        self.grid.set_params(self.params)
        self.on_selection()
        self.show_history()

    def on_selection(self, *_):
        """Show the selected lesion; preview anew when it is another lesion."""
        lesion = self.state.selected_lesion
        key = None if lesion is None else (lesion.label, lesion.seed)
        self.lesion_info.setText("" if lesion is None else (
            f"lesion {self.state.selected + 1} of {len(self.state.lesions)} (class "
            f"{lesion.label}): {lesion.voxels} voxels, {lesion.volume_ml:.3f} ml"))
        if key != self._lesion_key:
            self._lesion_key = key
            self.schedule()

    def on_location(self, location) -> None:
        """Show the location (mm); preview there in Add mode."""
        case = self.state.case
        if location is None or case is None:
            self.location_label.setText("location: none")
        else:
            xyz = case.geometry.index_to_physical(np.asarray(location, float))
            self.location_label.setText(
                "location: " + ", ".join(f"{v:.1f}" for v in xyz) + " mm (x, y, z)")
        if self.add_mode.isChecked():
            self.schedule()

    def on_click_mode(self, mode: str) -> None:
        """Keep the Pick button in step with the session's click mode."""
        with signals_blocked(self.pick):
            self.pick.setChecked(mode == "location")

    def show_recipe(self) -> None:
        """Show the recipe's batch ranges, blend sigma and inpaint options."""
        r = self.state.recipe
        self.ranges.set_options(r.populate)
        self.grid.widen(r.populate)
        self.grid.set_blend_sigma(r.populate.blend_sigma)
        for w, value in ((self.axis, r.inpaint.axis), (self.dilate, r.inpaint.dilate)):
            with signals_blocked(w):
                w.setValue(int(value))
        with signals_blocked(self.method):
            self.method.setCurrentText(r.inpaint.method)
        with signals_blocked(self.texture):
            self.texture.setChecked(bool(r.inpaint.texture))
        self.axis.setEnabled(r.inpaint.method == "slice-axis")
        self.grid.show_flags(outside_batch(self.params, r.populate))

    def show_history(self) -> None:
        """How many changes can be undone."""
        n = len(self.state.undo_stack)
        text = f"{n} change(s) applied" if n else "no change applied"
        if self.state.history_note:
            text += f" ({self.state.history_note})"
        self.history.setText(text)

    # -- user edits ----------------------------------------------------------------------------
    def on_params_edited(self) -> None:
        """An exact value changed: new params, then a preview."""
        self.params = self.grid.params(self.params)
        self.grid.show_flags(outside_batch(self.params, self.state.recipe.populate))
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
        except SessionError as exc:
            notify(f"Augment: {exc}", "warning")
            self.show_recipe()

    def on_mode(self, *_):
        """Switch between Add and Remove."""
        add = self.add_mode.isChecked()
        for w in (self.add_box, self.batch_box):
            w.setVisible(add)
        self.remove_box.setVisible(not add)
        if not add and self.state.click_mode == "location":
            self.state.set_click_mode("select")
        self.schedule()

    def on_live(self, on: bool) -> None:
        """Preview on: compute it; off: remove it."""
        self.schedule()

    def on_randomise(self) -> None:
        """Draw the next parameter set (the seed box shows the seed used)."""
        self.seed.setValue(self.seed.value() + 1)  # -> draw()

    def draw(self, seed: int | None = None) -> None:
        """Draw parameters with ``sample_params`` from ``default_rng(seed)``."""
        seed = self.seed.value() if seed is None else int(seed)
        ndim = self.state.case.ndim if self.state.case is not None else 3
        self.params = sample_params(np.random.default_rng(seed), self.state.recipe.populate,
                                    ndim)
        self.grid.set_params(self.params)
        self.grid.show_flags(outside_batch(self.params, self.state.recipe.populate))
        self.schedule()

    def on_identity(self) -> None:
        """Back to the unchanged lesion."""
        self.params = LesionParams.identity(self.params.ndim)
        self.grid.set_params(self.params)
        self.grid.show_flags(outside_batch(self.params, self.state.recipe.populate))
        self.schedule()

    def sample_location(self) -> tuple | None:
        """A location from the heatmap where the batch engine would accept the lesion
        (the views go there and mark it); None with a notification when there is none."""
        if self.state.selected_lesion is None:
            notify("Augment: select a lesion first", "warning")
            return None
        self._draws += 1
        rng = np.random.default_rng([self.seed.value(), self._draws])
        loc, why = sample_location(self.state, self.params, rng)
        if loc is None:
            notify(f"Augment: {why}", "warning")
        return loc

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
            self.set_status("preview off" if lesion is not None and not self.live.isChecked()
                            else "")
            return
        add = self.add_mode.isChecked()
        try:
            if add:
                reason = preview_add(st, self.params)
                verdict = ("the batch engine would accept this location" if not reason
                           else f"the batch engine would refuse this location: {reason}")
            else:
                preview_remove(st, self.noise_seed.value())
                verdict = f"lesion removed ({st.recipe.inpaint.method})"
        except SessionError as exc:
            self.set_status(str(exc).capitalize())
            return
        except Exception as exc:  # noqa: BLE001 - a QTimer slot: nothing may escape
            st.clear_preview()
            self.set_status(f"no preview: {exc}")
            if not isinstance(exc, (ValueError, RuntimeError)):
                notify(f"Augment: no preview: {type(exc).__name__}: {exc}", "error")
            return
        self.last_preview_ms = (time.perf_counter() - t0) * 1000
        self.set_status(verdict)
        self._timing_due()

    def set_status(self, text: str) -> None:
        """Show ``text`` in the status line (nothing happens when it is already shown)."""
        if self.status.text() != text:
            self.status.setText(text)

    def _timing_due(self) -> None:
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
        """Write the preview into the layers (Undo can take it back). The view stays on
        the edit and the location is cleared."""
        st = self.state
        if not st.has_preview:
            notify("Augment: nothing to apply (no preview shown)", "info")
            return False
        refused = st.preview_kind == "add" and st.preview_reason
        reason = st.preview_reason
        st.apply()
        self._timer.stop()  # the cleared location needs no preview now: "applied" stays
        self.set_status("applied" + (f", although the batch engine would refuse it "
                                     f"({reason})" if refused else ""))
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
        """Remove the preview (the layers never had it)."""
        self.state.clear_preview()
        self.set_status("preview cleared")
