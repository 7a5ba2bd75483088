"""The documentation site: its generated pages say what the code says, and it builds strictly.

The command-line reference is generated from the parser and the option tables from the
registries (``docs/_gen/``), so an option is documented in one place: its help or its registry
entry. These tests check the generated pages against the parser and the registries, that no
page or the README writes such a table by hand, and that ``mkdocs build --strict`` passes with
every name of each package's facade on its reference page, the docstrings' Sphinx roles made
links.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import importlib
import os
from pathlib import Path
import re
import subprocess
import sys
from types import ModuleType

import pytest


ROOT = Path(__file__).resolve().parents[1]
GENERATORS = ROOT / "docs" / "_gen"
#: Each reference page and the facade it documents with a ``:::`` directive.
REFERENCE_PAGES = {
    "biotune_optuna": "reference/biotune_optuna",
    "biotune_optuna.samplers": "reference/samplers",
    "biotune_optuna.samplers._operators": "reference/operators",
    "biotune_optuna.finetune": "reference/finetune",
    "biotune_optuna.studies": "reference/studies",
}


@pytest.fixture(scope="module")
def generators() -> Iterator[dict[str, ModuleType]]:
    """The generator modules, imported as the MkDocs hook imports them (siblings on the path).

    The parser and the registries come from ``registries``, the one module that imports them,
    so that a registry that moves is followed there only."""
    names = ("registries", "text", "docstrings", "cli", "options")
    sys.path.insert(0, str(GENERATORS))
    try:
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(GENERATORS))
        for name in names:
            sys.modules.pop(name, None)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _section(page: str, heading: str) -> str:
    """The text of the page under ``heading`` up to the next heading of its level or above."""
    level = heading.split(" ")[0]
    start = page.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", page) if m.start() > start]
    return page[start : ends[0] if ends else len(page)]


def test_the_cli_page_has_every_command_and_every_option_of_its_help(
    generators: dict[str, ModuleType],
) -> None:
    page = generators["cli"].page()
    for name, command in _subcommands(generators["registries"].parser()).items():
        section = _section(page, f"## `{name}`")
        shown = [
            option
            for action in command._actions
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)
            for option in action.option_strings or [action.metavar or action.dest]
        ]
        missing = [o for o in shown if f"`{o}`" not in section]
        assert missing == [], (name, missing)
        text = section.replace("&lt;", "<").replace("&gt;", ">")
        assert " ".join((command.description or "").split()) in text
    assert "--worker-id" not in page  # hidden from --help, hidden here


def _row(section: str, key: str) -> str:
    """The table row of option ``key`` in ``section``, as the page writes it (escaped)."""
    row = f"| `{key}` |"
    assert row in section, key
    return section.split(row)[1].split("\n")[0]


def _plain(markdown: str) -> str:
    return markdown.replace("&lt;", "<").replace("&gt;", ">").replace("\\|", "|")


def test_the_options_page_has_every_registry_entry(generators: dict[str, ModuleType]) -> None:
    page, cell = generators["options"].page(), generators["text"].cell
    registries, describe = generators["registries"], generators["docstrings"].description
    for name, (_, cls, description) in registries.SAMPLERS.items():
        section = _section(page, f"### `{name}`")
        assert cell(description)[1:] in section, name
        for key, option in registries.SPEC_OPTIONS[name].items():
            row = _row(section, key)
            assert cell(describe(cls, key)) in row, (name, key)  # what it does
            if option.kind is not bool:
                assert option.describe() in _plain(row), (name, key)
    pruners = _section(page, "## Pruners")
    for name, (cls, options) in registries.PRUNERS.items():
        section = _section(pruners, f"### `{name}`")
        assert cls.__name__ in section, name
        for key in options:
            assert cell(describe(cls, key)) in _row(section, key), (name, key)
    for name, info in registries.STRATEGIES.items():
        section = _section(page, f"### `{name}`: {info.title}")
        assert " ".join(info.description.split())[1:] in _plain(section), name
        for key, hp in info.hyperparameters.items():
            assert hp.help.strip() and hp.help in _plain(_row(section, key)), (name, key)


def test_every_registry_option_is_documented_in_its_constructors_docstring(
    generators: dict[str, ModuleType],
) -> None:
    """Each option a spec may give a sampler or a pruner has an ``Args:`` entry (its first
    sentence is the option's description on the page); a missing one names the class."""
    registries, describe = generators["registries"], generators["docstrings"].description
    tables = [
        (cls, registries.SPEC_OPTIONS[name]) for name, (_, cls, _) in registries.SAMPLERS.items()
    ]
    missing = []
    for cls, options in [*tables, *registries.PRUNERS.values()]:
        for key in options:
            try:
                assert describe(cls, key).strip(), (cls, key)
            except LookupError as error:
                missing.append(str(error))
    assert missing == []


def test_an_options_description_is_its_docstring_entrys_first_sentence(
    generators: dict[str, ModuleType],
) -> None:
    describe = generators["docstrings"].description

    class Base:
        """A sampler.

        Args:
            rate: How often (e.g. ``0.5``, see :class:`~a.B`. Not this) it mutates. Not this.
            steps: Steps. `False`: none. Not this.
        """

    class Child(Base):
        """A better sampler.

        Args:
            rate: See :class:`Base` (``0.9`` here).
        """

    assert (
        describe(Base, "rate") == "How often (e.g. `0.5`, see :class:`~a.B`. Not this) it mutates."
    )
    assert describe(Base, "steps") == "Steps."
    assert describe(Child, "rate") == describe(Base, "rate") + " `0.9` here."
    with pytest.raises(LookupError, match=r"Child's docstring has no Args entry for .*'seed'"):
        describe(Child, "seed")


def _hand_written_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


_GENERATED_BLOCK = re.compile(
    r"<!-- ([\w-]+):start \(written by [^)]+\) -->.*?<!-- \1:end -->", re.S
)


def _outside_generated_blocks(text: str) -> list[tuple[int, str]]:
    """The numbered lines of ``text`` outside the blocks a script writes between
    ``<!-- NAME:start (written by ...) -->`` and ``<!-- NAME:end -->`` (their test checks them)."""
    generated = set()
    for block in _GENERATED_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start()) + 1
        generated.update(range(first, first + block.group(0).count("\n") + 1))
    lines = enumerate(text.splitlines(), 1)
    return [(number, line) for number, line in lines if number not in generated]


