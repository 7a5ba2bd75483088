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

import datetime
from pathlib import Path
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.studies import _heartbeat
from biotune_optuna.studies._heartbeat import HEARTBEAT_KEY
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._heartbeat import MAX_RETRY
from biotune_optuna.studies._heartbeat import RetryDeadTrial
from biotune_optuna.studies._heartbeat import STALE_KEY
from biotune_optuna.studies._heartbeat import this_process
from biotune_optuna.studies._heartbeat import WORKER_KEY
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.trials import DUPLICATE_RETRY_KEY
from tests.reliability._user import load
from tests.reliability._user import REPO


# A worker: BioTune (4 + 1 elite, seeded) on the synthetic landscape to ``budget`` trials.
# KILL=number:k exits at once (no cleanup, like SIGKILL) when trial ``number``'s first attempt
# has suggested k of its 7 genes; DIE_BEFORE_RETRY exits between failing a dead trial and
# creating its retry.
_WORKER = """
import os, sys
import optuna
import pytest
from biotune_optuna import BioTuneSampler
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies import _heartbeat
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._synthetic import SyntheticFineTuning

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


def _the_retry_runs_as(study: optuna.Study, number: int) -> None:
    """The next trial of the study runs the waiting retry: trial ``number`` completes, alone."""
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))] == [number]


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
    _the_retry_runs_as(study, 1)


def test_a_worker_killed_while_its_candidate_gives_way_leaves_the_study_running(
    new_storage_url: str,
) -> None:
    # Issue 25 review, item 1: a worker killed between marking its candidate as a duplicate
    # and failing it left a RUNNING duplicate under a dead process. The next check took it for
    # dead and retried it: the new candidate inherited the duplicate mark, held no place, and
    # an AssertionError broke that check and every later one.
    study, dead = _dead_trial(new_storage_url)
    storage = study._storage
    kept, dying = RetryDeadTrial(max_retry=MAX_RETRY), RetryDeadTrial(max_retry=MAX_RETRY)
    a = kept.create_candidate(storage, study._study_id, dead)
    assert a is not None
    kept.keep_or_give_way(storage, study._study_id, a, dead.number)
    b = dying.create_candidate(storage, study._study_id, dead)
    assert b is not None
    storage.set_trial_system_attr(b, DUPLICATE_RETRY_KEY, 1)  # ... and killed here
    me = this_process()
    storage.set_trial_system_attr(b, WORKER_KEY, {**me, "start": "an earlier owner's"})
    for _ in range(2):  # the check that finds it, then a later one
        optuna.storages.fail_stale_trials(study)
    trials = load(new_storage_url, "retries").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING, TrialState.FAIL]
    _the_retry_runs_as(study, 1)


def test_the_check_before_each_trial_reads_all_trials_once_per_dead_trial(
    new_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 25 review, item 2: once a trial had died, every check for dead trials (before
    # every trial of every worker) read the whole study, twice more for a trial that had used
    # up its retries. Now a dead trial is settled once; later checks read the FAILED trials.
    study, dead = _dead_trial(new_storage_url)
    storage = study._storage
    RetryDeadTrial(max_retry=MAX_RETRY)(study, dead)  # retried as it was failed: trial 1
    exhausted = storage.create_new_trial(study._study_id)  # a retry with no retry left
    history = [100 + attempt for attempt in range(MAX_RETRY)]  # its earlier attempts
    storage.set_trial_system_attr(exhausted, "retry_history", history)
    storage.set_trial_system_attr(exhausted, "failed_trial", 0)
    storage.set_trial_system_attr(exhausted, STALE_KEY, 0.0)
    storage.set_trial_state_values(exhausted, TrialState.FAIL)
    backend = storage if isinstance(storage, HeartbeatJournalStorage) else storage._backend
    reads: list[object] = []
    read_all = backend.get_all_trials

    def counted(*args: object, **kwargs: object) -> list[optuna.trial.FrozenTrial]:
        reads.append(kwargs.get("states"))
        return read_all(*args, **kwargs)

    monkeypatch.setattr(backend, "get_all_trials", counted)
    for _ in range(10):
        optuna.storages.fail_stale_trials(study)
    assert reads.count(None) <= 1, f"{reads.count(None)} full reads in 10 checks"
    assert len(load(new_storage_url, "retries").trials) == 3  # and no retry made


def _let_time_pass(storage: optuna.storages.BaseStorage, seconds: float) -> None:
    """Move every recorded heartbeat ``seconds`` into the past, as if no one beat meanwhile."""
    if isinstance(storage, HeartbeatJournalStorage):
        for study in storage.get_all_studies():
            for trial in storage.get_all_trials(study._study_id, deepcopy=False):
                beat = trial.system_attrs.get(HEARTBEAT_KEY)
                if beat is not None and not trial.state.is_finished():
                    storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, beat - seconds)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage._backend.scoped_session, True) as session:
        for row in session.query(models.TrialHeartbeatModel).all():
            row.heartbeat -= datetime.timedelta(seconds=seconds)


def test_a_candidate_orphaned_on_another_host_is_failed_and_retried(
    new_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 25 review, item 3: a worker of another host killed between creating its retry
    # candidate and keeping it left a RUNNING candidate without heartbeat: only its own host
    # could tell it was dead, so it ran for ever and the dead trial was never retried.
    study, dead = _dead_trial(new_storage_url)
    elsewhere = {**this_process(), "host": "another-host", "boot": "another-boot"}
    monkeypatch.setattr(_heartbeat, "this_process", lambda: elsewhere)
    orphan = RetryDeadTrial(max_retry=MAX_RETRY).create_candidate(
        study._storage, study._study_id, dead
    )  # ... and killed here
    monkeypatch.undo()
    assert orphan is not None
    optuna.storages.fail_stale_trials(study)
    assert study._storage.get_trial(orphan).state == TrialState.RUNNING  # within its grace
    _let_time_pass(study._storage, 3600)
    optuna.storages.fail_stale_trials(study)
    trials = load(new_storage_url, "retries").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING]
    assert trials[2].system_attrs["failed_trial"] == 0  # the dead trial's retry, at last
    assert trials[2].params == dead.params
    _the_retry_runs_as(study, 2)


def test_a_retry_that_waited_long_is_not_taken_for_dead_as_a_worker_takes_it(
    new_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry keeps its candidate's beat (and process) while it waits: a worker taking it a
    # day later must not be failed by another worker's check before the trial's first beat.
    study, dead = _dead_trial(new_storage_url)
    gone = {**this_process(), "start": "an earlier owner's"}  # its creator, exited since
    monkeypatch.setattr(_heartbeat, "this_process", lambda: gone)
    RetryDeadTrial(max_retry=MAX_RETRY)(study, dead)
    monkeypatch.undo()
    _let_time_pass(study._storage, 24 * 3600)
    storage = study._storage
    backend = storage if isinstance(storage, HeartbeatJournalStorage) else storage._backend
    # The taking worker is looked at right after the state change: before it records its
    # process and starts beating.
    write = backend.set_trial_system_attr
    monkeypatch.setattr(
        backend,
        "set_trial_system_attr",
        lambda trial_id, key, value: None if key == WORKER_KEY else write(trial_id, key, value),
    )
    monkeypatch.setattr(backend._beats, "start", lambda trial_id, interval: None)
    assert storage.set_trial_state_values(study.trials[1]._trial_id, TrialState.RUNNING)
    other = open_storage(new_storage_url, heartbeat_interval=60)
    stale = other._get_stale_trial_ids(study._study_id)
    assert stale == [] and study._storage.get_trial(study.trials[1]._trial_id).state == (
        TrialState.RUNNING
    )
