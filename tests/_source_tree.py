"""The test run leaves nothing in the source tree.

Tests write their studies, figures and screenshots under temporary directories (or under
``BIOTUNE_TEST_OUTPUT``, which CI points at ``test-output/`` to keep them). These hooks, imported
by ``tests/conftest.py``, compare ``git status`` of the checkout before and after the session
and fail a session that passed but left new files (untracked or ignored) behind, naming them.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import tempfile

import pytest


__all__ = [
    "TEST_OUTPUT",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_terminal_summary",
]

ROOT = Path(__file__).resolve().parents[1]

#: Where tests keep what a person may want to look at afterwards (screenshots, executed
#: notebooks): ``BIOTUNE_TEST_OUTPUT``, else a directory under the system's temporary one.
TEST_OUTPUT = Path(
    os.environ.get("BIOTUNE_TEST_OUTPUT") or Path(tempfile.gettempdir()) / "biotune-test-output"
).resolve()

# Written by the tools that run the tests, not by the tests.
_TOOL_PATHS = (".venv/", ".pytest_cache/", ".ruff_cache/", "__pycache__/", ".egg-info/")
_BEFORE = pytest.StashKey[set[str] | None]()
_LEFT = pytest.StashKey[list[str]]()


def _status() -> set[str] | None:
    """``git status`` lines of the checkout, ignored files included; None outside git."""
    if not (ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    output = TEST_OUTPUT.relative_to(ROOT).as_posix() if TEST_OUTPUT.is_relative_to(ROOT) else None
    return {
        line
        for line in out.splitlines()
        if not any(part in line[3:] for part in _TOOL_PATHS)
        and not (output and line[3:].startswith(output))
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    after = _status() if before is not None else None
    left = sorted(after - before) if after is not None and before is not None else []
    session.config.stash[_LEFT] = left
    if left and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)  # after the durations, the session's last words
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    hint = "" if os.environ.get("BIOTUNE_TEST_OUTPUT") else " (BIOTUNE_TEST_OUTPUT moves it)"
    terminalreporter.write_line(
        f"test output (dashboard screenshots, executed notebooks): {TEST_OUTPUT}{hint}"
    )
    left = terminalreporter.config.stash.get(_LEFT, [])
    if left:
        terminalreporter.write_sep("=", "the tests left files in the source tree", red=True)
        for line in left:
            terminalreporter.write_line(line)
