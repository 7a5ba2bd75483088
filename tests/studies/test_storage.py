"""Storage URLs: checked in one line, never created to look, heartbeats on every kind."""

from __future__ import annotations

from collections import Counter
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna import BioTuneSampler
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.studies import _masking
from biotune_optuna.studies._heartbeat import HEARTBEAT_KEY
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._heartbeat import RetryDeadTrial
from biotune_optuna.studies._storage import _scrubbed
from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import masked_data
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import remember_passwords
from biotune_optuna.studies._storage import storage_problem
from biotune_optuna.studies._storage import StorageError
from biotune_optuna.studies._synthetic import SyntheticFineTuning


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("study.db", "not a storage URL"),
        ("sqlite:/study.db", "sqlite:///<path>"),
        ("postgres://u@h/db", "unknown database 'postgres'"),
        ("oracle+nodriver://u@h/db", "unknown database"),
        ("journal:/x.log", "journal:///<path>"),
        ("journal:///", "needs a file path"),
        ("http://[::1/x", "can parse"),
        ("sqlite:///:memory:", "in-memory SQLite"),
    ],
)
def test_malformed_urls_are_named_without_connecting(url: str, problem: str) -> None:
    found = storage_problem(url)
    assert found is not None and problem in found, found


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///x.db",
        "sqlite:////abs/x.db",
        "journal:///x.log",
        "postgresql://u:secret@127.0.0.1:5432/db",
        "postgresql+psycopg2://u@h/db",
    ],
)
def test_well_formed_urls_pass(url: str) -> None:
    assert storage_problem(url) is None


def test_messages_hide_passwords() -> None:
    assert "secret" not in display_storage("postgresql://u:secret@127.0.0.1/db")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            'storage = "postgresql+psycopg2://u:s/e:c@h/db"',
            'storage = "postgresql+psycopg2://u:***@h/db"',
        ),
        ("mysql://u:p%40ss@h/db and sqlite:///x.db", "mysql://u:***@h/db and sqlite:///x.db"),
        ("postgresql://u:unencoded@at@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=secret",
            "postgresql://u@h/db?sslmode=require&password=***",
        ),
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://h:5432/db", "postgresql://h:5432/db"),
        ("journal:///x.log", "journal:///x.log"),
    ],
)
def test_urls_in_any_text_have_their_password_masked(text: str, masked: str) -> None:
    assert masked_text(text) == masked
    assert display_storage(text.split('"')[1] if '"' in text else text.split()[0]) in masked


def test_json_data_keeps_its_keys_numbers_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """A remembered password such as ``123`` or ``seed`` is masked in a URL of a string value,
    never in keys, numbers or file names: the JSON files are read back (retrain, baselines)."""
    monkeypatch.setattr(_masking, "_KNOWN_PASSWORDS", set())
    remember_passwords("postgresql://u:123@h/db")
    remember_passwords("postgresql://u:seed@h/db")
    rows = {
        "rows": [
            {
                "label": "BioTune (best plan)",
                "seed": 1123,
                "test_macro_accuracy": 0.81234,
                "test_macro_accuracy_per_seed": [0.81234, 0.1235],
                "best_weights": "model_seed1.pt",
                "search_study": "moved from postgresql://u:123@h/db",
                "note": "line one\nseed 123 here",
            }
        ],
        "table": ["seed"],
    }
    text = json.dumps(masked_data(rows), indent=2)
    row = json.loads(text)["rows"][0]
    assert row["seed"] == 1123 and row["test_macro_accuracy"] == 0.81234
    assert row["test_macro_accuracy_per_seed"] == [0.81234, 0.1235]
    assert row["best_weights"] == "model_seed1.pt" and json.loads(text)["table"] == ["seed"]
    assert row["search_study"] == "moved from postgresql://u:***@h/db"
    assert row["note"] == "line one\n*** *** here"
    assert "0.8***4" in masked_text("0.81234")  # free text: scrubbed as before


def test_a_driver_error_quoting_the_password_is_scrubbed() -> None:
    with pytest.raises(StorageError) as error:
        open_storage("postgresql://u:hunter2pw@127.0.0.1:1/db")
    assert "hunter2pw" not in str(error.value)
    assert _scrubbed("bad port 'hunter2pw'", "postgresql://u:hunter2pw@h/db") == "bad port '***'"


