"""Every ```python block of the README and of the documentation pages (``docs/``) runs, as
written, in a fresh clone.

Each block runs in its own Python process (``python -c``, the package on ``PYTHONPATH`` as if
installed) whose working directory is a temporary "clone": the repository's ``studies/*.toml``
and nothing else, so relative paths such as ``studies/demo.toml`` resolve as in a checkout.
Two things are made smaller or put there first, never the snippet itself:

- the clone's ``studies/demo.toml`` is the demo cut to 256 train / 128 val digits at 32 px, one
  epoch (seconds a trial) and 4 trials, so the snippets that run the demo study run it quickly;
- a snippet that reads what a command writes finds it written: the demo's ``studies/demo.db``
  (3 trials) for one that opens it, its retrained model and a ``digit.png`` for one that loads
  them, and the tests' own PostgreSQL server in place of a server URL of a page.

A block that fails, or runs past :data:`LIMIT_S` (a guard, not a measurement), fails its test
with the block's page and line number and its output.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

from biotune_optuna.cli import main
from tests.conftest import small_demo_spec


pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: The pages whose code blocks run: the README and every page of the documentation site.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Seconds a snippet may run before it fails (a guard against a snippet that runs for hours).
LIMIT_S = 600
#: A PostgreSQL URL written in a page, replaced by the tests' server.
SERVER_URL = re.compile(r"postgresql://[\w.@:/-]+")


def _snippets() -> list[tuple[str, int, str]]:
    """Every ```python block of the pages: its page, its first line's number and its code."""
    return [
        (page.relative_to(ROOT).as_posix(), text[: m.start()].count("\n") + 2, m.group(1))
        for page in PAGES
        for text in [page.read_text()]
        for m in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M)
    ]


def _params() -> list[object]:
    return [
        pytest.param(
            code,
            id=f"{page}:{line}",
            marks=[pytest.mark.postgres] if SERVER_URL.search(code) else [],
        )
        for page, line, code in _snippets()
    ]


def _clone(directory: Path) -> Path:
    """What a fresh clone has for the snippets: the specs and sample images, the demo cut
    small."""
    studies = directory / "studies"
    studies.mkdir()
    for spec in (ROOT / "studies").glob("*.toml"):
        shutil.copy(spec, studies / spec.name)
    shutil.copytree(ROOT / "studies" / "samples", studies / "samples")  # shipped images
    demo = small_demo_spec(studies)  # overwrites the copy of demo.toml
    text, n = re.subn(r"(?m)^generations = \d+", "trials = 4", demo.read_text())
    assert n == 1, "the demo spec's budget line changed"
    demo.write_text(text)
    return directory


def _prepare(clone: Path, code: str, request: pytest.FixtureRequest) -> str:
    """Write what the snippet reads; return its code, a server URL replaced by the tests'."""
    spec = str(clone / "studies" / "demo.toml")
    if "studies/demo.db" in code or "studies/retrained/" in code:
        assert main(["run", spec, "--trials", "3", "-q"]) == 0
    if "studies/retrained/" in code:
        assert main(["retrain", spec, "-q"]) == 0
    if "digit.png" in code:
        from PIL import Image
        from sklearn.datasets import load_digits

        pixels = (load_digits().images[0] * 255 / 16).astype("uint8")
        Image.fromarray(pixels).resize((32, 32)).save(clone / "digit.png")
    if SERVER_URL.search(code):
        code = SERVER_URL.sub(str(request.getfixturevalue("postgres_url")), code)
    return code


@pytest.mark.parametrize("code", _params())
def test_the_readme_snippet_runs_as_written(
    code: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = _clone(tmp_path)
    monkeypatch.chdir(clone)  # the CLI's outputs of _prepare land in the clone too
    code = _prepare(clone, code, request)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=LIMIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the snippet ran past {LIMIT_S} s:\n{code}")
    assert done.returncode == 0, f"{code}\n--- output:\n{done.stdout}{done.stderr[-3000:]}"


def test_every_python_block_is_found() -> None:
    """The extraction sees the blocks the pages have (a changed fence would hide them)."""
    assert len(_snippets()) == sum(page.read_text().count("```python") for page in PAGES)
    assert len(_snippets()) >= 6  # the guides' snippets moved to docs/ are found there
