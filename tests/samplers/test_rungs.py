"""Budget-aware BioTune (``[pruner] name = "rungs"``): plans pause at rungs of epochs, the best
paused ones are continued from where they stopped, and the GA ranks a plan by its chain.
"""

from __future__ import annotations

import itertools
from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._rungs import epoch_rungs
from biotune_optuna.samplers._rungs import find_promotion
from biotune_optuna.samplers._rungs import RungPruner
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._race import race_study
from biotune_optuna.studies._race import RaceEntry
from biotune_optuna.studies._recommendation import recommended_trial
from biotune_optuna.studies._replay import TableObjective
from biotune_optuna.studies._simulation import simulate_study
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from biotune_optuna.trials import EPOCHS_ATTR
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import prune_if_asked
from biotune_optuna.trials import RESUMED_FROM_ATTR
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import spent_epochs
from biotune_optuna.trials import TrialPaused


REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "benchmarks" / "tables" / "textures.json.gz"
RUNGS = RaceEntry("rungs", "biotune-plus", "rungs", {"max_resource": 8, "reduction_factor": 3})


@pytest.fixture(scope="module")
def table() -> PlanTable:
    return PlanTable.load(TABLE)


@pytest.fixture(scope="module")
def replayed(table: PlanTable) -> optuna.Study:
    """A budget-aware study of 90 trials replaying a recorded table."""
    objective = TableObjective(table)
    study = optuna.create_study(
        direction="maximize",
        sampler=BioTunePlusSampler(seed=2, search_space=objective.search_space),
        pruner=RungPruner(max_resource=table.max_epochs, reduction_factor=3),
    )
    study.optimize(objective, n_trials=90)
    return study


def test_rungs_fit_the_protocol_and_end_at_its_last_epoch() -> None:
    assert epoch_rungs(8) == (3, 8)
    assert epoch_rungs(30) == (3, 10, 30)
    assert epoch_rungs(8, reduction_factor=3, min_epochs=1) == (1, 3, 8)
    assert epoch_rungs(8, reduction_factor=2, min_epochs=2) == (2, 4, 8)
    assert epoch_rungs(4, reduction_factor=2, min_epochs=1) == (1, 2, 4)
    assert epoch_rungs(3) == (3,) and epoch_rungs(1) == (1,)  # no rung below
    with pytest.raises(ValueError):
        epoch_rungs(8, reduction_factor=1)


def test_the_pruner_stops_a_trial_at_its_rung_only_and_never_at_the_last_epoch() -> None:
    pruner = PRUNERS.create("rungs", {"max_resource": 8, "min_resource": 1})
    assert isinstance(pruner, RungPruner) and pruner.rungs == (1, 3, 8)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    trial.report(0.5, 1)
    assert not trial.should_prune()  # no rung record: never stopped
    study._storage.set_trial_system_attr(trial._trial_id, "biotune:rung", {"until": 3})
    trial.report(0.6, 2)
    assert not trial.should_prune()
    trial.report(0.7, 3)
    with pytest.raises(TrialPaused):
        prune_if_asked(trial, 3, 0.7, last=8)
    last = study.ask()
    study._storage.set_trial_system_attr(last._trial_id, "biotune:rung", {"until": 8})
    last.report(0.9, 8)
    assert not last.should_prune()


def test_paused_plans_are_continued_on_their_fold_from_where_they_stopped(
    replayed: optuna.Study,
) -> None:
    trials = replayed.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    assert all(rung_record(t) is not None for t in trials)
    continuations = [t for t in trials if rung_record(t).source is not None]
    assert continuations and any(t.state == TrialState.COMPLETE for t in continuations)
    sources = [rung_record(t).source for t in continuations]
    assert len(sources) == len(set(sources))  # no paused plan is continued twice
    for trial in continuations:
        record = rung_record(trial)
        source = by_number[record.source]
        assert source.state == TrialState.PRUNED and source.last_step == record.start
        assert rung_record(source).until == record.start
        assert trial.params == source.params
        assert trial.user_attrs[FOLD_ATTR] == source.user_attrs[FOLD_ATTR] == record.fold
        assert trial.user_attrs[RESUMED_FROM_ATTR] == record.start
        # The earlier epochs are reported again, as the checkpoint holds them, at no cost.
        assert {s: trial.intermediate_values[s] for s in source.intermediate_values} == (
            source.intermediate_values
        )
        assert trial.user_attrs[EPOCHS_ATTR] == trial.last_step - record.start
        assert spent_epochs(trial) == trial.last_step - record.start
        assert LINEAGE_KEY not in trial.system_attrs  # not a new member of the search
    fresh = [t for t in trials if rung_record(t).source is None]
    assert all(rung_record(t).until == 3 for t in fresh)
    assert all(LINEAGE_KEY in t.system_attrs for t in fresh)
    assert {t.state for t in fresh} <= {TrialState.PRUNED, TrialState.COMPLETE}


