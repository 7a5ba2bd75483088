"""``best``: a study's recommended trial and its decoded plan as a table."""

from __future__ import annotations

from pathlib import Path
import re

import numpy as np
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
    assert re.fullmatch(r"  observed        0\.\d{4}: its one evaluation: #\d+ 0\.\d{4}", out[1])
    smoothed = out[2].startswith("  model estimate  0.") and "not a measurement" in out[2]
    observed = out[2].startswith("  estimate        0.") and "noise is negligible" in out[2]
    assert smoothed or observed, out[2]
    assert re.fullmatch(r"  best observed   0\.\d{4}: trial #\d+, a single evaluation", out[3])
    study = optuna.load_study(
        study_name="biotune-synthetic", storage=f"sqlite:///{tmp_path / 'synthetic.db'}"
    )
    assert study.metric_names == ["synthetic fitness"]  # the dashboard's axis, not "Objective 0"


def test_best_lists_each_evaluation_and_labels_the_estimate_with_its_interval() -> None:
    """A plan evaluated on both folds, among noisy neighbours: ``best`` lists every evaluation
    (trial, fold, value) apart from the model's estimate, which comes with its interval."""
    from biotune_optuna.studies._command_reports import best_report

    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for k in range(40):
        x = 0.7 if k % 8 == 0 else float(np.clip(0.7 + rng.normal(0.0, 0.05), 0.0, 1.0))
        value = 0.8 - (x - 0.7) ** 2 + float(rng.normal(0.0, 0.03))
        trial = optuna.trial.create_trial(
            params={"x": x}, distributions=space, value=value, user_attrs={"fold": k % 2}
        )
        study.add_trial(trial)
    out = lines(best_report(study))
    assert out[2].startswith("  model estimate  0.") and "95 % posterior interval [0." in out[2]
    assert "not a measurement" in out[2] and "noise sd 0.0" in out[2]
    chosen = int(re.match(r"recommended trial #(\d+)", out[0]).group(1))  # type: ignore[union-attr]
    evaluations = [t for t in study.trials if t.params == study.trials[chosen].params]
    for t in evaluations:
        assert f"#{t.number} (fold {t.user_attrs['fold']}) {t.value:.4f}" in out[1]