def test_files_that_are_not_storages_are_refused_and_left_alone(tmp_path: Path) -> None:
    garbage = tmp_path / "study.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    with pytest.raises(StorageError, match="is not an SQLite database"):
        open_storage(f"sqlite:///{garbage}")
    assert garbage.read_bytes() == b"not a database at all\n" * 100
    log = tmp_path / "study.log"
    log.write_text("garbage\n")
    with pytest.raises(StorageError, match="is not an Optuna journal"):
        open_storage(f"journal:///{log}")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StorageError, match="is not a file"):
        open_storage(f"sqlite:///{tmp_path / 'dir.db'}")
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"journal:///{tmp_path / 'no' / 'x.log'}")
    with pytest.raises(StorageError, match="no storage file"):
        open_storage(f"sqlite:///{tmp_path / 'absent.db'}", create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.db", "study.db", "study.log"]


def test_an_unreachable_server_is_one_line() -> None:
    start = time.monotonic()
    with pytest.raises(StorageError) as error:
        open_storage("postgresql://nobody:pw@127.0.0.1:1/nothing")
    message = str(error.value)
    assert "\n" not in message and "cannot open storage" in message and "pw@" not in message
    assert time.monotonic() - start < 30


def _dead_trial(storage: optuna.storages.BaseStorage) -> tuple[optuna.Study, int]:
    """A BioTune study whose trial 3 was asked, given its genes, and never heard of again."""
    study = optuna.create_study(
        storage=storage,
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
        direction="maximize",
    )
    study.optimize(SyntheticFineTuning(seed=0), n_trials=3)
    trial = study.ask()
    SyntheticFineTuning(seed=0).score(
        {n: trial.suggest_float(n, 0, 1) for n in SyntheticFineTuning().param_names}
    )
    return study, trial._trial_id


def test_a_silent_journal_trial_is_failed_and_retried_with_its_genes(tmp_path: Path) -> None:
    storage = open_storage(f"journal:///{tmp_path / 's.log'}", heartbeat_interval=1)
    assert isinstance(storage, HeartbeatJournalStorage)
    study, trial_id = _dead_trial(storage)
    storage.record_heartbeat(trial_id)
    optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(trial_id).state == TrialState.RUNNING  # it beat just now
    storage.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time() - 10)
    optuna.storages.fail_stale_trials(study)
    dead = storage.get_trial(trial_id)
    retry = study.get_trials(states=(TrialState.WAITING,))
    assert dead.state == TrialState.FAIL and len(retry) == 1
    assert retry[0].params == dead.params and len(dead.params) == 7
    assert retry[0].system_attrs[LINEAGE_KEY] == dead.system_attrs[LINEAGE_KEY]
    # Its own beat, written as it was created (not the dead trial's): it looks alive.
    assert retry[0].system_attrs[HEARTBEAT_KEY] > dead.system_attrs[HEARTBEAT_KEY]
    optuna.storages.fail_stale_trials(study)  # nothing stale any more: no second retry
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_the_retried_trial_takes_the_dead_ones_place_in_the_search() -> None:
    storage = optuna.storages.InMemoryStorage()
    study, trial_id = _dead_trial(storage)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    RetryDeadTrial(max_retry=3)(study, storage.get_trial(trial_id))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=1)  # the retry runs first
    trials = study.get_trials(deepcopy=False)
    dead, retry = trials[3], trials[4]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.system_attrs["failed_trial"] == dead.number
    # Generation 0 (4 slots) closed with the retry in the dead trial's slot: the dead FAILED
    # trial is not a member, so it is not in the stored population.
    study.optimize(SyntheticFineTuning(seed=0), n_trials=1)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    population = attrs["biotune:population:0"]
    assert dead.number not in population and retry.number in population
    assert len(population) == 4


