"""Multi-fidelity BioTune: plans stopped at rungs of epochs by successive halving.

A PRUNED trial keeps its slot, is ranked by the rung it reached against the plans measured at
that rung, never stalls a generation, is never the recommended or best plan, and a study
continues the same rungs in a new process (and under four workers).
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import trial_budget
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._keys import POPULATION_KEY_PREFIX
from biotune_optuna.studies._recommendation import recommended_trial
from biotune_optuna.studies._synthetic import SyntheticFineTuning


REPO = Path(__file__).resolve().parents[2]
EPOCHS = 9
SPEC = """
[study]
name = "rungs"
storage = "sqlite:///rungs.db"
seed = 3
[sampler]
name = "{sampler}"
population_size = 6
n_elites = 2
[budget]
trials = {trials}
[pruner]
name = "successive_halving"
min_resource = 1
reduction_factor = 3
[objective]
kind = "synthetic"
n_blocks = 5
epochs = 9
"""


def _study(sampler: optuna.samplers.BaseSampler, n_trials: int) -> optuna.Study:
    objective = SyntheticFineTuning(n_blocks=5, epochs=EPOCHS)
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def _rung_and_value(trial: optuna.trial.FrozenTrial) -> tuple[float, float]:
    if trial.state == TrialState.COMPLETE:
        return float("inf"), float(trial.value)
    last = max(trial.intermediate_values)
    return float(last), float(trial.intermediate_values[last])


def test_the_learning_curve_is_reported_every_epoch_and_ends_at_the_score() -> None:
    objective = SyntheticFineTuning(n_blocks=4, epochs=EPOCHS)
    seen: list[int] = []
    objective.on_epoch = lambda trial, epoch, value: seen.append(epoch)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        curve = [trial.intermediate_values[e] for e in range(1, EPOCHS + 1)]
        assert curve == sorted(curve) and curve[-1] == pytest.approx(trial.value)
        assert trial.value == pytest.approx(objective.score(trial.params))
    assert seen == list(range(1, EPOCHS + 1)) * 3


@pytest.mark.parametrize("preset", [BioTuneSampler, BioTunePlusSampler])
def test_pruned_plans_keep_their_slot_and_are_ranked_by_their_rung(preset: type) -> None:
    objective = SyntheticFineTuning(n_blocks=5)
    sampler = preset(population_size=6, n_elites=2, seed=1, search_space=objective.search_space)
    budget = trial_budget(3, population_size=6, n_elites=2)
    study = _study(sampler, budget)
    trials = study.get_trials(deepcopy=False)
    states = {t.state for t in trials}
    assert states == {TrialState.COMPLETE, TrialState.PRUNED}, states
    assert all(t.system_attrs[LINEAGE_KEY].get("slot") is not None for t in trials)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    by_number = {t.number: t for t in trials}
    for generation in range(3):  # no generation stalls on its pruned trials
        population = attrs[f"{POPULATION_KEY_PREFIX}{generation}"]
        ranked = [_rung_and_value(by_number[n]) for n in population]
        assert ranked == sorted(ranked, key=lambda r: (-r[0], -r[1])), ranked
    pruned_in_populations = {
        n
        for g in range(3)
        for n in attrs[f"{POPULATION_KEY_PREFIX}{g}"]
        if by_number[n].state == TrialState.PRUNED
    }
    assert pruned_in_populations  # ranked, not dropped as the worst
    chosen = recommended_trial(study)
    assert chosen is not None and chosen.state == TrialState.COMPLETE
    assert study.best_trial.state == TrialState.COMPLETE


def test_with_rank_pruned_by_rung_off_a_pruned_plan_takes_the_worst_fitness() -> None:
    objective = SyntheticFineTuning(n_blocks=5)
    sampler = BioTuneSampler(
        population_size=6,
        n_elites=2,
        seed=1,
        search_space=objective.search_space,
        rank_pruned_by_rung=False,
    )
    study = _study(sampler, trial_budget(2, population_size=6, n_elites=2))
    attrs = study._storage.get_study_system_attrs(study._study_id)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for generation in range(2):
        states = [by_number[n].state for n in attrs[f"{POPULATION_KEY_PREFIX}{generation}"]]
        complete = [s == TrialState.COMPLETE for s in states]
        assert complete == sorted(complete, reverse=True)  # pruned ones last, unranked


def _run(directory: Path, trials: int, *extra: str) -> None:
    spec = directory / "rungs.toml"
    if not spec.exists():
        spec.write_text(SPEC.format(sampler="biotune-plus", trials=trials))
    command = [sys.executable, "-m", "biotune_optuna.cli", "run", str(spec), "-q"]
    done = subprocess.run(
        [*command, "--trials", str(trials), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _history(directory: Path) -> list[tuple]:
    study = optuna.load_study(study_name="rungs", storage=f"sqlite:///{directory / 'rungs.db'}")
    return [
        (t.number, t.state, t.params, t.intermediate_values, t.system_attrs[LINEAGE_KEY])
        for t in study.get_trials(deepcopy=False)
    ]


def test_a_study_resumed_in_a_new_process_continues_the_same_rungs(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    _run(straight, 30)
    _run(resumed, 13)
    _run(resumed, 30)
    history = _history(straight)
    assert {state for _, state, *_ in history} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert _history(resumed) == history


@pytest.mark.slow
def test_four_workers_share_a_multifidelity_study(tmp_path: Path) -> None:
    _run(tmp_path, 48, "--workers", "4")
    study = optuna.load_study(study_name="rungs", storage=f"sqlite:///{tmp_path / 'rungs.db'}")
    trials = study.get_trials(deepcopy=False)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert 48 <= len(trials) <= 48 + 3 and any(t.state == TrialState.PRUNED for t in trials)
    assert all(t.system_attrs[LINEAGE_KEY].get("slot") is not None for t in trials)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert f"{POPULATION_KEY_PREFIX}2" in attrs  # generations closed: nothing stalled
