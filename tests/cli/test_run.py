"""``run``: create, resume, refuse other settings, baseline strategies, the README's demo."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies._recommendation import recommended_trial
from tests.cli._specs import lines
from tests.cli._specs import TINY
from tests.cli._specs import tiny_spec
from tests.conftest import copy_spec
from tests.conftest import small_demo_spec


def test_run_creates_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert main(["run", str(spec), "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "study `biotune-synthetic`" in out
    assert "1 generations = 23 trials (N=10, E=3): 0 finished, running 23 more" in out
    assert "trial  22  gen 1" in out and "recommended trial #" in out and "| block" in out
    storage = f"sqlite:///{tmp_path / 'synthetic.db'}"
    assert len(optuna.load_study(study_name="biotune-synthetic", storage=storage).trials) == 23

    assert main(["run", str(spec), "--generations", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "running" not in out and "recommended trial #" in out
    study = optuna.load_study(study_name="biotune-synthetic", storage=storage)
    assert len(study.trials) == 36 and max(t.user_attrs["generation"] for t in study.trials) == 2

    assert main(["run", str(spec), "--generations", "2"]) == 0  # nothing left to do
    assert "36 finished, running 0 more" in capsys.readouterr().out


def test_a_bad_spec_and_a_missing_directory_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    spec.write_text(spec.read_text().replace('kind = "synthetic"', 'kind = "synthetic"\nfoo = 1'))
    assert main(["run", str(spec)]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "[objective] foo: unknown key" in err[0]

    spec = copy_spec("synthetic", tmp_path)
    spec.write_text(spec.read_text().replace("sqlite:///synthetic.db", "sqlite:///no/x.db"))
    assert main(["run", str(spec)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.db"))


def test_other_settings_on_an_existing_study_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert main(["run", str(spec), "--trials", "3", "-q"]) == 0
    spec.write_text(spec.read_text().replace('name = "biotune"', 'name = "biotune"\nn_elites = 2'))
    assert main(["run", str(spec), "--trials", "6"]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "exists" in err[0] and "sampler_options" in err[0]
    storage = f"sqlite:///{tmp_path / 'synthetic.db'}"
    assert len(optuna.load_study(study_name="biotune-synthetic", storage=storage).trials) == 3


def test_strategies_run_as_sibling_studies_and_retrain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "--strategy", "surgical"]) == 0
    out = capsys.readouterr().out
    assert "study `tiny-surgical`" in out
    assert "strategy surgical, searching block; sampler grid" in out and "4 trials" in out
    assert "Strategy `surgical`" in out and "| block " in out
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = optuna.load_study(study_name="tiny-surgical", storage=storage)
    assert sorted(t.params["block"] for t in study.trials) == ["0", "1", "2", "3"]
    assert study.user_attrs["strategy"] == "surgical" and study.user_attrs["sampler"] == "grid"
    attrs = study.trials[0].user_attrs
    assert {"fold", "frozen_blocks", "trainable_fraction", "wall_time_s", "strategy"} <= set(attrs)

    assert main(["run", str(spec), "--strategy", "lora", "-q"]) == 0  # nothing searched: 1 trial
    assert len(optuna.load_study(study_name="tiny-lora", storage=storage).trials) == 1
    assert main(["run", str(spec), "--strategy", "lora"]) == 0
    assert "1 finished, running 0 more" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text(
        TINY.replace("[sampler]\npopulation_size = 3\nn_elites = 1\n", "")
        + "[strategy]\nname = 'surgical'\nblock = 'stage9'\n"
    )
    assert main(["run", str(bad)]) == 2
    assert "[strategy] block: 'stage9' is not one of 0, 1, 2, 3" in capsys.readouterr().err

    assert main(["retrain", str(spec), "--strategy", "surgical", "-q"]) == 0
    plan = json.loads((tmp_path / "retrained" / "tiny-surgical" / "plan.json").read_text())
    chosen = recommended_trial(study)
    assert chosen is not None
    assert plan["strategy"] == "surgical" and plan["block"] == chosen.params["block"]


@pytest.mark.slow
def test_finetuning_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's demo, small: real Lite0 weights, 256 digits at 32 px, then resume."""
    spec = str(small_demo_spec(tmp_path))
    assert main(["run", spec, "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "running 14 more" in out and "validation macro accuracy" in out
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 14
    assert {t.user_attrs["role"] for t in complete} >= {"init", "exploit", "offspring"}
    # well above chance (0.1) after one epoch on 256 images at 32 px (measured: 0.32)
    assert study.best_value > 0.2
    assert main(["run", spec, "--trials", "16", "-q"]) == 0
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    assert len(study.trials) == 16
    assert main(["retrain", spec, "-q"]) == 0
    assert "test macro accuracy" in capsys.readouterr().out