def test_a_retry_that_finishes_after_its_generation_closed_joins_the_next_one() -> None:
    # Another host restarted inside the grace period: the dead trial's retry waits while other
    # workers fill more slots and close its generation. Its result then competes in the next
    # generation's closing, instead of joining no population (a wasted retry).
    storage = optuna.storages.InMemoryStorage()
    study, trial_id = _dead_trial(storage)  # generation 0 of 4: slots 0-2 done, slot 3 dead
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    RetryDeadTrial(max_retry=3)(study, storage.get_trial(trial_id))
    landscape = SyntheticFineTuning(seed=0)
    for _ in range(2):  # what other workers ask meanwhile (no worker pops the retry yet)
        trial = optuna.trial.Trial(study, storage.create_new_trial(study._study_id))
        study.tell(trial, landscape(trial))
    fillers = study.get_trials(deepcopy=False)[-2:]
    assert [t.system_attrs[LINEAGE_KEY]["generation"] for t in fillers] == [0, 1]
    study.optimize(landscape, n_trials=8)  # the retry runs first (late), then generation 1
    trials = study.get_trials(deepcopy=False)
    retry = trials[4]  # created as the dead trial failed
    assert retry.state == TrialState.COMPLETE and retry.system_attrs["failed_trial"] == 3
    assert retry.system_attrs[LINEAGE_KEY]["generation"] == 0
    attrs = storage.get_study_system_attrs(study._study_id)
    assert retry.number not in attrs["biotune:considered:0"]
    assert retry.number in attrs["biotune:considered:1"]
    population = [trials[n] for n in attrs["biotune:population:1"]]
    assert retry in population or retry.value <= min(t.value for t in population)


def test_sampler_state_in_storage_is_json(tmp_path: Path) -> None:
    storage = open_storage(f"journal:///{tmp_path / 's.log'}")
    study = optuna.create_study(
        storage=storage, sampler=BioTuneSampler(seed=0), direction="maximize"
    )
    study.optimize(SyntheticFineTuning(seed=0), n_trials=30)
    for line in (tmp_path / "s.log").read_text().splitlines():
        json.loads(line)  # the journal is JSON lines; a pickle would not parse
    ours = {
        k: v
        for k, v in study._storage.get_study_system_attrs(study._study_id).items()
        if k.startswith("biotune")
    }
    assert ours and json.loads(json.dumps(ours)) == ours
    for trial in study.trials:
        assert (
            json.loads(json.dumps(trial.system_attrs[LINEAGE_KEY]))
            == trial.system_attrs[LINEAGE_KEY]
        )


@pytest.mark.postgres
def test_a_postgresql_study_opens_with_heartbeats(postgres_url: str) -> None:
    storage = open_storage(postgres_url, heartbeat_interval=5)
    study = optuna.create_study(storage=storage, sampler=BioTuneSampler(seed=0))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=3)
    assert storage.get_heartbeat_interval() == 5
    assert len(optuna.load_study(study_name=study.study_name, storage=postgres_url).trials) == 3


OPEN_AT_ONCE = """
import sys, time
import optuna
from biotune_optuna.studies._storage import open_storage
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
study = optuna.create_study(
    study_name="at-once", storage=open_storage(url, heartbeat_interval=60), load_if_exists=True
)
study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
"""


def test_workers_that_open_a_new_storage_at_once_all_start(
    tmp_path: Path, new_storage_url: str
) -> None:
    # Found by CI: a reader opened the fresh SQLite file while `run` was creating its tables,
    # and `run` stopped with "table study_system_attributes already exists".
    url = new_storage_url
    start = time.time() + 8  # after every interpreter has imported optuna
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, "\n".join(outputs)
    trials = optuna.load_study(study_name="at-once", storage=open_storage(url)).trials
    assert sorted(trial.number for trial in trials) == list(range(6))
    assert all(trial.state == TrialState.COMPLETE for trial in trials)


_ASK_AND_DIE = """
import os, signal, sys
import optuna
from biotune_optuna.studies._storage import open_storage
storage = open_storage(sys.argv[1], heartbeat_interval=60)
study = optuna.load_study(study_name="beat", storage=storage)
study.ask()  # creates a trial, or pops a waiting retry; the sampler has not proposed yet
os.kill(os.getpid(), signal.SIGKILL)
"""


def _ask_and_die(url: str) -> None:
    """A worker process that starts a trial and is killed with SIGKILL before its sampler
    proposes (before Optuna's heartbeat thread starts)."""
    done = subprocess.run([sys.executable, "-c", _ASK_AND_DIE, url], timeout=120)
    assert done.returncode == -signal.SIGKILL


