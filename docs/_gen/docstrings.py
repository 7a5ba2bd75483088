"""An option's description: the first sentence of its constructor argument's docstring entry.

The registries map each option a spec may give to an argument of a class's constructor; that
argument's entry under ``Args:`` in the class's Google docstring (BioTune's own, Optuna's) is the
one place the option is documented. :func:`description` reads the entry with griffe and fails
loudly where there is none: the fix is an entry in the class's docstring, never a page.
"""

from __future__ import annotations

import functools
import inspect
import re

import griffe


#: An entry that sends the reader to another class's entry for the same argument, with what
#: differs here (``See :class:`BioTuneSampler` (24 here).``).
_SEE = re.compile(r"See :class:`~?(?:[\w.]+\.)?(\w+)`\.?\s*(.*)", re.DOTALL)
#: A reStructuredText link, ```text <URL>`_``; a docstring may wrap the URL.
_LINK = re.compile(r"`([^`<]+?)\s*<([^>]+)>`__?")
#: Words whose full stop does not end a sentence.
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")


@functools.cache
def _entries(cls: type) -> dict[str, str]:
    """Argument → the description in ``cls``'s own docstring (not an inherited one)."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return {}
    # Optuna leaves a blank line under "Args:", after which griffe sees no section.
    text = re.sub(r"(?m)^(\s*Args:)\n\s*\n", r"\1\n", inspect.cleandoc(doc))
    sections = griffe.Docstring(text).parse("google", warnings=False)
    return {
        parameter.name: parameter.description
        for section in sections
        if section.kind is griffe.DocstringSectionKind.parameters
        for parameter in section.value
    }


def _markdown(text: str) -> str:
    """reStructuredText's inline markup as Markdown; Sphinx roles stay (the site links them)."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    text = re.sub(r":math:`(.+?)`", r"`\1`", text)
    return _LINK.sub(lambda m: f"[{m[1]}]({''.join(m[2].split())})", text)


def first_sentence(text: str) -> str:
    """The text up to its first full stop outside code, brackets and abbreviations."""
    text = " ".join(text.split())
    depth, code = 0, False
    for i, char in enumerate(text):
        if char == "`":
            code = not code
        elif not code and char in "([":
            depth += 1
        elif not code and char in ")]":
            depth = max(depth - 1, 0)
        elif char == "." and not code and depth == 0:
            rest = text[i + 1 : i + 3]  # a sentence ends before a word that is not lower case
            ends = rest == "" or (rest[0] == " " and not rest[1:].islower())
            if ends and not text[: i + 1].lower().endswith(_ABBREVIATIONS):
                return text[: i + 1]
    return text


def summary(cls: type) -> str:
    """The first paragraph of ``cls``'s docstring, on one line."""
    return " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())


def description(cls: type, argument: str) -> str:
    """What ``argument`` of ``cls``'s constructor does: the first sentence of its docstring
    entry, from the nearest class of ``cls``'s bases that documents it, in Markdown.

    Raises:
        LookupError: No class documents the argument (document it in ``cls``'s docstring).
    """
    for base in cls.__mro__:
        entry = _entries(base).get(argument)
        if entry is None:
            continue
        see = _SEE.fullmatch(" ".join(entry.split()))
        if see is None:
            return _markdown(first_sentence(entry))
        target = next((c for c in base.__mro__ if c.__name__ == see[1]), None)
        if target is None or target is base:
            raise LookupError(f"{base.__name__}'s entry {argument!r} refers to {see[1]}")
        here = see[2].strip().removesuffix(".").removeprefix("(").removesuffix(")")
        return description(target, argument) + (f" {_markdown(here)}." if here else "")
    raise LookupError(
        f"{cls.__module__}.{cls.__qualname__}'s docstring has no Args entry for the option "
        f"{argument!r}: document it there (docs/_gen/docstrings.py reads it for the options page)"
    )
