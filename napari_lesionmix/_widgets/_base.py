"""What every LesionMix dock shares: the session, the idle banner, enable logic, workers.

A dock subclasses :class:`LesionMixDock`, builds its children and connects them to the
viewer's edit session (``self.state``, an :class:`~napari_lesionmix.session.EditSession`)
and its chosen layers (``self.layers``, :class:`~._widgets.layer_link.LayerLink`); the
logic lives in the engine and the session.

- The banner at the top says why the dock is idle (no case, and why; no lesion selected;
  ...): :meth:`LesionMixDock.idle_reason`.
- :meth:`LesionMixDock.enable_when` keeps widgets enabled only while a predicate holds,
  re-checked whenever the session changes.
- :meth:`LesionMixDock.run_worker` runs an engine call in a thread worker with a napari
  progress bar; errors become napari notifications (never a traceback in a terminal).
  The call gets a ``progress(done, total)`` callback that is safe to call from the
  worker thread and raises :class:`Cancelled` once the worker was asked to quit.
  Workers are asked to quit when the dock closes and when the viewer's window closes
  (a dock's ``closeEvent`` is not called then); their GUI-thread callbacks are silent
  once the widgets are deleted.
- Exceptions in session-signal slots (:meth:`LesionMixDock.listen`) become napari error
  notifications.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, QObject, QTimer, Signal
from qtpy.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget
from superqt import QLargeIntSpinBox

from ..core.recipe import BOUNDS
from ..session.errors import SessionError
from .viewer_link import get_link, notify

__all__ = ["Cancelled", "LesionMixDock", "seed_box"]

IDLE_STYLE = ("QLabel { background: #4a3b1a; color: #ffd166; border-radius: 3px; "
              "padding: 4px; }")


def seed_box() -> QLargeIntSpinBox:
    """A box for a seed: any 64-bit value the recipe takes (``BOUNDS["seed"]``)."""
    box = QLargeIntSpinBox()
    box.setRange(*BOUNDS["seed"])
    # typed (19 digits) or stepped with the wheel and the arrow keys; no buttons, so the
    # widest seed fits a narrow panel
    box.setButtonSymbols(QLargeIntSpinBox.ButtonSymbols.NoButtons)
    box.setToolTip(f"seed, 0 … {BOUNDS['seed'][1]}")
    return box


class Cancelled(Exception):
    """Raised inside a worker's progress callback once the worker was asked to quit."""


# ---------------------------------------------------------------------- worker relay
class _Relay(QObject):
    """Carries progress from a worker thread to the GUI thread (queued signal)."""

    progressed = Signal(int, int)


def _is_deleted_error(exc: BaseException) -> bool:
    """A RuntimeError of a Qt object whose C++ side was deleted (its window closed)."""
    return isinstance(exc, RuntimeError) and "deleted" in str(exc)


def _gui_safe(fn: Callable) -> Callable:
    """``fn`` for a worker's GUI-thread callbacks: silent once its widgets are deleted
    (the viewer window was closed while the worker ran)."""

    def call(*args):
        try:
            return fn(*args)
        except RuntimeError as exc:
            if not _is_deleted_error(exc):
                raise
        return None

    return call


def _quit_all(workers: list) -> None:
    """Ask every worker of a list to quit (each stops at its next progress call)."""
    for worker in list(workers):
        try:
            worker.quit()
        except RuntimeError:  # its signals object is already gone
            pass


class _WindowWatcher(QObject):
    """Quits a dock's workers when the viewer's main window closes.

    A dock's ``closeEvent`` is not called when the viewer closes, so the events of the
    main window that holds the dock are watched: a non-spontaneous Close
    (``viewer.close()``, quitting napari), or a spontaneous one (the title-bar button)
    that was accepted (the window hides). The window's ``destroyed`` signal is a last
    resort.
    """

    def __init__(self, window: QObject, workers: list, parent: QObject):
        super().__init__(parent)
        self._workers = workers
        self._pending = False
        window.installEventFilter(self)
        workers_ref = workers
        window.destroyed.connect(lambda *_: _quit_all(workers_ref))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind == QEvent.Type.Close:
            if not event.spontaneous():
                _quit_all(self._workers)
            else:  # the window may still refuse (a confirmation dialog): wait for Hide
                self._pending = True
                QTimer.singleShot(0, self._forget)
        elif kind == QEvent.Type.Hide and self._pending:
            self._pending = False
            _quit_all(self._workers)
        return False

    def _forget(self) -> None:
        self._pending = False


