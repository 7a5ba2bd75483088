"""Running ``study_worker.py`` in its own process, for the resume and parallel tests."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys


WORKER = Path(__file__).with_name("study_worker.py")


def run_worker(
    storage: str, name: str, n_trials: int, seed: int, preset: str = "biotune"
) -> subprocess.Popen[bytes]:
    """Start a worker that runs ``n_trials`` trials of study ``name`` under ``preset``."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), storage, name, str(n_trials), str(seed), preset],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait(process: subprocess.Popen[bytes]) -> str:
    """Wait for a worker; its output, after checking that it succeeded."""
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out.decode()
    return out.decode()
