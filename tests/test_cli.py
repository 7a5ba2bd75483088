"""The console script, from a user's side."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import optuna
import pytest

from biotune_optuna.cli import main


def test_demo_runs_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    synthetic = ["demo", "--objective", "synthetic", "--storage", storage]
    assert main([*synthetic, "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "running 23 more to reach 23" in out
    assert "best trial #" in out and "freeze threshold" in out
    assert (
        len(optuna.load_study(study_name="biotune-synthetic-demo", storage=storage).trials) == 23
    )

    assert main([*synthetic, "--generations", "2"]) == 0
    assert "23 trials stored, running 13 more" in capsys.readouterr().out
    study = optuna.load_study(study_name="biotune-synthetic-demo", storage=storage)
    assert max(t.user_attrs["generation"] for t in study.trials) == 2


def test_missing_directory_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nowhere' / 'demo.db'}"
    assert main(["demo", "--storage", storage]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "nowhere").exists()


def test_bad_arguments_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--generations", "0"])
    assert exc.value.code == 2
    assert "expected an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--population", "3", "--elites", "3"], "--elites (3) must be below --population"),
        (["--image-size", "16"], "--image-size must be at least 32"),
    ],
)
def test_bad_demo_settings_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--storage", storage, *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "demo.db").exists()


@pytest.mark.slow
def test_finetuning_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's demo, small: real Lite0 weights, digits at 32 px, 7 trials, then resume."""
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    small = ["--population", "3", "--elites", "1", "--epochs", "1", "--image-size", "32"]
    assert main(["demo", "--storage", storage, "--generations", "1", *small]) == 0
    out = capsys.readouterr().out
    assert "running 7 more to reach 7" in out
    assert "best trial #" in out and "validation macro accuracy" in out
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 7
    assert {t.user_attrs["role"] for t in complete} >= {"init", "exploit"}
    assert study.best_value > 0.5  # ImageNet features make even one epoch at 32 px useful
    assert main(["demo", "--storage", storage, "--generations", "2", *small, "-q"]) == 0
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    assert len(study.trials) == 11
    assert {t.user_attrs["fold"] for t in study.trials} == {0, 1}


def test_sampler_package_imports_without_torch() -> None:
    code = (
        "import sys; import biotune_optuna, biotune_optuna.samplers, biotune_optuna.cli; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
