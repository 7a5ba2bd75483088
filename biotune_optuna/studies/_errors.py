"""The error of bad input (imports without torch)."""

from __future__ import annotations


__all__ = ["SpecError"]


class SpecError(ValueError):
    """A study spec that cannot be used; the message names the file, the section and the key."""
