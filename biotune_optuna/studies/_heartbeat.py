"""Heartbeats of running trials: who runs a trial, whether it is alive, and its retry.

A trial that ``run`` works on beats from the moment it exists until it finishes, from a thread
of its own (:class:`TrialBeats`), so a worker busy in the sampler or waiting for a loaded
storage never looks dead. A trial whose worker stopped beating for ``grace_period`` seconds is
failed by the next worker that starts a trial and retried, with the same parameters and the
same place in BioTune's search, by :class:`RetryDeadTrial` (Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`).

Each running trial also records which process runs it (:data:`WORKER_KEY`: host, boot, PID
namespace, PID and the process's start time). A worker on the same host therefore knows at
once that a trial whose process is gone is dead, without waiting out the grace period: a
command restarted after a crash or a kill retries its dead trial first, in its own slot,
before it starts anything new. Trials of other hosts are judged by their heartbeats alone.

Optuna fails a dead trial, then creates its retry: a worker killed between the two left a
FAILED trial that nothing retried. Here a dead trial is marked (:data:`STALE_KEY`) before it is
failed, and every check for dead trials (at start-up too, and before each trial) first retries
each marked FAILED trial that no trial retries yet. A retry is created as a candidate that is
kept only if no earlier retry of the same trial exists (:class:`RetryDeadTrial`), so two workers
retrying one dead trial at once leave one retry.

RDB storages have heartbeats in Optuna (:class:`HeartbeatRDBStorage` adds the above); the
journal gets them here (:class:`HeartbeatJournalStorage`). Imports without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import contextlib
import copy
import datetime
import os
import socket
import threading
import time
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.studies._optuna_bridge import BaseHeartbeat
from biotune_optuna.studies._optuna_bridge import rdb_backend
from biotune_optuna.studies._optuna_bridge import rdb_heartbeat_row
from biotune_optuna.studies._optuna_bridge import storage_of
from biotune_optuna.studies._optuna_bridge import study_id as study_id_of
from biotune_optuna.studies._optuna_bridge import trial_id as trial_id_of
from biotune_optuna.trials import DUPLICATE_RETRY_KEY
from biotune_optuna.trials import FAILED_TRIAL_KEY
from biotune_optuna.trials import RETRY_HISTORY_KEY


__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "HEARTBEAT_KEY",
    "MAX_GRACE_PERIOD",
    "MAX_HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "MIN_GRACE_PERIOD",
    "STALE_KEY",
    "WORKER_KEY",
    "HeartbeatJournalStorage",
    "HeartbeatRDBStorage",
    "RetryDeadTrial",
    "dead_on_this_host",
    "heartbeat_problem",
    "running_trial_health",
    "seconds_since_beat",
    "shortest_grace_period",
    "this_process",
]

#: Seconds between two heartbeats of a running trial (Optuna's RDBStorage takes the same).
DEFAULT_HEARTBEAT_INTERVAL = 60
#: Seconds without a heartbeat after which a running trial counts as dead: two missed beats.
DEFAULT_GRACE_PERIOD = 2 * DEFAULT_HEARTBEAT_INTERVAL
#: The shortest grace period accepted: under load (many workers on few cores, a busy
#: database) a beat can be seconds late, and a live trial taken for dead is lost work.
MIN_GRACE_PERIOD = 10
#: Bounds that keep the beating thread's waits and the storage's date arithmetic finite.
MAX_HEARTBEAT_INTERVAL = 3600
MAX_GRACE_PERIOD = 7 * 24 * 3600
#: A trial whose worker dies this often is failed for good (its slot gets the worst fitness).
MAX_RETRY = 3
#: Trial system attr with the time of the last heartbeat of a journal trial.
HEARTBEAT_KEY = "biotune:heartbeat"
#: Trial system attr naming the process that runs the trial (see :func:`this_process`).
WORKER_KEY = "biotune:worker"
#: Trial system attr written on a running trial taken for dead just before it is failed (the
#: time): a FAILED trial that carries it and that no trial retries lost its retry.
STALE_KEY = "biotune:failed_as_dead"


def shortest_grace_period(interval: int) -> int:
    """The shortest safe grace period for ``interval``, and the default one: two intervals,
    and at least :data:`MIN_GRACE_PERIOD` seconds."""
    return max(2 * interval, MIN_GRACE_PERIOD)


def heartbeat_problem(interval: Any, grace_period: Any) -> str | None:
    """What is wrong with a heartbeat interval and grace period (``None`` if nothing).

    A beat may come a whole interval late and the storage may take seconds more under load,
    so the grace period must be at least two intervals and at least :data:`MIN_GRACE_PERIOD`.
    """
    for name, value, high in (
        ("heartbeat_interval", interval, MAX_HEARTBEAT_INTERVAL),
        ("grace_period", grace_period, MAX_GRACE_PERIOD),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be an integer number of seconds, got {value!r}"
        if not 1 <= value <= high:
            return f"{name} must be in [1, {high}] seconds, got {value}"
    floor = shortest_grace_period(interval)
    if grace_period < floor:
        return (
            f"grace_period must be at least {floor} s (twice heartbeat_interval = {interval} "
            f"and at least {MIN_GRACE_PERIOD} s), or live trials are taken for dead under "
            f"load; got {grace_period}"
        )
    return None


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> str | None:
    """The start time of live process ``pid`` in clock ticks since boot (Linux); ``None`` if
    there is no such process, or it has exited and waits to be reaped (a zombie)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _pid_namespace() -> str | None:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def this_process() -> dict[str, Any]:
    """Who runs a trial: host, boot id, PID namespace, PID and the process's start time.

    The boot id, namespace and start time make the record exact on Linux: a PID reused by
    another process, a host rebooted, or a container sharing the host's name is never
    mistaken for the trial's own process.
    """
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": _read("/proc/sys/kernel/random/boot_id"),
        "pidns": _pid_namespace(),
        "pid": pid,
        "start": _start_ticks(pid),
    }


