"""A progress bar: tqdm when it is installed, else one refreshed line on stderr.

Both show cases done of the total, the rate and the time left.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Cases done out of ``total``, with rate and time left.

    Parameters
    ----------
    total : int
    desc : str
        What is counted ("synthesising").
    initial : int
        Already done before this run (``--resume``); not counted in the rate.
    enabled : bool
        False shows nothing.
    """

    def __init__(self, total: int, desc: str = "", initial: int = 0, enabled: bool = True):
        self.total, self.desc, self.n, self.start_n = total, desc, initial, initial
        self.enabled = enabled and total > 0
        self._bar = None
        self._t0 = time.monotonic()
        self._last = 0.0
        if not self.enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._draw()
            return
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="case",
                         file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, k: int = 1) -> None:
        """``k`` more cases are done."""
        self.n += k
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(k)
        elif time.monotonic() - self._last > 0.5 or self.n >= self.total:
            self._draw()

    def update_to(self, done: int, total: int | None = None) -> None:
        """Set the count (a ``progress(done, total)`` callback)."""
        self.update(done - self.n)

    def _draw(self) -> None:
        self._last = time.monotonic()
        elapsed = self._last - self._t0
        done = self.n - self.start_n
        rate = done / elapsed if elapsed > 0 and done else 0.0
        left = (self.total - self.n) / rate if rate else float("nan")
        eta = "?" if left != left else f"{int(left) // 60}m{int(left) % 60:02d}s"
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} cases, {rate:.2f} cases/s, "
                         f"{eta} left ")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar (a newline for the plain line)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._draw()
            sys.stderr.write("\n")
        self.enabled = False
