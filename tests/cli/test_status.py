"""``status``: a study's trials per state, sampler, generation and best so far."""

from __future__ import annotations

from pathlib import Path
import re

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import sibling_output
from tests.conftest import copy_spec


def test_status_of_a_sibling_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = sibling_output(tmp_path, capsys, "status", "--sampler", "tpe")
    assert "study `biotune-synthetic-tpe`" in out and "12 (12 complete)" in out
    assert "sampler     tpe" in out and "best        0." in out


def test_status_generation_of_the_synthetic_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    assert main(["run", spec, "--trials", "14", "-q"]) == 0
    capsys.readouterr()
    assert main(["status", spec]) == 0
    assert "generation  1" in capsys.readouterr().out


def test_status_says_what_each_number_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The best single evaluation, the recommended trial's observed value and the model's
    estimate are three different numbers, each named; and so is the metric."""
    spec = str(copy_spec("synthetic", tmp_path))
    assert main(["run", spec, "--trials", "14", "-q"]) == 0
    capsys.readouterr()
    assert main(["status", spec]) == 0
    out = capsys.readouterr().out
    assert "  metric      synthetic fitness (maximized)" in out
    assert re.search(r"  best        0\.\d{4} observed \(trial #\d+, a single evaluation\)", out)
    assert re.search(
        r"  recommended trial #\d+: observed 0\.\d{4} \(its one evaluation: #\d+ ", out
    )
    smoothed = r"model estimate 0\.\d{4}, 95 % posterior interval \[.*\]: .* not a measurement"
    observed = r"estimate 0\.\d{4}: the best evaluated plan's own value .* noise is negligible"
    assert re.search(smoothed, out) or re.search(observed, out)