def dead_on_this_host(worker: Any, me: dict[str, Any] | None = None) -> bool:
    """Whether the process a trial's :data:`WORKER_KEY` names is known to be gone.

    Only a process of this host, this boot and this PID namespace can be judged; for any
    other the answer is ``False`` (its heartbeats decide).
    """
    me = me if me is not None else this_process()
    if not isinstance(worker, dict) or me["boot"] is None or me["pidns"] is None:
        return False
    if any(worker.get(key) != me[key] for key in ("host", "boot", "pidns")):
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == me["pid"]:
        return worker.get("start") != me["start"]  # this PID's earlier owner
    start = _start_ticks(pid)
    return start is None or start != worker.get("start")


class TrialBeats:
    """One thread per running trial of this process that beats until the trial finishes.

    Optuna beats from ``study.optimize`` only after ``study.ask`` returned, and a worker's
    beat waits for whatever the worker's main thread does meanwhile (proposing parameters,
    reading a journal under load). These beats start when the trial is created, go on while
    the sampler works, and stop when this process finishes the trial, or when another
    process did (it took the trial for dead: nothing left to beat).
    """

    def __init__(self, beat: Callable[[int], None], state_of: Callable[[int], TrialState]):
        self._beat = beat
        self._state_of = state_of
        self._stops: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, trial_id: int, interval: int) -> None:
        with self._lock:
            if trial_id in self._stops:
                return
            stop = self._stops[trial_id] = threading.Event()
        self._beat(trial_id)
        thread = threading.Thread(
            target=self._run, args=(trial_id, interval, stop), daemon=True, name="trial-beats"
        )
        thread.start()

    def beating(self, trial_id: int) -> bool:
        return trial_id in self._stops

    def stop(self, trial_id: int) -> None:
        with self._lock:
            stop = self._stops.pop(trial_id, None)
        if stop is not None:
            stop.set()

    def _run(self, trial_id: int, interval: int, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                if self._state_of(trial_id).is_finished():
                    break
                self._beat(trial_id)
            except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
                break
            except Exception:  # a storage hiccup: the next beat tries again
                continue
        self.stop(trial_id)


class _LiveTrials:
    """Storage mixin: trials beat from creation and record their process; dead trials of
    this host are stale at once (see the module docstring)."""

    def _init_live_trials(self) -> None:
        self._me = this_process()
        # Ids of trials failed as dead known to need no retry from here any more (retried, or
        # retried max_retry times): settled for good, never read in full again.
        self._settled: set[int] = set()
        self._beats = TrialBeats(self._write_beat, lambda tid: self.get_trial(tid).state)  # type: ignore[attr-defined]

    def _write_beat(self, trial_id: int) -> None:
        raise NotImplementedError

    def record_heartbeat(self, trial_id: int) -> None:
        # Optuna's heartbeat thread calls this too; a trial this process beats already is
        # not beaten twice.
        if not self._beats.beating(trial_id):
            self._write_beat(trial_id)

    def _interval(self) -> int | None:
        return self.get_heartbeat_interval()  # type: ignore[attr-defined,no-any-return]

    def _template(self, template_trial: FrozenTrial | None) -> FrozenTrial | None:
        """A new trial's template: one created by ``ask`` records its process as it is made."""
        if template_trial is None and self._interval() is not None:
            return _running_template({WORKER_KEY: self._me})
        return template_trial

    def _created(self, trial_id: int, template_trial: FrozenTrial | None) -> None:
        interval = self._interval()
        running = template_trial is not None and template_trial.state == TrialState.RUNNING
        if interval is None or not running:
            return
        if FAILED_TRIAL_KEY in template_trial.system_attrs:  # type: ignore[union-attr]
            # A retry's candidate is kept (set WAITING) or gives way at once: one beat, so
            # that one whose worker died meanwhile is failed after the grace period on any
            # host (only this host can tell its process is gone).
            self._write_beat(trial_id)
        else:
            self._beats.start(trial_id, interval)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state.is_finished():
            self._beats.stop(trial_id)
        if state == TrialState.RUNNING and self._interval() is not None:
            # A waiting retry keeps its candidate's beat, maybe long past: renewed before the
            # trial runs, or another worker could take it for dead before its first beat.
            self._write_beat(trial_id)
        changed = super().set_trial_state_values(trial_id, state, values)  # type: ignore[misc]
        interval = self._interval()
        if changed and state == TrialState.RUNNING and interval is not None:
            self.set_trial_system_attr(trial_id, WORKER_KEY, self._me)  # type: ignore[attr-defined]
            self._beats.start(trial_id, interval)
        return changed

    def _silent_trial_ids(self, study_id: int) -> list[int]:
        """Running trials whose heartbeat is older than the grace period."""
        raise NotImplementedError

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        # Optuna's ``fail_stale_trials`` fails the trials returned here, then retries them.
        self._retry_lost_trials(study_id)
        stale = set(self._silent_trial_ids(study_id))
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))  # type: ignore[attr-defined]
        for trial in running:
            if dead_on_this_host(trial.system_attrs.get(WORKER_KEY), self._me):
                stale.add(trial_id_of(trial))
        marked = []
        for trial_id in sorted(stale):
            # Finished meanwhile (another worker failed it, or it ended): not ours to fail.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
                self.set_trial_system_attr(trial_id, STALE_KEY, time.time())  # type: ignore[attr-defined]
                marked.append(trial_id)
        return marked

    def _retry_lost_trials(self, study_id: int) -> None:
        """Retry each trial failed as dead that no trial retries (its worker died between
        failing it and retrying it); :class:`RetryDeadTrial` keeps one retry per trial.

        Runs before every trial: only the FAILED trials are read, and all trials only while a
        trial failed as dead is not known to be settled yet (once per dead trial).
        """
        callback = self.get_heartbeat_stale_trial_callback()  # type: ignore[attr-defined]
        if not isinstance(callback, RetryDeadTrial):
            return
        failed = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.FAIL,))  # type: ignore[attr-defined]
        lost = []
        for trial in failed:
            if trial_id_of(trial) in self._settled or STALE_KEY not in trial.system_attrs:
                continue
            if DUPLICATE_RETRY_KEY in trial.system_attrs or callback.exhausted(trial):
                self._settled.add(trial_id_of(trial))
            else:
                lost.append(trial)
        if not lost:
            return
        trials = self.get_all_trials(study_id, deepcopy=False)  # type: ignore[attr-defined]
        retried = {n for t in trials if _is_retry(t) for n in t.system_attrs[RETRY_HISTORY_KEY]}
        for trial in lost:
            if trial.number not in retried:
                callback.retry(self, study_id, copy.deepcopy(trial))  # type: ignore[arg-type]
            self._settled.add(trial_id_of(trial))


