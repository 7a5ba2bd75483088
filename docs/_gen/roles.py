"""Sphinx's cross-reference roles of the docstrings, as links of the rendered API pages.

The docstrings (Google style) name other objects the Sphinx way, ``:class:`~pkg.Name```; griffe
leaves that text as it is. Each role becomes an optional autorefs link: to the object's
entry where the site documents it, else its name in code, as Sphinx shows it (``~``: the last
part only). A bare name (``:func:`create_sampler```) is looked up in the page's module.
"""

from __future__ import annotations

import re


#: ``:role:`` then the code span Markdown made of the role's backquoted target (which a
#: docstring may wrap over two lines).
ROLE = re.compile(
    r":(?:py:)?(?:class|func|data|mod|meth|attr|exc|obj):<code>(~?)([\w.\s]+)</code>"
)


def link_roles(html: str, module: str | None = None) -> str:
    """``html`` with every Sphinx role turned into an optional cross-reference; a bare name is
    taken to be in ``module`` (the page's, if it documents one)."""

    def link(match: re.Match[str]) -> str:
        short, identifier = match[1], re.sub(r"\s+", "", match[2])  # a docstring may wrap it
        title = identifier.rsplit(".", 1)[-1] if short else identifier
        if module and "." not in identifier:
            identifier = f"{module}.{identifier}"
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return ROLE.sub(link, html)
