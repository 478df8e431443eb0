"""The session's error."""

from __future__ import annotations

__all__ = ["SessionError"]


class SessionError(ValueError):
    """A user choice the session refuses (nothing was changed). The message says why."""
