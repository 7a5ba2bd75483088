"""``retrain``: the recommended plan on the whole train split, its weights, plan and test."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies._recommendation import recommended_trial
from tests.cli._specs import tiny_spec


def test_retrain_saves_weights_plan_and_test_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "-q"]) == 0
    capsys.readouterr()
    assert main(["retrain", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "2 seeds: test macro accuracy" in out
    results = json.loads((tmp_path / "retrained" / "tiny" / "results.json").read_text())
    assert results["train_images"] == 128 and results["test_images"] == 360
    assert len(results["test_macro_accuracy_per_seed"]) == 2
    assert all(0 <= a <= 1 for a in results["test_macro_accuracy_per_seed"])
    plan = json.loads((tmp_path / "retrained" / "tiny" / "plan.json").read_text())
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    chosen = recommended_trial(study)  # the recommended plan, not the luckiest evaluation
    assert chosen is not None and results["trial"] == chosen.number
    assert results["recommendation"]["trial"] == chosen.number
    assert plan["importances"] == [chosen.params[f"importance:{b}"] for b in plan["blocks"]]
    import torch

    for seed, name in zip(results["seeds"], results["weights"], strict=True):
        record = torch.load(tmp_path / "retrained" / "tiny" / name, weights_only=True)
        assert "3.weight" in record["state_dict"] and record["plan"] == plan
        assert record["results"]["seed"] == seed and record["results"]["trial"] == chosen.number
    val = results["val_macro_accuracy_per_seed"]
    assert results["best_seed"] == results["seeds"][val.index(max(val))]
    assert results["best_weights"] == f"model_seed{results['best_seed']}.pt"
    assert len(list((tmp_path / "artifacts").iterdir())) == 2  # plan and results, for the UI

    assert main(["retrain", str(spec), "--trial", "99"]) == 2
    assert "no complete trial #99" in capsys.readouterr().err
