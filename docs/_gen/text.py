"""Text of the generated pages: one Markdown table cell from any help or description."""

from __future__ import annotations

import html


def cell(text: object) -> str:
    """``text`` on one line, fit for a Markdown table cell.

    Outside code spans ``<name>`` is escaped (a browser would take it for a tag); a ``|``
    would end the cell, so it is escaped everywhere.
    """
    parts = " ".join(str(text).split()).split("`")
    parts[::2] = [html.escape(part, quote=False) for part in parts[::2]]
    return "`".join(parts).replace("|", "\\|")


def sentence(text: str) -> str:
    """A description as a sentence: a capital first letter and a full stop."""
    text = cell(text)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
