"""The MkDocs hook that adds the generated pages (``mkdocs.yml``: ``hooks``).

Each generator module in this directory has ``PAGE`` (its path in the site) and ``page()``
(its Markdown); the pages are made at every build, never committed.
"""

from __future__ import annotations

from pathlib import Path
import sys

from mkdocs.structure.files import File


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the generators import `registries` as a sibling

import cli  # noqa: E402
import options  # noqa: E402


GENERATORS = (cli, options)


def on_files(files, config):  # MkDocs' hook signature
    """Add every generated page to the site's files."""
    for generator in GENERATORS:
        files.append(File.generated(config, generator.PAGE, content=generator.page()))
    return files
