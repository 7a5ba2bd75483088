"""``best``: a study's recommended trial and its decoded plan as a table."""

from __future__ import annotations

from pathlib import Path
import re

import optuna
import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.cli._specs import sibling_output
from tests.conftest import copy_spec


def test_best_of_a_sibling_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = sibling_output(tmp_path, capsys, "best", "--seed", "1")
    assert "recommended trial #" in out and "freeze threshold" in out
    assert len([line for line in lines(out) if line.startswith("| block")]) == 1 + 6


def test_best_says_what_each_number_is_and_run_names_the_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert main(["run", str(spec), "--trials", "12", "-q"]) == 0
    capsys.readouterr()
    assert main(["best", str(spec)]) == 0
    out = lines(capsys.readouterr().out)
    assert re.fullmatch(r"recommended trial #\d+ \(synthetic fitness, maximized\)", out[0])
    assert re.fullmatch(r"  observed        0\.\d{4}: its one evaluation", out[1]), out[1]
    assert out[2].startswith("  model estimate  0.") and out[2].endswith("not a measurement")
    assert re.fullmatch(r"  best observed   0\.\d{4}: trial #\d+, a single evaluation", out[3])
    study = optuna.load_study(
        study_name="biotune-synthetic", storage=f"sqlite:///{tmp_path / 'synthetic.db'}"
    )
    assert study.metric_names == ["synthetic fitness"]  # the dashboard's axis, not "Objective 0"