# ---------------------------------------------------------------------- the base dock
class LesionMixDock(QWidget):
    """Base class of the LesionMix docks.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari when the dock is opened from the Plugins menu.

    Attributes
    ----------
    viewer : napari.Viewer
    link : ViewerLink
        Shared by every dock of the viewer.
    state : EditSession
        The viewer's edit session (``link.session``).
    layers : LayerLink
        The chosen layers (``link.layers``).
    idle : QLabel
        The banner that says why the dock is idle (hidden while it is not).
    workers : list
        Workers started by :meth:`run_worker` that have not finished yet.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.link = get_link(napari_viewer)
        self.state = self.link.session
        self.layers = self.link.layers
        self.workers: list = []
        self._enable_rules: list = []
        self._connections: list = []
        self.setLayout(QVBoxLayout())
        self.layout().setContentsMargins(4, 4, 4, 4)
        self.idle = QLabel()
        self.idle.setWordWrap(True)
        self.idle.setStyleSheet(IDLE_STYLE)
        self.layout().addWidget(self.idle)
        for sig in (self.state.case_changed, self.state.lesions_changed,
                    self.state.selection_changed, self.state.likelihood_changed,
                    self.state.preview_changed, self.state.history_changed,
                    self.state.location_changed, self.state.recipe_changed):
            self.listen(sig, self.update_enabled)
        self.destroyed.connect(_disconnector(self._connections))
        # quit the workers when the dock or the viewer's window goes away
        workers = self.workers
        self.destroyed.connect(lambda *_: _quit_all(workers))
        # the main window watched by _watch_window (weakly: a dock held by someone must not
        # keep its closed window, and so its viewer, alive)
        self._watched_window = lambda: None

    # -- signals ---------------------------------------------------------------------
    def listen(self, signal: Any, callback: Callable) -> None:
        """Connect a session (psygnal) signal; disconnected when the dock is destroyed.

        The callback gets no arguments beyond what it accepts (psygnal's rule). A method
        of the dock is held by name only: the session outlives its docks and must not
        keep them (and their viewer) alive.
        """
        me = weakref.ref(self)
        if getattr(callback, "__self__", None) is self:
            name = callback.__name__

            def target(dock):
                return getattr(dock, name)
        else:
            def target(dock, fn=callback):
                return fn

        def relay(*args):
            dock = me()
            if dock is None:
                return
            try:
                _call_flexible(target(dock), args)
            except Exception as exc:  # noqa: BLE001 - a slot: errors become notifications
                if _is_deleted_error(exc):  # the Qt object was deleted meanwhile
                    return
                notify(f"LesionMix: {type(exc).__name__}: {exc}", "error")

        signal.connect(relay)
        self._connections.append((signal, relay))

    # -- enable logic ------------------------------------------------------------------
    def enable_when(self, predicate: Callable[[], bool], *widgets: QWidget) -> None:
        """Keep ``widgets`` enabled only while ``predicate()`` is true."""
        self._enable_rules.append((predicate, widgets))
        on = bool(predicate())
        for w in widgets:
            w.setEnabled(on)

    def update_enabled(self) -> None:
        """Re-check every :meth:`enable_when` rule and the idle banner."""
        for predicate, widgets in self._enable_rules:
            on = bool(predicate())
            for w in widgets:
                w.setEnabled(on)
        why = self.idle_reason()
        self.idle.setText(why)
        self.idle.setVisible(bool(why))

    def idle_reason(self) -> str:
        """Why the dock cannot act now ("" when it can): by default, why there is no case."""
        return self.state.why_idle()

    # -- guarded calls -------------------------------------------------------------------
    def guard(self, fn: Callable, *args, what: str = "", **kwargs) -> Any:
        """Call ``fn``; a :class:`SessionError` or engine error becomes a notification.

        Returns
        -------
        Any
            ``fn``'s result, or None after an error.
        """
        try:
            return fn(*args, **kwargs)
        except (SessionError, ValueError, OSError) as exc:
            notify(f"{what}: {exc}" if what else str(exc), "warning")
            return None

    def run_worker(self, fn: Callable, *args, desc: str = "LesionMix",
                   on_done: Callable | None = None, on_error: Callable | None = None,
                   **kwargs) -> Any:
        """Run ``fn(*args, progress=callback, **kwargs)`` in a thread worker.

        A napari progress bar shows ``desc`` and follows the callback's
        ``(done, total)``; quitting the worker makes the callback raise
        :class:`Cancelled`, which ends the call quietly. An exception becomes a napari
        error notification ``"<desc>: <message>"``.

        Parameters
        ----------
        fn : callable
            The engine call; it must accept a ``progress`` keyword.
        desc : str
            Progress bar text and notification prefix.
        on_done : callable(result), optional
            Called in the GUI thread with the result.
        on_error : callable(exc), optional
            Called in the GUI thread after the notification.

        Returns
        -------
        superqt.utils.FunctionWorker
            Already started; ``worker.quit()`` cancels, ``worker.finished`` fires last.
        """
        from napari.utils import progress as napari_progress
        from superqt.utils import create_worker

        relay = _Relay()
        pbar = napari_progress(total=0, desc=desc)
        holder: dict = {}

        @_gui_safe
        def on_progress(done: int, total: int) -> None:
            if pbar.total != total:
                pbar.total = total
            pbar.n = done
            pbar.refresh()

        relay.progressed.connect(on_progress)

        def callback(done: int, total: int) -> None:
            worker = holder.get("worker")
            if worker is not None and worker.abort_requested:
                raise Cancelled()
            try:
                relay.progressed.emit(int(done), int(total))
            except RuntimeError as exc:  # the relay is gone: nobody is watching any more
                raise Cancelled() from exc

        @_gui_safe
        def errored(exc: Exception) -> None:
            if isinstance(exc, Cancelled):
                notify(f"{desc}: cancelled", "info")
                return
            notify(f"{desc}: {exc}", "error")
            if on_error is not None:
                on_error(exc)

        @_gui_safe
        def returned(result: Any) -> None:
            if on_done is not None:
                on_done(result)

        worker = create_worker(fn, *args, progress=callback, _start_thread=False,
                               _connect={"errored": errored, "returned": returned}, **kwargs)
        holder["worker"] = worker
        self.workers.append(worker)

        workers = self.workers

        def finished() -> None:
            if worker in workers:
                workers.remove(worker)
            with _suppress_deleted():
                pbar.close()
            with _suppress_deleted():
                relay.deleteLater()

        worker.finished.connect(finished)
        self._watch_window()
        worker.start()
        return worker

    def _watch_window(self) -> None:
        """Quit the workers when the main window holding the dock closes (found through
        the parent chain: floating docks are still children of the main window)."""
        widget = self.parentWidget()
        while widget is not None and not isinstance(widget, QMainWindow):
            widget = widget.parentWidget()
        if widget is not None and widget is not self._watched_window():
            self._watched_window = weakref.ref(widget)
            _WindowWatcher(widget, self.workers, self)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        _quit_all(self.workers)
        super().closeEvent(event)


class _suppress_deleted:  # noqa: N801 - used as a context manager
    """Ignore the RuntimeError of a deleted Qt object (and only that)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        return exc is not None and _is_deleted_error(exc)


def _call_flexible(fn: Callable, args: tuple) -> None:
    """Call ``fn`` with as many of ``args`` as it accepts (0 or all)."""
    import inspect

    try:
        n = len([p for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        n = len(args)
    fn(*args[:n])


def _disconnector(connections: list) -> Callable:
    def disconnect(*_):
        for signal, relay in connections:
            try:
                signal.disconnect(relay)
            except (ValueError, RuntimeError):
                pass
        connections.clear()

    return disconnect