def _running_template(system_attrs: dict[str, Any]) -> FrozenTrial:
    """A template that creates a RUNNING trial with ``system_attrs`` in one write."""
    return FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs=dict(system_attrs),
        intermediate_values={},
        trial_id=-1,
    )


class HeartbeatRDBStorage(_LiveTrials, optuna.storages.RDBStorage):
    """Optuna's RDB storage whose trials beat from creation and record their process."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._init_live_trials()

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Optuna's cache in front of an RDB storage creates trials through this method.
        template_trial = self._template(template_trial)
        trial = super()._create_new_trial(study_id, template_trial)
        self._created(trial_id_of(trial), template_trial)
        return trial

    def _write_beat(self, trial_id: int) -> None:
        optuna.storages.RDBStorage.record_heartbeat(self, trial_id)

    def _silent_trial_ids(self, study_id: int) -> list[int]:
        return optuna.storages.RDBStorage._get_stale_trial_ids(self, study_id)


def _is_retry(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is a heartbeat retry that holds its place (not one that gave way)."""
    return bool(trial.system_attrs.get(RETRY_HISTORY_KEY)) and (
        DUPLICATE_RETRY_KEY not in trial.system_attrs
    )


def _first_retry(storage: Any, study_id: int, dead: int) -> FrozenTrial | None:
    """The lowest-numbered retry of trial number ``dead`` that holds its place, if any."""
    trials = storage.get_all_trials(study_id, deepcopy=False)
    retries = [t for t in trials if _is_retry(t) and t.system_attrs[RETRY_HISTORY_KEY][-1] == dead]
    return min(retries, key=lambda t: t.number, default=None)


class RetryDeadTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, made once per dead trial, less what belonged to the
    dead trial's process.

    The retry copies every system attr of the dead trial (its lineage: the same place in
    BioTune's search) but its heartbeat, long stale, which would get the retry taken for dead
    before its own first beat, its process record, naming a process that is gone, the dead
    trial's :data:`STALE_KEY`, and the mark of a candidate that gave way (such a trial, taken
    for dead because its worker died as it gave way, is never retried: the kept one is).

    One retry per dead trial, whoever retries it (the worker that failed it, or a later check
    that finds it without retry) and however many at once: the retry is first created RUNNING,
    as a candidate no worker can take; then the trials are read again, and the candidate is
    kept (set WAITING) only if it is the retry of the dead trial with the lowest number. The
    candidate beats once as it is created, so one whose worker died before keeping it is failed
    (and retried in turn) after the grace period, by a worker of any host.
    Otherwise it gives way: marked with
    :data:`~biotune_optuna.trials.DUPLICATE_RETRY_KEY` and failed, it is never run and never
    part of the search. Storages create trials one at a time (RDB storages lock the study
    row, a journal appends in order), so the later of two candidates always sees the earlier.
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(storage_of(study), study_id_of(study), trial)

    def retry(self, storage: Any, study_id: int, trial: FrozenTrial) -> None:
        """Retry dead ``trial`` unless a retry of it exists or it has been retried
        ``max_retry`` times already."""
        if DUPLICATE_RETRY_KEY in trial.system_attrs:
            return  # a candidate that gave way (or was dying to): the kept one retries
        if _first_retry(storage, study_id, trial.number) is not None:
            return
        candidate = self.create_candidate(storage, study_id, trial)
        if candidate is not None:
            self.keep_or_give_way(storage, study_id, candidate, trial.number)

    def create_candidate(self, storage: Any, study_id: int, trial: FrozenTrial) -> int | None:
        """Create the candidate retry of ``trial`` (its id), or ``None`` past ``max_retry``."""
        attrs = dict(trial.system_attrs)
        for key in (HEARTBEAT_KEY, WORKER_KEY, STALE_KEY, DUPLICATE_RETRY_KEY):
            attrs.pop(key, None)
        if self.exhausted(trial):
            return None
        attrs.setdefault(FAILED_TRIAL_KEY, trial.number)
        attrs[RETRY_HISTORY_KEY] = [*(attrs.get(RETRY_HISTORY_KEY) or ()), trial.number]
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params=dict(trial.params),
            distributions=dict(trial.distributions),
            user_attrs=dict(trial.user_attrs),
            system_attrs={**attrs, WORKER_KEY: this_process()},
            intermediate_values=(
                dict(trial.intermediate_values) if self._inherit_intermediate_values else {}
            ),
            trial_id=-1,
        )
        return int(storage.create_new_trial(study_id, template_trial=template))

    def exhausted(self, trial: FrozenTrial) -> bool:
        """Whether ``trial`` is the last retry ``max_retry`` allows (it gets none)."""
        history = trial.system_attrs.get(RETRY_HISTORY_KEY) or ()
        return self._max_retry is not None and self._max_retry <= len(history)

    def keep_or_give_way(self, storage: Any, study_id: int, candidate: int, dead: int) -> None:
        """Keep ``candidate`` (WAITING) if it is the lowest-numbered retry of trial ``dead``,
        else mark it and fail it."""
        first = _first_retry(storage, study_id, dead)
        if first is not None and trial_id_of(first) == candidate:
            # Its creator may be gone when a worker takes it: no process of its own till then.
            storage.set_trial_system_attr(candidate, WORKER_KEY, None)
            storage.set_trial_state_values(candidate, TrialState.WAITING)
            return
        if first is None:  # not even the candidate holds the place: never leave it RUNNING
            storage.set_trial_state_values(candidate, TrialState.FAIL)
            return
        storage.set_trial_system_attr(candidate, DUPLICATE_RETRY_KEY, first.number)
        storage.set_trial_state_values(candidate, TrialState.FAIL)


