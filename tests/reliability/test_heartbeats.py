"""Live trials are never taken for dead, dead ones always are, and workers die with ``run``.

Issue 18, items 5, 8 and 9, as a user meets them: beats that go on while a worker is busy, a
worker whose trial another worker failed under it (it drops the trial and carries on), a dead
trial left RUNNING after a rerun that met its budget, and ``run --workers`` killed with SIGKILL
or SIGTERM.
"""

from __future__ import annotations

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
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies._heartbeat import HEARTBEAT_KEY
from biotune_optuna.studies._heartbeat import heartbeat_problem
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._heartbeat import seconds_since_beat
from biotune_optuna.studies._heartbeat import WORKER_KEY
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import StorageError
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from tests.reliability._user import load as load_study
from tests.reliability._user import REPO
from tests.reliability._user import run_cli
from tests.reliability._user import start_workers


SPEC = """
[study]
name = "beats"
storage = "{storage}"
heartbeat_interval = 1
grace_period = 10
[budget]
trials = {trials}
[objective]
kind = "synthetic"
"""


def load(url: str) -> optuna.Study:
    return load_study(url, "beats")


def test_beats_go_on_while_the_worker_is_busy_elsewhere(new_storage_url: str) -> None:
    # Optuna's own beats wait for the worker's main thread; these come from a thread of the
    # trial's own, from the moment the trial exists (here: the sampler never even ran).
    storage = open_storage(new_storage_url, heartbeat_interval=1)
    study = optuna.create_study(storage=storage, study_name="busy")
    trial = study.ask()
    time.sleep(3.5)  # a slow sampler, a loaded storage: nothing here beats
    frozen = storage.get_trial(trial._trial_id)
    silent = seconds_since_beat(storage, frozen)
    assert silent is not None and silent < 2.5, silent
    assert frozen.system_attrs[WORKER_KEY]["pid"] == os.getpid()
    study.tell(trial, 1.0)
    time.sleep(1.5)
    finished = storage.get_trial(trial._trial_id)
    assert seconds_since_beat(storage, finished) >= 1.0  # beats stop with the trial


def test_a_grace_period_too_short_for_the_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="grace_period must be at least 10 s"):
        open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1, grace_period=3)
    with pytest.raises(ValueError, match="at least 120 s"):
        HeartbeatJournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")),
            heartbeat_interval=60,
            grace_period=90,
        )
    assert "must be in [1, 3600]" in str(heartbeat_problem(2**62, 2**63))
    assert heartbeat_problem(60, 120) is None and heartbeat_problem(1, 10) is None
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("how", ["returns", "writes"])
def test_a_worker_whose_trial_was_failed_under_it_drops_it_and_carries_on(
    new_storage_url: str, how: str
) -> None:
    # Under load another worker may take a live trial for dead and fail it; the worker that
    # still runs it crashed with `Cannot tell a FAIL trial` (or UpdateFinishedTrialError).
    url = new_storage_url
    study = optuna.create_study(
        storage=open_storage(url, heartbeat_interval=60),
        study_name="taken",
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
        direction="maximize",
    )
    other_worker = open_storage(url, heartbeat_interval=60)
    landscape = SyntheticFineTuning(seed=0)

    def objective(trial: optuna.Trial) -> float:
        value = landscape(trial)
        if trial.number == 2:
            other_worker.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            if how == "writes":
                trial.set_user_attr("after", 1)  # UpdateFinishedTrialError in the objective
        return value

    said: list[str] = []
    run_to_budget(study, objective, 6, say=said.append)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 6 and states[2] == TrialState.FAIL
    assert len(said) == 1 and said[0].startswith("trial 2 was taken for dead")


_ASK_AND_DIE = """
import os, signal, sys
import optuna
from biotune_optuna.studies._storage import open_storage
storage = open_storage(sys.argv[1], heartbeat_interval=1)
study = optuna.load_study(study_name="beats", storage=storage)
study.ask()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_dead_trial_is_retried_even_when_the_budget_is_met(tmp_path: Path) -> None:
    # A rerun that met its budget never checked for dead trials: trial 6 stayed RUNNING.
    url = f"journal:///{tmp_path / 'beats.log'}"
    spec = tmp_path / "beats.toml"
    spec.write_text(SPEC.format(storage=url, trials=6))
    assert run_cli("run", str(spec), "-q").returncode == 0
    killed = subprocess.run([sys.executable, "-c", _ASK_AND_DIE, url], cwd=REPO, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    # Another host's trial, silent for longer than the grace period.
    storage = open_storage(url)
    study = load(url)
    elsewhere = storage.create_new_trial(study._study_id)
    storage.set_trial_system_attr(elsewhere, WORKER_KEY, {"host": "elsewhere", "pid": 1})
    storage.set_trial_system_attr(elsewhere, HEARTBEAT_KEY, time.time() - 500)
    status = run_cli("status", str(spec))
    assert "running     trial 6: dead: its process on this host is gone" in status.stdout
    assert "running     trial 7: dead: no heartbeat for 50" in status.stdout
    done = run_cli("run", str(spec), "-q")
    assert done.returncode == 0, done.stderr
    trials = load(url).get_trials(deepcopy=False)
    assert [t.state for t in trials[6:8]] == [TrialState.FAIL, TrialState.FAIL]
    retried = sorted(
        t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs
    )
    assert retried == [6, 7]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert "running" not in run_cli("status", str(spec)).stdout.split("best")[-1]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.extend(int(p) for p in text.split())
    return found


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"  # a zombie nobody reaped is gone too


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_stop_with_their_parent(tmp_path: Path, kill: signal.Signals) -> None:
    url = f"sqlite:///{tmp_path / 'beats.db'}"
    spec = tmp_path / "beats.toml"
    spec.write_text(SPEC.format(storage=url, trials=100000))
    parent = start_workers(spec, output=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and (len(workers) < 2 or len(load(url).trials) < 10):
        time.sleep(0.5)
        workers = _children(parent.pid)
        if not (tmp_path / "beats.db").exists():
            continue
    assert len(workers) == 2, workers
    parent.send_signal(kill)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(_gone(w) for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if not _gone(w)]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their parent"
    # The same command resumes; the workers' dead trials are retried at once.
    finished = len(load(url).get_trials(states=(TrialState.COMPLETE,)))
    spec.write_text(SPEC.format(storage=url, trials=finished + 2))
    assert run_cli("run", str(spec), "-q").returncode == 0
    left = load(url).get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert not left, json.dumps([t.number for t in left])
