"""A test session that leaves a file in the checkout fails and names the file."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import uuid

import pytest

from tests._source_tree import ROOT


pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")


def _session(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_inner.py"
    test.write_text(f"from pathlib import Path\n\n\ndef test_inner():\n    {body}\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests._source_tree", "-q", str(test)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_session_that_writes_into_the_checkout_fails(tmp_path: Path) -> None:
    leftover = ROOT / f"leftover-{uuid.uuid4().hex[:8]}.db"
    try:
        run = _session(tmp_path, f"Path({str(leftover)!r}).write_text('x')")
    finally:
        leftover.unlink(missing_ok=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the tests left files in the source tree" in run.stdout
    assert leftover.name in run.stdout


def test_a_session_that_writes_only_to_temporary_directories_passes(tmp_path: Path) -> None:
    run = _session(tmp_path, f"Path({str(tmp_path / 'fine.db')!r}).write_text('x')")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "left files" not in run.stdout
