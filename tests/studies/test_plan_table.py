"""Plan tables: the grid rule, the file format, and their replay as a study's objective."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
import subprocess
import sys

import optuna
import pytest

from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import importance_param
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.samplers import GASchedule
from biotune_optuna.studies import load_spec
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._plan_table import DEFAULT_LEVELS
from biotune_optuna.studies._plan_table import grid_codes
from biotune_optuna.studies._plan_table import plan_of_code
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._plan_table import TableError
from biotune_optuna.studies._replay import TableObjective
from tests.conftest import table_spec


BLOCKS = ("low", "mid", "high")


def _curve(code: str, fold: int, epochs: int) -> list[float]:
    """A made-up learning curve: deeper, faster plans score higher; fold 1 a little lower."""
    end = 0.3 + 0.1 * sum(int(c) for c in code) / len(code) - 0.02 * fold
    return [round(end * (0.5 + 0.5 * (e + 1) / epochs), 6) for e in range(epochs)]


def fake_table(epochs: int = 4) -> PlanTable:
    plans = {
        code: {
            "trainable_fraction": code.count("0") / 10,
            "runs": [
                [fold, 0, 2.0 * epochs, 0.5 + 0.01 * int(code, 4), _curve(code, fold, epochs)]
                for fold in (0, 1)
            ],
        }
        for code in grid_codes(len(BLOCKS), len(DEFAULT_LEVELS))
    }
    return PlanTable(
        name="fake",
        blocks=BLOCKS,
        levels=DEFAULT_LEVELS,
        base_lr=1e-3,
        n_folds=2,
        seeds=(0,),
        max_epochs=epochs,
        plans=plans,
    )


def genes(importances: tuple[float, ...], threshold: float) -> dict[str, float]:
    params = {importance_param(b): nu for b, nu in zip(BLOCKS, importances)}
    return {**params, THRESHOLD_PARAM: threshold}


def test_the_grid_is_full_factorial_but_the_empty_plan() -> None:
    codes = grid_codes(5, 3)
    assert len(codes) == 4**5 - 1 == len(set(codes)) and "00000" not in codes
    assert codes == sorted(codes)  # plans sharing a frozen prefix are neighbours


def test_a_code_is_a_plan_at_exactly_its_levels() -> None:
    plan = plan_of_code("013", BLOCKS, DEFAULT_LEVELS, base_lr=1e-3)
    assert plan.frozen == ("low",)
    assert plan.learning_rate("mid") == pytest.approx(1e-4)
    assert plan.learning_rate("high") == pytest.approx(1e-2)
    assert fake_table().code_of(plan) == "013"


@pytest.mark.parametrize(
    ("importances", "threshold", "code"),
    [
        ((0.1, 0.5, 0.9), 0.05, "123"),
        ((0.25, 0.2501, 0.75), 0.0, "122"),  # ties go to the lower level: ν <= 0.25 → 0.1
        ((0.7501, 0.3, 0.31), 0.3, "302"),  # ν <= ε is frozen, whatever its level
        ((0.2, 0.1, 0.0), 0.5, "000"),
    ],
)
def test_genes_go_to_their_nearest_level_and_keep_their_mask(
    importances: tuple[float, ...], threshold: float, code: str
) -> None:
    plan = FineTunePlan.from_params(genes(importances, threshold), BLOCKS)
    assert fake_table().code_of(plan) == code


def test_a_table_saves_to_the_same_bytes_and_loads_back(tmp_path: Path) -> None:
    table = fake_table()
    first = table.save(tmp_path / "a.json.gz").read_bytes()
    assert table.save(tmp_path / "b.json.gz").read_bytes() == first
    loaded = PlanTable.load(tmp_path / "a.json.gz")
    assert loaded == table
    assert loaded.test_accuracy("123") == pytest.approx(0.5 + 0.01 * int("123", 4))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_bad_table_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    with pytest.raises(TableError, match="no such plan table"):
        PlanTable.load(path)
    path.write_bytes(b"not gzip")
    with pytest.raises(TableError, match="not a plan table"):
        PlanTable.load(path)
    data = fake_table().to_json()
    for change, message in (({"version": 2}, "reads version 1"), ({"format": "x"}, "no format")):
        with gzip.open(path, "wt") as handle:
            json.dump({**data, **change}, handle)
        with pytest.raises(TableError, match=message):
            PlanTable.load(path)
    del data["blocks"]
    with gzip.open(path, "wt") as handle:
        json.dump(data, handle)
    with pytest.raises(TableError, match="damaged"):
        PlanTable.load(path)


def study(
    objective: TableObjective, pruner: optuna.pruners.BasePruner | None = None
) -> optuna.Study:
    sampler = optuna.samplers.RandomSampler(seed=0)
    pruner = pruner or optuna.pruners.NopPruner()
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def test_a_replayed_trial_is_the_recorded_run_of_its_fold() -> None:
    table = fake_table()
    objective = TableObjective(table, fold_of_trial=GASchedule(4, 1).fold_of_trial)
    replay = study(objective)
    replay.optimize(objective, n_trials=20)
    for trial in replay.trials:
        code, fold = trial.user_attrs["table_code"], trial.user_attrs["fold"]
        plan = FineTunePlan.from_params(trial.params, BLOCKS)
        assert code == table.code_of(plan)
        # N + E = 5: trials 0-3 are generation 0, 4-8 generation 1 (both fold 0), 9-13
        # generation 2 (fold 1), 14-18 generation 3 (fold 0), 19 generation 4 (fold 1)
        assert fold == (1 if 9 <= trial.number <= 13 or trial.number == 19 else 0)
        if code == "000":
            assert trial.value == 0.0 and trial.user_attrs["epochs"] == 0.0
            continue
        curve = _curve(code, fold, 4)
        assert trial.value == max(curve)
        assert list(trial.intermediate_values.values()) == curve  # rising: running best
        assert trial.user_attrs["epochs"] == 4.0 and trial.user_attrs["wall_time_s"] == 8.0


def test_a_pruned_replay_counts_the_epochs_it_ran() -> None:
    objective = TableObjective(fake_table(epochs=8))
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    replay = study(objective, pruner)
    replay.optimize(objective, n_trials=30)
    pruned = [t for t in replay.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    for trial in pruned:
        assert trial.user_attrs["epochs"] == float(len(trial.intermediate_values)) < 8
        assert trial.user_attrs["wall_time_s"] == 2.0 * len(trial.intermediate_values)


class _PruneAtLastEpoch(optuna.pruners.BasePruner):
    """Says "stop" from epoch ``last`` on: a pruner that would throw finished trials away."""

    def __init__(self, last: int) -> None:
        self.last = last

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (trial.last_step or 0) >= self.last


def test_no_objective_is_pruned_after_its_last_epoch() -> None:
    """The rule of every objective (replayed, synthetic, live): a trained trial completes."""
    from biotune_optuna.studies._synthetic import SyntheticFineTuning

    replay = TableObjective(fake_table(epochs=4))
    synthetic = SyntheticFineTuning(n_blocks=3, epochs=4)
    for objective in (replay, synthetic):
        runs = study(objective, _PruneAtLastEpoch(4))  # type: ignore[arg-type]
        runs.optimize(objective, n_trials=10)
        states = {t.state for t in runs.trials}
        assert states == {optuna.trial.TrialState.COMPLETE}, objective
        early = study(objective, _PruneAtLastEpoch(3))  # type: ignore[arg-type]
        early.optimize(objective, n_trials=10)
        stopped = [t for t in early.trials if t.state == optuna.trial.TrialState.PRUNED]
        assert stopped and all(t.last_step == 3 for t in stopped)


def test_the_replay_imports_without_torch() -> None:
    code = (
        "import sys; import biotune_optuna.studies._replay, biotune_optuna.studies._plan_table; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


TABLE_SPEC = table_spec(trials=12, table="fake.json.gz")


def test_a_table_spec_builds_the_replay(tmp_path: Path) -> None:
    fake_table().save(tmp_path / "fake.json.gz")
    (tmp_path / "spec.toml").write_text(TABLE_SPEC)
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.objective == "table" and spec.table == tmp_path / "fake.json.gz"
    assert spec.model is None and spec.data is None
    assert spec.identity()["table"] == "fake.json.gz"
    objective = build_objective(spec)
    assert isinstance(objective, TableObjective) and objective.blocks == BLOCKS
    assert objective.fold_of_trial.__self__ == GASchedule(4, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('table = "fake.json.gz"', "[objective] table: no such plan table"),
        ("", "[objective] table: required for kind = 'table'"),
        ('table = "t"\nn_blocks = 3', "[objective] n_blocks: only for kind = 'synthetic'"),
    ],
)
def test_a_bad_table_spec_is_one_line(tmp_path: Path, change: str, message: str) -> None:
    text = TABLE_SPEC.replace('table = "fake.json.gz"', change)
    (tmp_path / "t").write_text("")
    (tmp_path / "spec.toml").write_text(text)
    with pytest.raises(SpecError) as error:
        load_spec(tmp_path / "spec.toml")
    assert message in str(error.value)


def test_a_table_study_has_no_model_data_or_baseline(tmp_path: Path) -> None:
    fake_table().save(tmp_path / "fake.json.gz")
    for extra, message in (
        ("[data]\nsource = 'digits'\n", "[data]: not used by the table objective"),
        ("[strategy]\nname = 'full'\n", "[strategy] name: the table objective has BioTune's"),
    ):
        text = TABLE_SPEC.replace("[sampler]\npopulation_size = 4\nn_elites = 1\n", "")
        (tmp_path / "spec.toml").write_text(text + extra)
        with pytest.raises(SpecError) as error:
            load_spec(tmp_path / "spec.toml")
        assert message in str(error.value)
