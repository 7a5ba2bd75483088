"""What the reliability tests do as a user does: run the command line, open a study."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import optuna

from biotune_optuna.studies._storage import open_storage


REPO = Path(__file__).resolve().parents[2]


def cli(*arguments: str) -> list[str]:
    """The ``biotune-optuna`` command line with ``arguments``, in this Python."""
    return [sys.executable, "-m", "biotune_optuna.cli", *arguments]


def run_cli(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the command line from the repository root; its output is captured."""
    return subprocess.run(
        cli(*arguments), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def start_workers(spec: Path, *, output: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start ``run SPEC --workers 2 -q`` from the repository root in a process group of its
    own (to signal it as a terminal does); its output goes to ``output``."""
    return subprocess.Popen(
        cli("run", str(spec), "--workers", "2", "-q"),
        cwd=REPO,
        stdout=output,
        stderr=output,
        text=True,
        start_new_session=True,
    )


def load(storage: str, name: str) -> optuna.Study:
    """Study ``name`` of the storage URL ``storage``, opened for reading."""
    return optuna.load_study(study_name=name, storage=open_storage(storage))
