"""Stopping a run: Ctrl-C (SIGINT), SIGTERM, the caller's abort flag, and the run's own
reasons (OUTPUT full, lock lost).

Ctrl-C in this process interrupts the running case at once; with a pool or a cluster the
first Ctrl-C submits nothing more and waits for the running cases, a second stops them
now. SIGTERM, what SLURM (``scancel``, the end of a job's time) and Kubernetes send before
a SIGKILL some seconds later, stops at once like a second Ctrl-C. Either way the runner
records what finished, removes what did not, and writes a consistent dataset.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable

__all__ = ["Interrupt", "Terminated", "deferred_signals", "signal_handlers",
           "terminate_raises", "uncut"]


class Terminated(KeyboardInterrupt):
    """SIGTERM was received: the run stops now (exit code 143)."""


class Interrupt:
    """Counts Ctrl-C presses; raises KeyboardInterrupt when the stop must be immediate;
    SIGTERM always stops at once (:meth:`terminate`).

    Parameters
    ----------
    immediate : bool
        Raise on the first press (in-process runs); else only on the second.
    notify : callable(str), optional
        Told what is happening (printed to stderr by the command line).
    abort : callable() -> bool or threading.Event, optional
        Polled between cases: true stops the run after the cases in progress (the
        napari plugin's Cancel).
    check : callable() -> str, optional
        Polled between cases: a reason stops the run like :meth:`halt` (the OUTPUT
        lock was lost).
    """

    def __init__(self, immediate: bool = False, notify: Callable[[str], None] | None = None,
                 abort=None, check: Callable[[], str] | None = None):
        self.count = 0
        self.immediate = immediate
        self.notify = notify
        self.abort = abort.is_set if isinstance(abort, threading.Event) else abort
        self.check = check
        self.halted = False
        self.reason = ""
        self.terminated = False

    @property
    def requested(self) -> bool:
        """Submit nothing more (Ctrl-C, the caller's abort flag, :meth:`halt`, or
        ``check()`` giving a reason)."""
        if not self.halted and self.check is not None:
            why = self.check()
            if why:
                self.halt(why)
        return self.halted or self.by_user

    @property
    def by_user(self) -> bool:
        """The stop came from outside: Ctrl-C or the caller's abort flag."""
        return self.count > 0 or (self.abort is not None and bool(self.abort()))

    def halt(self, reason: str = "") -> None:
        """Submit nothing more; the running cases finish (the run itself decided to stop,
        e.g. OUTPUT is full, or its lock was taken over: ``reason``)."""
        self.halted = True
        self.reason = self.reason or reason

    def __call__(self, signum=None, frame=None) -> None:
        """SIGINT (Ctrl-C): the first stops submitting (at once in this process), the
        second stops now."""
        self.count += 1
        if self.immediate or self.count >= 2:
            raise KeyboardInterrupt
        if self.notify is not None:
            self.notify("stopping: no new cases; waiting for the running ones to finish "
                        "(Ctrl-C again to stop now)")

    def terminate(self, signum=None, frame=None) -> None:
        """SIGTERM: stop now (a scheduler sends it with a short grace period)."""
        self.count = max(self.count, 2)
        self.terminated = True
        raise Terminated


@contextlib.contextmanager
def signal_handlers(interrupt: Interrupt):
    """Route SIGINT and SIGTERM to ``interrupt`` while the block runs (main thread only)."""
    with _handlers({signal.SIGINT: interrupt, signal.SIGTERM: interrupt.terminate}):
        yield


@contextlib.contextmanager
def terminate_raises():
    """SIGTERM raises :class:`Terminated` in the main thread while the block runs (the
    default would end the process at once, leaving the lock and no record)."""
    def raise_terminated(signum, frame):
        raise Terminated

    with _handlers({signal.SIGTERM: raise_terminated}):
        yield


@contextlib.contextmanager
def deferred_signals(received: list | None = None):
    """SIGINT and SIGTERM are noted in ``received``, not raised, while the block runs: the
    end of a run (dataset.json, splits, manifest) is not cut in half."""
    received = [] if received is None else received

    def note(signum, frame):
        received.append(signum)

    with _handlers({signal.SIGINT: note, signal.SIGTERM: note}):
        yield received


@contextlib.contextmanager
def uncut():
    """SIGINT and SIGTERM wait until the block is done, then are delivered: a step that
    must not be cut in half (starting a pool worker: cut, the parent forgets a process
    the forkserver still starts, which then fails on the pool's removed semaphores)."""
    with deferred_signals() as received:
        yield
    for signum in dict.fromkeys(received):
        signal.raise_signal(signum)


@contextlib.contextmanager
def _handlers(table: dict):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, fn) for sig, fn in table.items()}
    try:
        yield
    finally:
        for sig, fn in old.items():
            signal.signal(sig, fn)


