"""Storage URLs of studies: checked when a spec is read, opened with heartbeats for ``run``.

Three kinds of storage, the path Optuna's own tutorial draws from one laptop to a cluster:

* ``sqlite:///study.db`` for one process or a few on one host;
* ``journal:///study.log``: Optuna's :class:`~optuna.storages.journal.JournalFileBackend`, an
  append-only log that many processes on one host share without database locks;
* ``postgresql://user:password@host/db`` (or any other SQLAlchemy URL Optuna supports) for many
  hosts. Beyond a few hundred workers, Optuna's ``GrpcStorageProxy`` sits in front of it.

Relative SQLite and journal paths are relative to the spec file. A study that ``run`` works on
records a heartbeat per running trial; a trial whose worker stopped beating (killed, preempted,
out of memory on the host) is failed by the next worker that starts a trial and retried, with
the same parameters and the same place in BioTune's search, by Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`. RDB storages have heartbeats in
Optuna; the journal gets them here (:class:`HeartbeatJournalStorage`).

Nothing here creates a file or a table to find out whether a study exists, and every problem is
one line (:class:`StorageError`, a :class:`~biotune_optuna.studies.SpecError`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import contextlib
from pathlib import Path
import random
import time
from typing import Any
import warnings

import optuna
from optuna.storages import BaseStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.studies._errors import SpecError


__all__ = [
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "HeartbeatJournalStorage",
    "RetryDeadTrial",
    "StorageError",
    "check_storage_file",
    "display_storage",
    "file_of_storage",
    "open_storage",
    "storage_problem",
]

SQLITE = "sqlite:///"
JOURNAL = "journal:///"
#: Seconds between two heartbeats of a running trial (Optuna's RDBStorage takes the same).
DEFAULT_HEARTBEAT_INTERVAL = 60
#: Seconds without a heartbeat after which a running trial counts as dead: two missed beats.
DEFAULT_GRACE_PERIOD = 2 * DEFAULT_HEARTBEAT_INTERVAL
#: A trial whose worker dies this often is failed for good (its slot gets the worst fitness).
MAX_RETRY = 3
#: Trial system attr with the time of the last heartbeat of a journal trial.
HEARTBEAT_KEY = "biotune:heartbeat"


class StorageError(SpecError):
    """A storage that cannot be used, in one line (bad input: the CLI exits with 2)."""


def file_of_storage(url: str) -> Path | None:
    """The file of a ``sqlite:///`` or ``journal:///`` URL (``None`` for servers, memory)."""
    for prefix in (SQLITE, JOURNAL):
        if url.startswith(prefix):
            target = url[len(prefix) :].split("?", 1)[0]
            if not target or target == ":memory:" or target.startswith("file:"):
                return None
            return Path(target)
    return None


def display_storage(url: str) -> str:
    """The URL for messages: the password hidden, a file relative to the working directory."""
    path = file_of_storage(url)
    if path is not None:
        prefix = url[: url.index(":///") + 4]
        try:
            return prefix + str(path.relative_to(Path.cwd()))
        except ValueError:
            return url
    if url.startswith(JOURNAL):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def storage_problem(url: str) -> str | None:
    """What is wrong with a storage URL's form (``None`` if nothing), without connecting.

    Checks the scheme, that SQLAlchemy parses the URL and that its database driver is
    installed; whether the server answers is found out when the study opens.
    """
    if url.startswith(JOURNAL):
        return None if file_of_storage(url) is not None else "a journal needs a file path"
    if url.startswith("journal:"):
        return "a journal file is written journal:///<path> (relative) or journal:////<path>"
    if url.startswith("sqlite:") and not url.startswith(SQLITE):
        return "an SQLite file is written sqlite:///<path> (relative) or sqlite:////<path>"
    if "://" not in url:
        return (
            "not a storage URL; use sqlite:///<file>, journal:///<file> or "
            "postgresql://<user>@<host>/<db>"
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.exc import NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "not a URL SQLAlchemy can parse"
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        return f"unknown database {parsed.drivername!r}; use sqlite, postgresql or mysql"
    except ImportError as exc:
        hint = " (pip install 'biotune_optuna[postgresql]')" if "postgres" in url else ""
        return f"the driver of {parsed.drivername!r} is not installed: {exc}{hint}"
    return None


def check_storage_file(url: str) -> Path | None:
    """The storage's file, if it has one, after checking that it can be one (no I/O else).

    Raises:
        StorageError: If its directory is missing, or a directory stands where the file goes.
    """
    path = file_of_storage(url)
    if path is not None:
        if not path.parent.is_dir():
            raise StorageError(f"directory of the storage file does not exist: {path.parent}")
        if path.exists() and not path.is_file():
            raise StorageError(f"{path} is not a file, so it cannot hold a study")
    return path


def _one_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    create: bool = True,
) -> BaseStorage:
    """Open the storage of ``url``, with heartbeats and retries of dead trials if asked.

    Args:
        url: A ``sqlite:///``, ``journal:///`` or other SQLAlchemy URL.
        heartbeat_interval: Seconds between heartbeats of a running trial; ``None``: no
            heartbeat (reading a study, or ask and tell). With heartbeats, a trial beats as
            it starts, and one that ``study.optimize`` does not keep beating (its worker
            died, or it was asked outside ``optimize``) is failed after ``grace_period``.
        grace_period: Seconds without heartbeat after which a running trial is failed and
            retried (default twice the interval).
        create: Whether a missing SQLite or journal file may be created.

    Raises:
        StorageError: One line, if the URL is malformed, the file is not a study storage, or
            the server cannot be reached.
    """
    problem = storage_problem(url)
    if problem is not None:
        raise StorageError(f"storage {display_storage(url)}: {problem}")
    path = check_storage_file(url)
    if path is not None and not create and not path.exists():
        raise StorageError(f"no storage file {path}")
    try:
        with warnings.catch_warnings():
            # Heartbeats and their retry callback are marked experimental in Optuna 5.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat: dict[str, Any] = {}
            if heartbeat_interval is not None:
                heartbeat = {
                    "heartbeat_interval": heartbeat_interval,
                    "grace_period": grace_period or 2 * heartbeat_interval,
                    "heartbeat_stale_trial_callback": RetryDeadTrial(max_retry=MAX_RETRY),
                }
            return _open(url, path, heartbeat)
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"cannot open storage {display_storage(url)}: {_one_line(exc)}"
        ) from None


