"""The MkDocs hooks of the site (``mkdocs.yml``: ``hooks``).

``on_files`` adds the generated pages: each generator module in this directory has ``PAGE``
(its path in the site) and ``page()`` (its Markdown); they are made at every build and replace
the committed stub of that path, which only says so to a reader of the repository.
``on_page_content`` turns the docstrings' Sphinx roles into links (:mod:`roles`).
"""

from __future__ import annotations

from pathlib import Path
import re
import sys

from mkdocs.structure.files import File


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the generators import `registries` as a sibling

import cli  # noqa: E402
import options  # noqa: E402
import roles  # noqa: E402


GENERATORS = (cli, options)


def on_files(files, config):  # MkDocs' hook signature
    """Add every generated page to the site's files."""
    for generator in GENERATORS:
        stub = files.get_file_from_path(generator.PAGE)  # what a reader of the repository sees
        if stub is not None:
            files.remove(stub)
        files.append(File.generated(config, generator.PAGE, content=generator.page()))
    return files


def on_page_content(html, page, config, files):  # MkDocs' hook signature
    """Link the Sphinx roles of the rendered docstrings."""
    documented = re.search(r"(?m)^::: ([\w.]+)", page.markdown or "")
    return roles.link_roles(html, documented[1] if documented else None)
