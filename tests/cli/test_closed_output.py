"""A closed standard output (``biotune-optuna … | head``) stops the printing, not the command.

The command runs in a subprocess with unbuffered output whose reader goes away after the first
line, as ``head -1`` would: every later write meets a closed pipe.
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import optuna

from tests.conftest import copy_spec


def _read_one_line_then_close(arguments: list[str]) -> tuple[int, str]:
    """Run the CLI, read its first output line, close the pipe; its exit code and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "biotune_optuna.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    assert first, "nothing printed"
    process.stdout.close()
    err = process.stderr.read()
    return process.wait(timeout=300), err


def test_run_piped_into_head_still_runs_every_trial(tmp_path: Path) -> None:
    spec = copy_spec("synthetic", tmp_path)
    code, err = _read_one_line_then_close(["run", str(spec), "--trials", "20"])
    assert code == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err, err
    study = optuna.load_study(
        study_name="biotune-synthetic", storage=f"sqlite:///{tmp_path / 'synthetic.db'}"
    )
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 20


def test_best_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert subprocess.run(
        [sys.executable, "-m", "biotune_optuna.cli", "run", str(spec), "--trials", "12", "-q"],
        capture_output=True,
        check=False,
    ).returncode == 0
    code, err = _read_one_line_then_close(["best", str(spec)])
    assert (code, err) == (0, "")
