"""The error the engine raises for unreadable or invalid cases and image files."""

from __future__ import annotations

__all__ = ["CaseError"]


class CaseError(ValueError):
    """A case or image file is unreadable or invalid. The message names the file(s)."""
