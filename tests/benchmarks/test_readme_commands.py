"""The README-commands benchmark: it finds the README's first command, splits it into the
install and the demo, reads trial times from a study and writes its table; nothing installed."""

from __future__ import annotations

import datetime
from pathlib import Path

import optuna

from tests.benchmarks import load_benchmark


ROOT = Path(__file__).resolve().parents[2]
bench = load_benchmark("readme_commands")


def test_the_readme_first_command_splits_into_install_and_demo() -> None:
    command = bench.readme_command((ROOT / "README.md").read_text())
    phases = bench.command_steps(command)
    assert [p for p, _ in phases] == ["install", "install", "demo"], phases
    assert phases[0][1].startswith("python3 -m venv .venv")
    assert "pip install -c constraints.txt" in phases[1][1]
    assert phases[2][1] == ".venv/bin/biotune-optuna run studies/demo.toml"


def test_trial_seconds_come_from_the_study(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    study = optuna.create_study(storage=f"sqlite:///{db}")
    start = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for seconds in (3.0, 5.5):
        trial = optuna.trial.create_trial(value=0.5)
        trial.datetime_start = start
        trial.datetime_complete = start + datetime.timedelta(seconds=seconds)
        study.add_trial(trial)
    assert sorted(bench.trial_seconds(db)) == [3.0, 5.5]


def test_the_table_says_every_step_and_the_machine(tmp_path: Path) -> None:
    result = {
        "commit": "abc1234",
        "command": "a && b",
        "steps": [
            {"phase": "install", "step": "python3 -m venv .venv", "seconds": 3.2},
            {"phase": "demo", "step": ".venv/bin/biotune-optuna run x", "seconds": 61.0},
        ],
        "install_s": 3.2,
        "demo_s": 61.0,
        "resume_s": 4.0,
        "trials": 22,
        "trial_s": {"median": 2.5, "max": 4.0, "total": 55.0},
        "machine": {"cpu": "X", "cores": 2, "load_average_1min_at_start": 0.1, "python": "3.11"},
    }
    bench.write(result, tmp_path)
    text = (tmp_path / "readme_commands.md").read_text()
    assert "| demo | `.venv/bin/biotune-optuna run x` | 61.0 |" in text
    assert "Install 3 s, demo 61 s: 22 trials" in text and "X, 2 cores" in text
    assert (tmp_path / "readme_commands.json").exists()
