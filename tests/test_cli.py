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
    assert main(["demo", "--storage", storage, "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "running 23 more to reach 23" in out
    assert "best trial #" in out and "freeze threshold" in out
    assert (
        len(optuna.load_study(study_name="biotune-synthetic-demo", storage=storage).trials) == 23
    )

    assert main(["demo", "--storage", storage, "--generations", "2"]) == 0
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


def test_sampler_package_imports_without_torch() -> None:
    code = (
        "import sys; import biotune_optuna, biotune_optuna.samplers, biotune_optuna.cli; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
