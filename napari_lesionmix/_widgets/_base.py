"""What every LesionMix dock shares: layer pickers, enable logic, workers, notifications.

A dock subclasses :class:`LesionMixDock`, builds its children and connects callbacks;
the logic lives in :mod:`napari_lesionmix.core` and in
:class:`~napari_lesionmix._widgets._state.LesionMixState` (``self.state``).

- :class:`LayerCombo` and :class:`LayerChecklist` follow ``viewer.layers`` (insert,
  remove, rename) and skip the plugin's own display layers.
- :meth:`LesionMixDock.enable_when` keeps widgets enabled only while a predicate holds,
  re-checked whenever the shared state changes.
- :meth:`LesionMixDock.run_worker` runs an engine call in a thread worker with a napari
  progress bar; errors become napari notifications (never a traceback in a terminal).
  The call gets a ``progress(done, total)`` callback that is safe to call from the
  worker thread and raises :class:`Cancelled` once the worker was asked to quit.
  Workers are asked to quit when the dock closes and when the viewer's window closes
  (a dock's ``closeEvent`` is not called then); their GUI-thread callbacks are silent
  once the widgets are deleted.
- Exceptions in state-signal slots (:meth:`LesionMixDock.listen`) become napari error
  notifications.
- :func:`notify` shows a napari notification.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from napari.layers import Image, Labels
from qtpy.QtCore import QEvent, QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from ._state import StateError, get_state, is_helper_layer

__all__ = ["Cancelled", "LayerChecklist", "LayerCombo", "LesionMixDock", "notify"]


class Cancelled(Exception):
    """Raised inside a worker's progress callback once the worker was asked to quit."""


def notify(message: str, level: str = "warning") -> None:
    """Show a napari notification.

    Parameters
    ----------
    message : str
    level : {"info", "warning", "error"}
    """
    from napari.utils import notifications

    show = {"info": notifications.show_info, "warning": notifications.show_warning,
            "error": notifications.show_error}[level]
    show(message)


# ---------------------------------------------------------------------- layer pickers
class _LayerFollower:
    """Mixin: refill from ``viewer.layers`` when layers are added, removed or renamed."""

    kinds: tuple = (Image,)

    def _follow(self, viewer: Any) -> None:
        self._viewer_ref = weakref.ref(viewer)
        me = weakref.ref(self)

        def refill(event=None):
            widget = me()
            if widget is not None:
                try:
                    widget.refill()
                except RuntimeError:  # the Qt object is gone
                    pass

        def on_inserted(event):
            event.value.events.name.connect(refill)
            refill()

        for layer in viewer.layers:
            layer.events.name.connect(refill)
        viewer.layers.events.inserted.connect(on_inserted)
        viewer.layers.events.removed.connect(refill)
        viewer.layers.events.reordered.connect(refill)
        self._refill_callbacks = (refill, on_inserted)

        def disconnect():
            for emitter, cb in ((viewer.layers.events.inserted, on_inserted),
                                (viewer.layers.events.removed, refill),
                                (viewer.layers.events.reordered, refill)):
                try:
                    emitter.disconnect(cb)
                except (TypeError, ValueError, RuntimeError):
                    pass

        self.destroyed.connect(lambda *_: disconnect())

    def candidates(self) -> list:
        """The viewer's layers of the accepted kinds, helper layers excluded."""
        viewer = self._viewer_ref()
        if viewer is None:
            return []
        return [lay for lay in viewer.layers
                if isinstance(lay, self.kinds) and not is_helper_layer(lay)]