class HeartbeatJournalStorage(_LiveTrials, JournalStorage, BaseHeartbeat):
    """A :class:`~optuna.storages.JournalStorage` whose running trials send heartbeats.

    Optuna implements heartbeats for RDB storages only; a trial whose worker died in a journal
    stays RUNNING for ever. Here each running trial records the time of its last beat as a
    system attr (one log line per interval), and a trial silent for ``grace_period`` seconds
    is failed by the next worker that starts a trial, then handed to
    ``heartbeat_stale_trial_callback``, as Optuna does for RDB storages. The journal appends
    every change to one log in order, so only one worker fails a given trial. Clocks are
    compared, so the workers should share one host (as a journal file does anyway).

    Args:
        backend: The journal backend, e.g. :class:`~optuna.storages.journal.JournalFileBackend`.
        heartbeat_interval: Seconds between two beats.
        grace_period: Seconds of silence after which a running trial is stale (default twice
            the interval, at least :data:`MIN_GRACE_PERIOD`).
        heartbeat_stale_trial_callback: Called with each trial failed for being stale.

    Raises:
        ValueError: If the grace period is not safe for the interval
            (:func:`heartbeat_problem`).
    """

    def __init__(
        self,
        backend: Any,
        *,
        heartbeat_interval: int,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        if grace_period is None:
            grace_period = shortest_grace_period(heartbeat_interval)
        problem = heartbeat_problem(heartbeat_interval, grace_period)
        if problem is not None:
            raise ValueError(problem)
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback
        self._init_live_trials()

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        template_trial = self._template(template_trial)
        trial_id = super().create_new_trial(study_id, template_trial)
        self._created(trial_id, template_trial)
        return trial_id

    def _write_beat(self, trial_id: int) -> None:
        # Finished meanwhile (another worker took it for dead): nothing left to beat.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time())

    def _silent_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_KEY)
            if isinstance(beat, (int, float)) and now - beat > self.grace_period:
                stale.append(trial_id_of(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback


def seconds_since_beat(storage: Any, trial: FrozenTrial) -> float | None:
    """Seconds since ``trial`` last beat, from any storage (``None``: it never beat).

    Journal beats are a trial system attr; RDB beats live in Optuna's heartbeat table, read
    here without heartbeats enabled (``status`` opens storages for reading only).
    """
    beat = trial.system_attrs.get(HEARTBEAT_KEY)
    if isinstance(beat, (int, float)):
        return max(0.0, time.time() - float(beat))
    backend = rdb_backend(storage)
    if backend is None:
        return None
    import sqlalchemy

    with rdb_heartbeat_row(backend, trial) as (row, session):
        if row is None:
            return None
        now = session.execute(sqlalchemy.func.now()).scalar()
        return max(0.0, (now.replace(tzinfo=None) - row.heartbeat).total_seconds())


def running_trial_health(
    storage: Any, trial: FrozenTrial, *, grace_period: int, me: dict[str, Any] | None = None
) -> str:
    """A running trial's health in words: whether it is dead, and why, or how long it beat.

    ``"dead: ..."`` when its process on this host is gone or it has been silent for longer
    than ``grace_period``; otherwise what its heartbeat says.
    """
    if dead_on_this_host(trial.system_attrs.get(WORKER_KEY), me):
        return "dead: its process on this host is gone"
    silent = seconds_since_beat(storage, trial)
    if silent is None:
        return "no heartbeat recorded (asked outside `run`, or killed as it was created)"
    if silent > grace_period:
        return f"dead: no heartbeat for {silent:.0f} s (grace period {grace_period} s)"
    return f"alive: last heartbeat {silent:.0f} s ago"
