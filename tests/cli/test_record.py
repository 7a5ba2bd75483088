"""``record``: a plan table through the engine, resumed and shared by workers, then replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies import load_spec
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._plan_table import plan_of_code
from biotune_optuna.studies._plan_table import PlanTable
from tests.cli._specs import lines
from tests.conftest import table_spec


RECORD = """
[study]
name = "tiny-table"
storage = "sqlite:///tiny.db"
[budget]
trials = 1
[model]
source = "tests.finetune.conftest:tiny_cnn"
head = "3"
blocks = {low = ["0", "1"], high = ["2", "3"]}
[data]
source = "suite:digits-noise"
max_train_images = 64
max_val_images = 40
test_fraction = 0.1
[protocol]
image_size = 16
max_epochs = 2
patience = 2
n_seeds = 1
batch_size = 32
"""

REPLAY = table_spec(trials=14, table="tiny.json.gz")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny spec's table, recorded by two workers, the first one stopped in a run."""
    directory = tmp_path_factory.mktemp("record")
    (directory / "record.toml").write_text(RECORD)
    output = directory / "tiny.json.gz"
    args = ["record", str(directory / "record.toml"), "--output", str(output), "-q"]
    assert main([*args, "--workers", "2", "--worker", "0"]) == 0
    assert not output.exists()  # worker 1's runs are missing
    part = directory / "tiny.json.gz.part-0.jsonl"
    text = part.read_text().splitlines()
    part.write_text("\n".join(text[:-1]) + "\n" + text[-1][:20])  # stopped while writing
    assert main([*args, "--workers", "2", "--worker", "1"]) == 0
    assert not output.exists()  # the cut run is missing
    assert main([*args, "--workers", "2", "--worker", "0"]) == 0  # records only that run
    assert len(part.read_text().splitlines()) == len(text) + 1  # the cut line, a new one
    return output


def test_the_table_holds_every_plan_on_every_fold(recorded: Path) -> None:
    table = PlanTable.load(recorded)
    assert table.blocks == ("low", "high") and table.levels == (0.1, 1.0, 10.0)
    assert sorted(table.plans) == sorted(f"{a}{b}" for a in "0123" for b in "0123")[1:]
    for code in table.plans:
        runs = table.runs(code)
        assert sorted((run.fold, run.seed) for run in runs) == [(0, 0), (1, 0)]
        assert all(len(run.val) == 2 and 0 <= run.test <= 1 for run in runs)
    assert table.task["source"] == "suite:digits-noise" and table.task["sizes"]["train"] == 64
    assert table.recorded_with["runs"] == 30 and table.recorded_with["cpu_seconds"] > 0


def test_a_recorded_run_is_what_the_engine_gives_that_plan(recorded: Path) -> None:
    table = PlanTable.load(recorded)
    spec = load_spec(recorded.parent / "record.toml")
    objective = build_objective(spec)
    plan = plan_of_code("13", table.blocks, table.levels, base_lr=table.base_lr)
    for fold in (0, 1):
        (run,) = table.runs("13", fold=fold)
        assert objective.evaluate(plan, fold).fitness == pytest.approx(run.best, abs=1e-6)


def test_a_part_of_another_recording_is_refused(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "record.toml").write_text(RECORD.replace("image_size = 16", "image_size = 12"))
    part = recorded.parent / "tiny.json.gz.part-0.jsonl"
    (tmp_path / "t.json.gz.part-0.jsonl").write_text(part.read_text())
    output = tmp_path / "t.json.gz"
    assert main(["record", str(tmp_path / "record.toml"), "--output", str(output)]) == 2
    (error,) = lines(capsys.readouterr().err)
    assert "part of another recording" in error and "t.json.gz.part-0.jsonl" in error


@pytest.mark.parametrize(
    ("change", "arguments", "message"),
    [
        ("patience = 1", [], "[protocol] patience: a table records whole learning curves"),
        ("patience = 2", ["--worker", "2", "--workers", "2"], "--worker 2: must be below"),
        ("patience = 2", ["--sampler", "tpe"], "--sampler and --strategy do not apply"),
    ],
)
def test_bad_recordings_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
    arguments: list[str],
    message: str,
) -> None:
    (tmp_path / "record.toml").write_text(RECORD.replace("patience = 2", change))
    output = tmp_path / "t.json.gz"
    spec = str(tmp_path / "record.toml")
    assert main(["record", spec, "--output", str(output), *arguments]) == 2
    (error,) = lines(capsys.readouterr().err)
    assert message in error
    assert list(tmp_path.iterdir()) == [tmp_path / "record.toml"]


def test_a_replayed_study_runs_and_recommends_a_recorded_plan(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = recorded.parent / "replay.toml"
    spec.write_text(REPLAY)
    assert main(["run", str(spec), "-q"]) == 0
    assert main(["best", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "recommended trial #" in out
    assert main(["retrain", str(spec)]) == 0
    (line,) = lines(capsys.readouterr().out)
    assert "recorded test macro accuracy" in line and "over 2 runs" in line
    number = int(line.split("#")[1].split()[0])
    code = line.split("(plan ")[1].split()[0]
    expected = PlanTable.load(recorded).runs(code)
    assert f"{sum(r.test for r in expected) / 2:.4f}" in line and number >= 0
    study_db = recorded.parent / "replay.db"
    assert study_db.exists()
    summary = json.loads(json.dumps(PlanTable.load(recorded).recorded_with))
    assert summary["device"] == ["cpu"]