def _open(url: str, path: Path | None, heartbeat: dict[str, Any]) -> BaseStorage:
    if url.startswith(JOURNAL):
        assert path is not None
        if path.exists() and path.stat().st_size and not _looks_like_journal(path):
            raise StorageError(f"{path} is not an Optuna journal")
        backend = JournalFileBackend(str(path))
        if heartbeat:
            return HeartbeatJournalStorage(backend, **heartbeat)
        return JournalStorage(backend)
    if path is not None and path.exists() and path.stat().st_size:
        with path.open("rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise StorageError(f"{path} is not an SQLite database")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes wait their turn
    elif url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    for attempt in range(1, _CREATE_ATTEMPTS):
        try:
            return _RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except Exception as exc:
            if not _lost_creation_race(exc):
                raise
        time.sleep(random.uniform(0.05, 0.2) * attempt)
    return _RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)


# Workers on several hosts, or a worker and a reader, may open a new database at once.
# Optuna's RDBStorage creates its tables, version row and alembic stamp by "look, then
# create", so all but one of them fail with "already exists" or a duplicate key. Opening
# again finds what the winner created.
_CREATE_ATTEMPTS = 8


def _lost_creation_race(exc: BaseException) -> bool:
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True  # the version row or alembic stamp another process wrote first
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and "already exists" in str(exc.orig)


class _FirstBeatOnStart:
    """Beat once as a trial starts running, not only once ``study.optimize`` starts beating.

    Optuna takes a trial for dead only after it has beaten once, and its beats start after
    ``study.ask`` returns, that is after the sampler has proposed. A worker killed in between
    left a trial RUNNING for ever, which no worker failed or retried. A trial that starts
    running on a storage with heartbeats (created, or a waiting retry popped) now beats at
    once. Trials asked outside ``study.optimize`` (ask and tell) on such a storage are
    therefore taken for dead after the grace period, as Optuna's note on heartbeats implies.
    """

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)  # type: ignore[misc]
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._beat_if_enabled(trial_id)
        return trial_id

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)  # type: ignore[misc]
        if changed and state == TrialState.RUNNING:
            self._beat_if_enabled(trial_id)
        return changed

    def _beat_if_enabled(self, trial_id: int) -> None:
        if self.get_heartbeat_interval() is not None:  # type: ignore[attr-defined]
            self.record_heartbeat(trial_id)  # type: ignore[attr-defined]


class _RDBStorage(_FirstBeatOnStart, optuna.storages.RDBStorage):
    """Optuna's RDB storage whose trials beat from the moment they run."""


class RetryDeadTrial(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, less the dead trial's last heartbeat.

    The retry copies every system attr of the dead trial; its journal heartbeat, long stale,
    would get the retry taken for dead before its own first beat.
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial.system_attrs.pop(HEARTBEAT_KEY, None)
        super().__call__(study, trial)


def _looks_like_journal(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline(4096).strip()
    return first.startswith(b"{") and first.endswith(b"}")


class HeartbeatJournalStorage(_FirstBeatOnStart, JournalStorage, BaseHeartbeat):
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
        grace_period: Seconds of silence after which a running trial is stale.
        heartbeat_stale_trial_callback: Called with each trial failed for being stale.
    """

    def __init__(
        self,
        backend: Any,
        *,
        heartbeat_interval: int,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        if heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval must be >= 1, got {heartbeat_interval}")
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period or 2 * heartbeat_interval
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        # Finished meanwhile (another worker took it for dead): nothing left to beat.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_KEY, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_KEY)
            if isinstance(beat, (int, float)) and now - beat > self.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback
