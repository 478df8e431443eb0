"""Keyboard shortcuts that work anywhere in a napari window.

A :class:`QShortcut` in the window-wide context is handled before the canvas's own keys
(napari's layer key bindings), and not while a text box has the focus (typing "N" into a
box types it). It is parented to a widget of the plugin, so it lives while that widget
does and is active while it is shown.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence, QShortcut

from ..session.errors import SessionError

__all__ = ["window_shortcuts"]


def window_shortcuts(owner, keys: dict, on_error: Callable | None = None) -> list:
    """Make each key of ``keys`` (e.g. ``"Ctrl+Z"``) call its function.

    Parameters
    ----------
    owner : QWidget
        The shortcuts' parent.
    keys : dict
        Key sequence -> callable.
    on_error : callable(SessionError), optional
        Called with a refusal of the session (else it is ignored).

    Returns
    -------
    list of QShortcut
    """
    made = []
    for key, fn in keys.items():
        shortcut = QShortcut(QKeySequence(key), owner)
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)

        def call(fn=fn):
            try:
                fn()
            except SessionError as exc:
                if on_error is not None:
                    on_error(exc)

        shortcut.activated.connect(call)
        made.append(shortcut)
    return made