def test_a_worker_killed_before_its_first_beat_is_failed_and_retried(
    tmp_path: Path, new_storage_url: str
) -> None:
    # Optuna beats only once ``ask`` has returned; a worker killed while its sampler proposed
    # left a RUNNING trial without a beat, which nothing ever failed. Its process is gone from
    # this host, so the next worker here fails and retries it at once (no grace period).
    url = new_storage_url
    storage = open_storage(url, heartbeat_interval=60)
    study = optuna.create_study(storage=storage, study_name="beat")
    _ask_and_die(url)
    (created,) = study.get_trials(states=(TrialState.RUNNING,))
    optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(created._trial_id).state == TrialState.FAIL
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    # A worker pops the retry (WAITING to RUNNING) and is killed before beating too.
    _ask_and_die(url)
    assert storage.get_trial(retry._trial_id).state == TrialState.RUNNING
    optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(retry._trial_id).state == TrialState.FAIL
    (second,) = study.get_trials(states=(TrialState.WAITING,))
    assert second.system_attrs["retry_history"] == [0, 1]
    # Trials that do not start running (enqueued, added finished) get no beat.
    study.enqueue_trial({"x": 0.5})
    study.add_trial(optuna.trial.create_trial(value=1.0))
    optuna.storages.fail_stale_trials(study)
    assert Counter(t.state for t in study.get_trials()) == {
        TrialState.FAIL: 2,
        TrialState.WAITING: 2,
        TrialState.COMPLETE: 1,
    }


def test_the_cause_under_optunas_words_is_named(tmp_path: Path) -> None:
    """Optuna's "invalid data in the commit" over SQLite's own error, and a journal's write
    on a full disk: the cause, the file and the cure in one line."""
    import errno
    import sqlite3

    import sqlalchemy.exc

    from biotune_optuna.studies._storage import storage_failure
    from biotune_optuna.studies._storage import StorageFailure

    def raised(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except sqlite3.Error as exc:
                raise sqlalchemy.exc.OperationalError("INSERT ...", {}, exc) from exc
        except sqlalchemy.exc.SQLAlchemyError as exc:
            try:
                raise optuna.exceptions.StorageInternalError("invalid data in the commit") from exc
            except optuna.exceptions.StorageInternalError as internal:
                return internal
        raise AssertionError

    db = tmp_path / "s.db"
    open_storage(f"sqlite:///{db}")
    full = storage_failure(raised(sqlite3.OperationalError("database or disk is full")))
    assert isinstance(full, StorageFailure) and f"the disk of {db} is full" in str(full)
    damaged = storage_failure(raised(sqlite3.DatabaseError("database disk image is malformed")))
    assert isinstance(damaged, StorageError) and f"sqlite3 {db} .recover" in str(damaged)
    log = tmp_path / "s.log"
    open_storage(f"journal:///{log}")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as exc:
        journal_full = storage_failure(exc)
    assert isinstance(journal_full, StorageFailure) and f"the disk of {log} is full" in str(
        journal_full
    )
    assert storage_failure(RuntimeError("something else")) is None


def test_only_a_study_that_is_cheap_to_rebuild_skips_waiting_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replayed table's storage commits without fsync; every other study waits for it."""
    import sqlalchemy

    def synchronous(storage: object) -> int:
        engine = storage._backend.engine if hasattr(storage, "_backend") else storage.engine
        with engine.connect() as connection:
            return int(connection.execute(sqlalchemy.text("PRAGMA synchronous")).scalar())

    durable = open_storage(f"sqlite:///{tmp_path}/live.db")
    quick = open_storage(f"sqlite:///{tmp_path}/replay.db", durable=False)
    assert synchronous(durable) == 2  # FULL, SQLite's default
    assert synchronous(quick) == 0  # OFF

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    for name, flag in (("live", True), ("replay", False)):
        storage = open_storage(f"journal:///{tmp_path}/{name}.journal", durable=flag)
        before = len(synced)
        optuna.create_study(storage=storage, study_name=name).optimize(
            lambda t: t.suggest_float("x", 0, 1), n_trials=3
        )
        assert (len(synced) > before) is flag, name
