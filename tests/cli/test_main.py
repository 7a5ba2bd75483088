"""The command line as a whole: bad input and arguments, ``python -m``, imports without torch."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.conftest import copy_spec


BAD = [
    (["run", "{dir}/absent.toml"], "no such spec file"),
    (["status", "{spec}"], "no study `biotune-synthetic` in {url}; `biotune-optuna run` creates"),
    (["best", "{spec}", "--sampler", "gp"], "no study `biotune-synthetic-gp` in {url}; `biotune"),
    (["compare", "{spec}"], "no study `biotune-synthetic` in {url}; `biotune-optuna run` creates"),
    (["compare", "{spec}", "--study", "other"], "no study `other` in {url}; `biotune-optuna run`"),
    (["retrain", "{spec}"], "no study `biotune-synthetic` in {url}; `biotune-optuna run`"),
    (["dashboard", "{spec}"], "run {spec}` first"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD, ids=[b[1][:20] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    arguments = [a.format(dir=tmp_path, spec=spec) for a in arguments]
    assert main(arguments) == 2
    err = lines(capsys.readouterr().err)
    # The storage as `run` names it: resolved next to the spec, not as the spec writes it.
    url = f"sqlite:///{tmp_path / 'synthetic.db'}"
    assert len(err) == 1 and message.format(spec=spec, url=url) in err[0], err
    assert not (tmp_path / "synthetic.db").exists()


def test_errors_name_the_storage_as_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the spec's parent directory, `run` and the errors both print the relative path."""
    (tmp_path / "specs").mkdir()
    spec = copy_spec("synthetic", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--trials", "2", "-q"]) == 0
    capsys.readouterr()
    assert main(["run", str(spec), "--trials", "2"]) == 0
    announced = capsys.readouterr().out.splitlines()[0]
    assert announced == "study `biotune-synthetic` in sqlite:///specs/synthetic.db", announced
    assert main(["best", str(spec), "--sampler", "gp"]) == 2
    err = capsys.readouterr().err
    assert "no study `biotune-synthetic-gp` in sqlite:///specs/synthetic.db;" in err, err


def test_bad_arguments_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    for arguments in (
        ["run", "x.toml", "--trials", "0"],
        ["run", "x.toml", "--trials", "3", "--generations", "1"],
        ["run", "x.toml", "--sampler", "bogus"],
        ["run", "x.toml", "--seed", "-1"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(arguments)
        assert exc.value.code == 2
    capsys.readouterr()


def test_python_dash_m_runs_the_command_line() -> None:
    """``python -m biotune_optuna.cli`` is the console script (``run --workers`` needs it)."""
    done = subprocess.run(
        [sys.executable, "-m", "biotune_optuna.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("usage: biotune-optuna [-h] COMMAND ...")
    for command in (
        "run",
        "status",
        "best",
        "compare",
        "retrain",
        "predict",
        "baselines",
        "dashboard",
    ):
        assert f"    {command}" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "biotune_optuna.cli", "run", "x.toml", "--trials", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "expected an integer >= 1, got 0" in done.stderr


def test_the_cli_and_sampler_packages_import_without_torch() -> None:
    code = (
        "import sys; import biotune_optuna, biotune_optuna.samplers, biotune_optuna.cli, "
        "biotune_optuna.studies; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
