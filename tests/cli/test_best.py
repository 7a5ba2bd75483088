"""``best``: a study's recommended trial and its decoded plan as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.conftest import copy_spec


def test_best_of_a_sibling_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    for extra in ([], ["--seed", "1"]):
        assert main(["run", spec, "--trials", "12", "-q", *extra]) == 0
    capsys.readouterr()

    assert main(["best", spec, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "recommended trial #" in out and "freeze threshold" in out
    assert len([line for line in lines(out) if line.startswith("| block")]) == 1 + 6
