"""Storage URLs of studies: checked when a spec is read, opened with heartbeats for ``run``.

Three kinds of storage, the path Optuna's own tutorial draws from one laptop to a cluster:

* ``sqlite:///study.db`` for one process or a few on one host;
* ``journal:///study.log``: Optuna's :class:`~optuna.storages.journal.JournalFileBackend`, an
  append-only log that many processes on one host share without database locks;
* ``postgresql://user:password@host/db`` (or any other SQLAlchemy URL Optuna supports) for many
  hosts. Beyond a few hundred workers, Optuna's ``GrpcStorageProxy`` sits in front of it.

Relative SQLite and journal paths are relative to the spec file. A study that ``run`` works on
records a heartbeat per running trial, and a trial whose worker died is failed and retried
(:mod:`biotune_optuna.studies._heartbeat`).

Nothing here creates a file or a table to find out whether a study exists, and every problem is
one line (:class:`StorageError`, a :class:`~biotune_optuna.studies.SpecError`).
"""

from __future__ import annotations

from pathlib import Path
import random
import time
from typing import Any
import warnings

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal import JournalStorage

from biotune_optuna.studies._errors import SpecError
from biotune_optuna.studies._heartbeat import heartbeat_problem
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._heartbeat import HeartbeatRDBStorage
from biotune_optuna.studies._heartbeat import MAX_RETRY
from biotune_optuna.studies._heartbeat import MIN_GRACE_PERIOD
from biotune_optuna.studies._heartbeat import RetryDeadTrial


__all__ = [
    "StorageError",
    "check_storage_file",
    "display_storage",
    "file_of_storage",
    "open_storage",
    "storage_problem",
]

SQLITE = "sqlite:///"
JOURNAL = "journal:///"
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
            retried (default twice the interval, at least ten seconds); a trial whose process
            on this host is gone is failed and retried at once
            (:mod:`biotune_optuna.studies._heartbeat`).
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
                if grace_period is None:
                    grace_period = max(2 * heartbeat_interval, MIN_GRACE_PERIOD)
                problem = heartbeat_problem(heartbeat_interval, grace_period)
                if problem is not None:
                    raise StorageError(problem)
                heartbeat = {
                    "heartbeat_interval": heartbeat_interval,
                    "grace_period": grace_period,
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
            return HeartbeatRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except Exception as exc:
            if not _lost_creation_race(exc):
                raise
        time.sleep(random.uniform(0.05, 0.2) * attempt)
    return HeartbeatRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)


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


def _looks_like_journal(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline(4096).strip()
    return first.startswith(b"{") and first.endswith(b"}")