def test_a_promotion_is_among_the_best_third_of_its_rung(table: PlanTable) -> None:
    objective = TableObjective(table)
    study = optuna.create_study(
        direction="maximize",
        sampler=BioTunePlusSampler(seed=5, search_space=objective.search_space),
        pruner=RungPruner(max_resource=8),
    )
    checked = 0
    for _ in range(60):
        trials = study.get_trials(deepcopy=False)
        promotion = find_promotion(study, study.pruner, trials)
        trial = study.ask(objective.search_space)
        record = rung_record(trial)
        assert (promotion is None) == (record.source is None)
        if promotion is not None:
            assert record == promotion
            chains = {  # each plan (a chain of trials) measured at the rung, once
                _head(t): t.intermediate_values[record.start]
                for t in trials
                if record.start in t.intermediate_values
            }
            at_rung = sorted(chains.values(), reverse=True)
            source = next(t for t in trials if t.number == record.source)
            assert source.intermediate_values[record.start] >= at_rung[len(at_rung) // 3 - 1]
            checked += 1
        try:
            study.tell(trial, objective(trial))
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
    assert checked >= 5


def _head(trial: optuna.trial.FrozenTrial) -> int:
    record = rung_record(trial)
    return trial.number if record is None or record.head is None else record.head


def test_the_ga_ranks_a_plan_by_the_furthest_rung_its_chain_reached(
    replayed: optuna.Study,
) -> None:
    sampler = replayed.sampler
    index = sampler._reader.sync(replayed, check_settings=False)
    trials = {t.number: t for t in replayed.get_trials(deepcopy=False)}
    finished_heads = {
        rung_record(t).head: t
        for t in sorted(trials.values(), key=lambda t: t.number)
        if rung_record(t).head is not None and t.state == TrialState.COMPLETE
    }
    assert finished_heads
    for head, last in finished_heads.items():
        member = index.members[head]
        assert member.fidelity == float("inf") and member.loss == -last.value
    for generation in range(1, 5):  # populations are read best first, by rung then value
        members = sampler._populations.members(replayed, index, generation)
        keys = [m.rank for m in members]
        assert keys == sorted(keys)
    chosen = recommended_trial(replayed)
    assert chosen is not None and chosen.state == TrialState.COMPLETE


def test_a_budget_aware_study_spends_fewer_epochs_per_trial(table: PlanTable) -> None:
    plain = race_study(table, RaceEntry("plus", "biotune-plus"), seed=0, n_trials=40)
    rungs = race_study(table, RUNGS, seed=0, n_trials=40)
    spent = [sum(row[4] for row in r["trials"]) for r in (plain, rungs)]
    assert spent[1] < spent[0] / 2
    assert any(row[2] == "complete" for row in rungs["trials"])


def test_a_simulation_with_one_worker_is_the_sequential_study(table: PlanTable) -> None:
    sequential = race_study(table, RUNGS, seed=3, n_trials=70, budgets=(), every=70)
    total = sum(row[4] for row in sequential["trials"][:60])
    simulated = simulate_study(table, RUNGS, seed=3, epoch_budget=total, point_every=1e9)
    rows = simulated["trials"]
    assert [r[:5] for r in rows] == [r[:5] for r in sequential["trials"][: len(rows)]]
    assert simulated["idle_s"] == 0.0 and {r[7] for r in rows} == {0}
    assert all(a[6] <= b[5] + 1e-9 for a, b in itertools.pairwise(rows))  # one after another


def test_many_simulated_workers_keep_busy_and_finish_sooner(table: PlanTable) -> None:
    one = simulate_study(table, RUNGS, seed=1, workers=1, epoch_budget=200)
    many = simulate_study(table, RUNGS, seed=1, workers=8, epoch_budget=200)
    assert {r[7] for r in many["trials"]} == set(range(8))
    assert many["idle_s"] <= 0.01 * 8 * many["makespan_s"]
    assert many["makespan_s"] < one["makespan_s"] / 4
    for trial in many["trials"]:  # never more than 8 trials at a time
        running = [r for r in many["trials"] if r[5] <= trial[5] < r[6]]
        assert len(running) <= 8


def test_a_paused_plan_promoted_by_one_worker_is_not_promoted_by_another(
    table: PlanTable,
) -> None:
    objective = TableObjective(table)
    study = optuna.create_study(
        direction="maximize",
        sampler=BioTunePlusSampler(seed=0, search_space=objective.search_space),
        pruner=RungPruner(max_resource=8),
    )
    for _ in range(30):
        trial = study.ask()
        try:
            study.tell(trial, objective(trial))
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
    # Six workers ask (and sample) before any of them tells.
    asked = [study.ask(objective.search_space) for _ in range(6)]
    sources = [rung_record(t).source for t in asked if rung_record(t).source is not None]
    assert sources and len(sources) == len(set(sources))


SPEC = """
[study]
name = "budget-aware"
storage = "sqlite:///budget-aware.db"
seed = 3
[sampler]
name = "biotune-plus"
population_size = 6
n_elites = 2
[budget]
trials = {trials}
[pruner]
name = "rungs"
[objective]
kind = "synthetic"
n_blocks = 5
epochs = 9
"""


def _run(directory: Path, trials: int) -> None:
    spec = directory / "budget.toml"
    spec.write_text(SPEC.format(trials=trials))
    command = [sys.executable, "-m", "biotune_optuna.cli", "run", str(spec), "-q"]
    done = subprocess.run(
        [*command, "--trials", str(trials)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _history(directory: Path) -> list[tuple]:
    storage = f"sqlite:///{directory / 'budget-aware.db'}"
    study = optuna.load_study(study_name="budget-aware", storage=storage)
    return [
        (t.number, t.state, t.params, t.intermediate_values, t.system_attrs.get("biotune:rung"))
        for t in study.get_trials(deepcopy=False)
    ]


def test_a_budget_aware_study_resumed_in_a_new_process_continues_the_same_chains(
    tmp_path: Path,
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    _run(straight, 36)
    _run(resumed, 17)
    _run(resumed, 36)
    history = _history(straight)
    assert any(record.get("source") is not None for *_, record in history)
    assert _history(resumed) == history


def test_synthetic_objective_study_with_rungs_recommends_a_finished_plan() -> None:
    objective = SyntheticFineTuning(n_blocks=5, epochs=9)
    study = optuna.create_study(
        direction="maximize",
        sampler=BioTunePlusSampler(
            population_size=6, n_elites=2, seed=0, search_space=objective.search_space
        ),
        pruner=RungPruner(max_resource=9),
    )
    study.optimize(objective, n_trials=40)
    states = {t.state for t in study.trials}
    assert states == {TrialState.COMPLETE, TrialState.PRUNED}
    assert study.best_trial.state == TrialState.COMPLETE


def test_status_counts_continuations_and_plans_paused_at_a_rung(replayed: optuna.Study) -> None:
    from biotune_optuna.studies._report import status_summary

    counts = status_summary(replayed)["rungs"]
    trials = replayed.get_trials(deepcopy=False)
    continued = {rung_record(t).source for t in trials} - {None}
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert counts == {"continuations": len(continued), "paused": len(pruned) - len(continued)}
    plain = optuna.create_study(direction="maximize")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert status_summary(plain)["rungs"] is None


def _paused(study: optuna.Study, values: list[float], **system_attrs: object) -> None:
    """A trial that reported ``values`` and paused at its rung (the last of them)."""
    trial = study.ask()
    study._storage.set_trial_system_attr(trial._trial_id, "biotune:rung", {"until": len(values)})
    for key, value in system_attrs.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, value)
    trial.suggest_float("x", 0, 1)
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
    study.tell(trial, state=TrialState.PRUNED)


def test_a_promotion_continues_a_retried_plan_from_the_checkpoint_its_retry_used() -> None:
    study = optuna.create_study(direction="maximize", pruner=RungPruner(max_resource=8))
    study.tell(study.ask(), state=TrialState.FAIL)  # trial 0: its worker died
    _paused(study, [0.5, 0.6, 0.9], failed_trial=0, retry_history=[0])  # trial 1, its retry
    _paused(study, [0.1, 0.2, 0.3])
    _paused(study, [0.1, 0.1, 0.2])
    _paused(study, [0.1, 0.2, float("nan")])  # a value that is not a number: never promoted
    record = find_promotion(study, study.pruner, study.get_trials(deepcopy=False))
    assert record is not None and (record.source, record.head) == (1, 1)
    assert (record.start, record.until, record.checkpoint) == (3, 8, 0)
