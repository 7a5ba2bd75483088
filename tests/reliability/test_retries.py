"""A dead trial is retried exactly once, in its own slot, with the genes it was proposed.

Issue 25, items 3 and 4, with deaths at the two moments that lost them, simulated exactly
(``os._exit`` in a worker process, as SIGKILL would, with no cleanup):

- a worker killed between failing a dead trial and creating its retry: Optuna's stale-trial
  handling does the two one after the other, and the trial was left FAILED without a retry
  (BioTune then put it in its generation's population);
- a worker killed while its trial suggested its genes: the retry drew the genes its dead
  attempt had not stored yet from other streams, and the search left an uninterrupted run's
  path.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from biotune_optuna.samplers import DUPLICATE_RETRY_KEY
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.studies._heartbeat import MAX_RETRY
from biotune_optuna.studies._heartbeat import RetryDeadTrial
from biotune_optuna.studies._heartbeat import STALE_KEY
from biotune_optuna.studies.storage import open_storage
from tests.reliability._user import load
from tests.reliability._user import REPO


# A worker: BioTune (4 + 1 elite, seeded) on the synthetic landscape to ``budget`` trials.
# KILL=number:k exits at once (no cleanup, like SIGKILL) when trial ``number``'s first attempt
# has suggested k of its 7 genes; DIE_BEFORE_RETRY exits between failing a dead trial and
# creating its retry.
_WORKER = """
import os, sys
import optuna
from biotune_optuna import BioTuneSampler
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies import _heartbeat
from biotune_optuna.studies.storage import open_storage
from biotune_optuna.synthetic import SyntheticFineTuning

url, budget, kill = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kill == "DIE_BEFORE_RETRY":
    _heartbeat.RetryDeadTrial.__call__ = lambda self, study, trial: os._exit(7)
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    storage=open_storage(url, heartbeat_interval=1),
    study_name="retries",
    sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
    direction="maximize",
    load_if_exists=True,
)
landscape = SyntheticFineTuning(seed=0)
number, k = (int(x) for x in kill.split(":")) if ":" in kill else (-1, 0)


def objective(trial):
    first_attempt = "failed_trial" not in trial.storage.get_trial_system_attrs(trial._trial_id)
    for i, name in enumerate(landscape.param_names):
        if trial.number == number and first_attempt and i == k:
            os._exit(9)
        trial.suggest_float(name, 0.0, 1.0)
    return landscape(trial)


run_to_budget(study, objective, budget)
"""
# 4 initial trials, then generations of 5 (one elite, two variants, three offspring).
BUDGET = 14


def worker(url: str, kill: str = "-", budget: int = BUDGET) -> int:
    command = [sys.executable, "-c", _WORKER, url, str(budget), kill]
    return subprocess.run(command, cwd=REPO, timeout=300).returncode


def by_place(trials: list[optuna.trial.FrozenTrial]) -> dict[tuple[int, int], dict]:
    """Params of each COMPLETE trial by its generation and slot."""
    places = {}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            lineage = t.system_attrs[LINEAGE_KEY]
            places[(lineage["generation"], lineage["slot"])] = t.params
    return places


def test_a_trial_killed_while_drawing_its_genes_is_retried_with_the_same_genes(
    tmp_path: Path, new_storage_url: str
) -> None:
    # Killed after 3 of 7 genes in generation 1 and after 5 in generation 2 (offspring slots):
    # the retries drew the missing genes from the independent streams, and every later
    # generation bred from other genotypes than an uninterrupted run.
    url = new_storage_url
    assert worker(url, kill="6:3") == 9
    assert worker(url, kill="12:5") == 9
    assert worker(url) == 0
    straight = f"sqlite:///{tmp_path / 'straight.db'}"
    assert worker(straight) == 0
    trials = load(url, "retries").trials
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [6, 12]
    expected = by_place(load(straight, "retries").trials)
    assert len(expected) == BUDGET
    resumed = by_place(trials)
    assert {p for p in expected if resumed.get(p) != expected[p]} == set()


def test_a_worker_killed_between_failing_a_dead_trial_and_retrying_it(
    new_storage_url: str,
) -> None:
    url = new_storage_url
    assert worker(url, kill="2:4", budget=BUDGET) == 9  # trial 2 dies in its generation 0
    # The next worker fails the dead trial, then dies before creating its retry.
    assert worker(url, kill="DIE_BEFORE_RETRY") == 7
    dead = load(url, "retries").trials[2]
    assert dead.state == TrialState.FAIL
    assert [t.number for t in load(url, "retries").trials] == [0, 1, 2]  # and no retry
    assert worker(url) == 0
    trials = load(url, "retries").trials
    retries = [t for t in trials if 2 in t.system_attrs.get("retry_history", [])]
    assert [t.number for t in retries] == [3], "not exactly one retry, at once"
    (retry,) = retries
    assert retry.state == TrialState.COMPLETE
    assert retry.system_attrs[LINEAGE_KEY] == dead.system_attrs[LINEAGE_KEY]  # its own slot
    study = load(url, "retries")
    population = study._storage.get_study_system_attrs(study._study_id)["biotune:population:0"]
    assert 2 not in population and 3 in population
    assert sum(t.state == TrialState.COMPLETE for t in trials) == BUDGET


def _dead_trial(url: str) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    """A study whose trial 0 was failed as dead (the marker written) and never retried."""
    storage = open_storage(url, heartbeat_interval=60)
    study = optuna.create_study(storage=storage, study_name="retries")
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storage.set_trial_system_attr(trial._trial_id, STALE_KEY, 0.0)
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return study, study._storage.get_trial(trial._trial_id)


def test_two_workers_retrying_one_dead_trial_at_once_make_one_retry(
    new_storage_url: str,
) -> None:
    # Both create a candidate before either looks: trial creation is serialised, so the later
    # one always sees the earlier and gives way; the earlier one keeps its candidate.
    study, dead = _dead_trial(new_storage_url)
    other = optuna.load_study(
        study_name="retries", storage=open_storage(new_storage_url, heartbeat_interval=60)
    )
    first, second = RetryDeadTrial(max_retry=MAX_RETRY), RetryDeadTrial(max_retry=MAX_RETRY)
    a = first.create_candidate(study._storage, study._study_id, dead)
    b = second.create_candidate(other._storage, other._study_id, dead)
    assert a is not None and b is not None
    second.keep_or_give_way(other._storage, other._study_id, b, dead.number)
    first.keep_or_give_way(study._storage, study._study_id, a, dead.number)
    trials = load(new_storage_url, "retries").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING, TrialState.FAIL]
    assert DUPLICATE_RETRY_KEY in trials[2].system_attrs
    assert STALE_KEY not in trials[1].system_attrs  # a FAIL of its own would be its own
    # A later sweep, or Optuna's callback again, finds the retry and makes none.
    RetryDeadTrial(max_retry=MAX_RETRY)(study, dead)
    study._storage._get_stale_trial_ids(study._study_id)  # the sweep of every stale check
    assert len(load(new_storage_url, "retries").trials) == 3
    # The retry runs in trial 0's place; the candidate that gave way never enters the search.
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))] == [1]