def test_generated_blocks_are_recognised() -> None:
    text = "a\n<!-- x:start (written by s.py) -->\n| sampler |\n<!-- x:end -->\n| sampler |\n"
    assert _outside_generated_blocks(text) == [(1, "a"), (5, "| sampler |")]
    assert len(_outside_generated_blocks(text.replace("x:end", "y:end"))) == 5


def test_no_page_writes_an_option_table_by_hand() -> None:
    """A table of samplers, pruners, strategies or their options is generated, never written:
    a table whose first column is headed so is found in no hand-written page, outside the
    blocks a script writes (README's sampler advice, checked by its own test)."""
    headers = {"name", "sampler", "pruner", "strategy", "option", "hyperparameter"}
    tables = []
    for path in _hand_written_pages():
        for number, line in _outside_generated_blocks(path.read_text()):
            first = line.split("|")[1].strip().split(" ")[0] if line.startswith("|") else ""
            if first in headers:
                tables.append(f"{path.relative_to(ROOT)}:{number} {line[:60]}")
    assert tables == []


def build_site(site: Path) -> None:
    """Build the site into ``site`` as ``.ci/run`` does; a warning fails it."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]


def test_the_site_builds_strictly_with_every_facade_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build_site(site)
    for facade, page in REFERENCE_PAGES.items():
        html = (site / page / "index.html").read_text()
        module = importlib.import_module(facade)
        documented = set(re.findall(rf'id="{re.escape(facade)}\.(\w+)"', html))
        names = [
            n
            for n in module.__all__
            if not n.startswith("__")
            and n in vars(module)  # not a lazily imported name
            and not isinstance(getattr(module, n), ModuleType)  # a subpackage has its page
        ]
        missing = [n for n in names if n not in documented]
        assert missing == [], (facade, missing)
        roles = re.findall(r":(?:class|func|data|mod|meth|attr|exc|obj):\S{0,40}", html)
        assert roles == [], (facade, roles[:5])  # a docstring's Sphinx roles are links
    for page, generated in (("cli", "--max-failures"), ("options", "population_size")):
        html = (site / "reference" / page / "index.html").read_text()
        assert generated in html and "when the site is built" not in html  # not the stub


def test_the_home_page_shows_the_readmes_first_command_as_written() -> None:
    """The site's home page repeats the install-and-demo command: byte for byte the README's."""

    def command(path: Path) -> str:
        block = re.search(r"<!-- main-command -->\s*```bash\n(.*?)```", path.read_text(), re.S)
        assert block is not None, path
        return block.group(1)

    assert command(ROOT / "docs" / "index.md") == command(ROOT / "README.md")