class LayerCombo(_LayerFollower, QComboBox):
    """A combo box of the viewer's layers of some kinds.

    Parameters
    ----------
    viewer : napari.Viewer
    kinds : tuple of layer classes
    allow_none : bool
        Offer a "(none)" entry first.
    """

    changed = Signal()

    def __init__(self, viewer: Any, kinds: tuple = (Image,), allow_none: bool = False,
                 parent: QWidget | None = None):
        QComboBox.__init__(self, parent)
        self.kinds = kinds
        self.allow_none = allow_none
        self._layers: list = []
        self._follow(viewer)
        self.refill()
        self.currentIndexChanged.connect(lambda *_: self.changed.emit())

    def refill(self) -> None:
        """Rebuild the entries, keeping the current layer when it still exists."""
        current = self.layer()
        self._layers = ([None] if self.allow_none else []) + self.candidates()
        self.blockSignals(True)
        self.clear()
        for lay in self._layers:
            self.addItem("(none)" if lay is None else lay.name)
        if current in self._layers:
            self.setCurrentIndex(self._layers.index(current))
        self.blockSignals(False)
        if self.layer() is not current:
            self.changed.emit()

    def layer(self):
        """The chosen layer, or None."""
        i = self.currentIndex()
        return self._layers[i] if 0 <= i < len(self._layers) else None

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (must be one of the entries)."""
        self.setCurrentIndex(self._layers.index(layer))


class LayerChecklist(_LayerFollower, QListWidget):
    """A checkable list of the viewer's Image layers (one per channel).

    Parameters
    ----------
    viewer : napari.Viewer
    kinds : tuple of layer classes
    """

    changed = Signal()

    def __init__(self, viewer: Any, kinds: tuple = (Image,), parent: QWidget | None = None):
        QListWidget.__init__(self, parent)
        self.kinds = kinds
        self._layers: list = []
        self.setMaximumHeight(90)
        self._follow(viewer)
        self.refill()
        self.itemChanged.connect(lambda *_: self.changed.emit())

    def refill(self) -> None:
        """Rebuild the list; a layer stays checked while it exists. The first layer is
        checked when nothing is."""
        checked = self.layers()
        self._layers = self.candidates()
        self.blockSignals(True)
        self.clear()
        for lay in self._layers:
            item = QListWidgetItem(lay.name, self)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = lay in checked or (not checked and lay is self._layers[0])
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        if self.layers() != checked:
            self.changed.emit()

    def layers(self) -> list:
        """The checked layers, in viewer order."""
        return [lay for i, lay in enumerate(self._layers)
                if self.item(i) is not None
                and self.item(i).checkState() == Qt.CheckState.Checked]

    def set_layers(self, layers) -> None:
        """Check exactly ``layers``."""
        self.blockSignals(True)
        for i, lay in enumerate(self._layers):
            on = any(lay is other for other in layers)
            self.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        self.changed.emit()


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
    state : LesionMixState
        Shared by every dock of the viewer.
    workers : list
        Workers started by :meth:`run_worker` that have not finished yet.
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.workers: list = []
        self._enable_rules: list = []
        self._connections: list = []
        self.setLayout(QVBoxLayout())
        self.layout().setContentsMargins(4, 4, 4, 4)
        for sig in (self.state.case_changed, self.state.lesions_changed,
                    self.state.selection_changed, self.state.likelihood_changed,
                    self.state.preview_changed, self.state.history_changed,
                    self.state.location_changed):
            self.listen(sig, self.update_enabled)
        self.destroyed.connect(_disconnector(self._connections))
        # quit the workers when the dock or the viewer's window goes away
        workers = self.workers
        self.destroyed.connect(lambda *_: _quit_all(workers))
        self._watched_window = None  # the main window watched by _watch_window

    # -- signals ---------------------------------------------------------------------
    def listen(self, signal: Any, callback: Callable) -> None:
        """Connect a state (psygnal) signal; disconnected when the dock is destroyed.

        The callback gets no arguments beyond what it accepts (psygnal's rule).
        """
        me = weakref.ref(self)
        name = getattr(callback, "__name__", None)
        is_method = getattr(callback, "__self__", None) is self

        def relay(*args):
            dock = me()
            if dock is None:
                return
            try:
                fn = getattr(dock, name) if is_method else callback
                _call_flexible(fn, args)
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
        """Re-check every :meth:`enable_when` rule."""
        for predicate, widgets in self._enable_rules:
            on = bool(predicate())
            for w in widgets:
                w.setEnabled(on)

    # -- guarded calls -------------------------------------------------------------------
    def guard(self, fn: Callable, *args, what: str = "", **kwargs) -> Any:
        """Call ``fn``; a :class:`StateError` or engine error becomes a notification.

        Returns
        -------
        Any
            ``fn``'s result, or None after an error.
        """
        try:
            return fn(*args, **kwargs)
        except (StateError, ValueError, OSError) as exc:
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
        if widget is not None and widget is not self._watched_window:
            self._watched_window = widget
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


_ = Labels  # re-exported kind for pickers: LayerCombo(viewer, (Labels,))
