"""Storage URLs of studies: checked when a spec is read, opened with heartbeats for ``run``.

Three kinds of storage, the path Optuna's own tutorial draws from one laptop to a cluster:

* ``sqlite:///study.db`` for one process or a few on one host;
* ``journal:///study.log``: Optuna's :class:`~optuna.storages.journal.JournalFileBackend`, an
  append-only log that many processes on one host share without database locks;
* ``postgresql://user@host/db`` (or any other SQLAlchemy URL Optuna supports) for many
  hosts. Beyond a few hundred workers, Optuna's ``GrpcStorageProxy`` sits in front of it.

Relative SQLite and journal paths are relative to the spec file. An in-memory SQLite database
is refused (no other process, and no later command, would see the study), and so is an SQLite
file of another application. A journal whose last record was cut (power loss, a full disk, a
kill in the middle of a write) is never appended to: the cut bytes are moved aside first
(:class:`SafeJournalFileBackend`).

The password of a server is best left out of the URL: libpq reads ``PGPASSWORD`` and
``~/.pgpass``. One given in the URL, whatever its characters, is masked (:func:`masked_text`)
wherever a URL or a spec's text is shown or stored: messages, tracebacks, the study note,
reports. A study that ``run`` works on
records a heartbeat per running trial, and a trial whose worker died is failed and retried
(:mod:`biotune_optuna.studies._heartbeat`).

Nothing here creates a file or a table to find out whether a study exists, and every problem is
one line (:class:`StorageError`, a :class:`~biotune_optuna.studies.SpecError`). A storage
opened to write is first probed for a directory or file that cannot be written; a full disk, a
damaged SQLite file or a broken journal line is named with its file (and line) and its cure
(:func:`storage_failure`), not in Optuna's words.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
import random
import sqlite3
import time
from typing import Any
from typing import TYPE_CHECKING
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
from biotune_optuna.studies._heartbeat import RetryDeadTrial
from biotune_optuna.studies._heartbeat import shortest_grace_period
from biotune_optuna.studies._masking import _scrubbed
from biotune_optuna.studies._masking import masked_data
from biotune_optuna.studies._masking import masked_text
from biotune_optuna.studies._masking import masked_url
from biotune_optuna.studies._masking import remember_passwords
from biotune_optuna.studies._optuna_bridge import BaseJournalFileLock
from biotune_optuna.studies._optuna_bridge import get_lock_file
from biotune_optuna.studies._optuna_bridge import journal_lock
from biotune_optuna.studies._storage_checks import cause_of
from biotune_optuna.studies._storage_checks import write_problem


if TYPE_CHECKING:
    from collections.abc import Generator


__all__ = [
    "SafeJournalFileBackend",
    "StorageError",
    "StorageFailure",
    "check_storage_file",
    "display_storage",
    "file_of_storage",
    "masked_data",
    "masked_text",
    "masked_url",
    "open_storage",
    "remember_passwords",
    "storage_failure",
    "storage_problem",
]

SQLITE = "sqlite:///"
JOURNAL = "journal:///"

_logger = logging.getLogger(__name__)

class StorageError(SpecError):
    """A storage that cannot be used, in one line (bad input: the CLI exits with 2)."""


class StorageFailure(RuntimeError):
    """A storage that failed under a command (its disk full), in one line naming the cause,
    the file and the cure (the CLI exits with 1; the study is kept)."""


#: The SQLite and journal files this process opened last (what an error under Optuna is about).
_LAST_OPENED: dict[str, Path] = {}


def storage_failure(exc: BaseException) -> StorageError | StorageFailure | None:
    """What ``exc``, raised under Optuna, says of the storage, if it knows (else ``None``).

    Optuna reports a full disk, a damaged SQLite file and a read-only one alike ("invalid
    data in the commit"); the driver's or the system's error chained to it says which, and
    this says so in one line with the file and the cure: a :class:`StorageError` for a file
    that cannot be used as it is (damaged, read-only), a :class:`StorageFailure` for a disk
    that filled up under the run.
    """
    found = cause_of(exc, sqlite=_LAST_OPENED.get(SQLITE), journal=_LAST_OPENED.get(JOURNAL))
    if found is None:
        return None
    message, bad_input = found
    return StorageError(message) if bad_input else StorageFailure(message)


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
    remember_passwords(url)
    path = file_of_storage(url)
    if path is not None:
        prefix = url[: url.index(":///") + 4]
        try:
            return prefix + str(path.relative_to(Path.cwd()))
        except ValueError:
            return masked_url(url)
    return masked_url(url)


def storage_problem(url: str) -> str | None:
    """What is wrong with a storage URL's form (``None`` if nothing), without connecting.

    Checks the scheme, that SQLAlchemy parses the URL and that its database driver is
    installed; whether the server answers is found out when the study opens. The URL's
    passwords are remembered, to be masked in any text (:func:`remember_passwords`).
    """
    remember_passwords(url)
    if url.startswith(JOURNAL):
        return None if file_of_storage(url) is not None else "a journal needs a file path"
    if url.startswith("journal:"):
        return "a journal file is written journal:///<path> (relative) or journal:////<path>"
    if url.startswith("sqlite:") and not url.startswith(SQLITE):
        return "an SQLite file is written sqlite:///<path> (relative) or sqlite:////<path>"
    if url.startswith(SQLITE) and _in_memory(url):
        return (
            "an in-memory SQLite database dies with its process, and no worker, `status` or "
            "later run would see the study; use sqlite:///<file>"
        )
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
        _url_with_driver(url)
    except NoSuchModuleError:
        return f"unknown database {parsed.drivername!r}; use sqlite, postgresql or mysql"
    except ImportError as exc:
        return _missing_driver(parsed.drivername, exc)
    return None


def _in_memory(url: str) -> bool:
    target, _, query = url[len(SQLITE) :].partition("?")
    return target in ("", ":memory:") or "mode=memory" in query or target == "file::memory:"


def _missing_driver(drivername: str, exc: ImportError) -> str:
    """The one-line problem of a URL whose database driver is not installed, with the cure."""
    if drivername.endswith("+psycopg2"):
        hint = (
            "pip install psycopg2-binary, or write postgresql:// for psycopg 3 "
            "(pip install 'biotune_optuna[postgresql]')"
        )
    elif drivername in ("postgresql", "postgresql+psycopg"):
        hint = "pip install 'biotune_optuna[postgresql]'"
    else:
        hint = f"install the Python driver of {drivername!r}"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"the database driver of {drivername!r} is not installed ({reason}); {hint}"


def _import_dbapi(url: str) -> None:
    """Import the DB-API module of ``url``'s dialect (:class:`ImportError` if it is missing)."""
    from sqlalchemy.engine import make_url

    dialect = make_url(url).get_dialect()
    importer = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # SQLAlchemy 1.4
    importer()


#: The drivers a ``postgresql://`` URL may stand for, tried after SQLAlchemy's default.
_POSTGRESQL_DRIVERS = ("psycopg", "psycopg2")


def _url_with_driver(url: str) -> str:
    """``url`` as it is opened: a ``postgresql://`` URL gets a PostgreSQL driver that is there.

    SQLAlchemy maps ``postgresql://`` to psycopg 3 since 2.1, to psycopg2 before, whether or
    not that driver is installed. Such a URL keeps SQLAlchemy's default if it is installed,
    else gets psycopg 3 or psycopg2, the first installed; a URL that names its driver
    (``postgresql+psycopg2://``) is left as it is.

    Raises:
        ImportError: If no driver of the URL's database is installed (the default's error).
    """
    try:
        _import_dbapi(url)
        return url
    except ImportError:
        if not url.startswith("postgresql://"):
            raise
        for driver in _POSTGRESQL_DRIVERS:
            candidate = f"postgresql+{driver}://" + url[len("postgresql://") :]
            try:
                _import_dbapi(candidate)
            except ImportError:
                continue
            return candidate
        raise


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
    durable: bool = True,
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
        create: Whether the storage is opened to write: a missing SQLite or journal file
            may be created, and the file and its directory must be writable (a write probe,
            :func:`~biotune_optuna.studies._storage_checks.write_problem`).
        durable: Wait for the disk at every commit (the default). ``False`` only for a study
            that is cheap to rebuild, a replayed plan table: an SQLite file is then written
            with ``PRAGMA synchronous = OFF`` and a journal without ``fsync``, about 40×
            faster on a slow disk; a power cut (not a killed process) may lose or damage it.

    Raises:
        StorageError: One line, if the URL is malformed, the file is not a study storage, is
            damaged or cannot be written, or the server cannot be reached.
    """
    problem = storage_problem(url)
    if problem is not None:
        raise StorageError(f"storage {display_storage(url)}: {problem}")
    path = check_storage_file(url)
    if path is not None and not create and not path.exists():
        raise StorageError(f"no storage file {path}")
    if path is not None and create:
        problem = write_problem(path)
        if problem is not None:
            raise StorageError(problem)
    try:
        with warnings.catch_warnings():
            # Heartbeats and their retry callback are marked experimental in Optuna 5.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            heartbeat: dict[str, Any] = {}
            if heartbeat_interval is not None:
                if grace_period is None:
                    grace_period = shortest_grace_period(heartbeat_interval)
                problem = heartbeat_problem(heartbeat_interval, grace_period)
                if problem is not None:
                    raise StorageError(problem)
                heartbeat = {
                    "heartbeat_interval": heartbeat_interval,
                    "grace_period": grace_period,
                    "heartbeat_stale_trial_callback": RetryDeadTrial(max_retry=MAX_RETRY),
                }
            return _open(url, path, heartbeat, durable)
    except StorageError:
        raise
    except Exception as exc:
        explained = storage_failure(exc)
        if explained is not None:
            raise StorageError(str(explained)) from None
        raise StorageError(
            f"cannot open storage {display_storage(url)}: {_scrubbed(_one_line(exc), url)}"
        ) from None


def _open(url: str, path: Path | None, heartbeat: dict[str, Any], durable: bool) -> BaseStorage:
    if path is not None:
        _LAST_OPENED[JOURNAL if url.startswith(JOURNAL) else SQLITE] = path
    if url.startswith(JOURNAL):
        assert path is not None
        if path.exists() and path.stat().st_size and not _looks_like_journal(path):
            raise StorageError(
                f"{path} is not an Optuna journal (its first line is no journal record); give "
                "the study a file of its own"
            )
        _refuse_bad_last_line(path)
        backend = SafeJournalFileBackend(str(path), durable=durable)
        backend.move_cut_record()
        if heartbeat:
            return HeartbeatJournalStorage(backend, **heartbeat)
        return JournalStorage(backend)
    if path is not None and path.exists() and path.stat().st_size:
        _refuse_foreign_sqlite(path)
    url = _url_with_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # several processes wait their turn
    elif url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            storage = HeartbeatRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except Exception as exc:
            if attempt == _CREATE_ATTEMPTS or not _lost_creation_race(exc):
                raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
            continue
        if not durable and url.startswith("sqlite"):
            _without_waiting_for_the_disk(storage.engine)
        return storage
    raise AssertionError("unreachable")


def _without_waiting_for_the_disk(engine: Any) -> None:
    """Every later connection of ``engine`` commits without ``fsync`` (SQLite only)."""
    import sqlalchemy

    def pragma(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragma)
    engine.dispose()  # the connections made so far were opened without it


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


#: Tables every Optuna RDB storage has; an SQLite file with tables but none of these is not
#: a study storage (Optuna would add its tables to another application's database).
_OPTUNA_TABLES = frozenset({"studies", "version_info", "alembic_version"})


def _refuse_foreign_sqlite(path: Path) -> None:
    """Raise :class:`StorageError` unless ``path`` is empty or a study storage; reads only."""
    with path.open("rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise StorageError(f"{path} is not an SQLite database")
    try:
        # Read only, so the file stays as it is byte for byte, whatever it holds.
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            rows = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return  # locked, or WAL without its -shm file: opening it says what is wrong
    tables = sorted(str(row[0]) for row in rows)
    if tables and not _OPTUNA_TABLES & set(tables):
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StorageError(
            f"{path} is the SQLite database of another application (tables {shown}; no Optuna "
            "tables); give the study a file of its own"
        )


def _looks_like_journal(path: Path) -> bool:
    """Whether ``path`` starts with an Optuna journal record (reads its first line only).

    A record is a JSON object with Optuna's ``op_code`` and ``worker_id``: another JSON-lines
    file is not a journal, and is refused before anything touches it.
    """
    with path.open("rb") as handle:
        first = handle.readline(_LONGEST_LINE_READ)
    if not first.endswith(b"\n"):  # the first record cut, or a very long line
        return first.startswith(b'{"op_code":')
    return _is_record(first)


#: Bytes of a journal line read to tell whether it is a record (its first, its last one).
_LONGEST_LINE_READ = 1 << 20


class SafeJournalFileBackend(JournalFileBackend):
    """Optuna's journal file that is never appended to after a record that was cut.

    A write cut by a power loss, a full disk or a kill leaves a last line without its
    newline. Optuna's :class:`~optuna.storages.journal.JournalFileBackend` skips such a line
    when it reads, but appends the next record right after it, and the joined line breaks
    every later read of the file. Here, under the journal's own lock (the one every Optuna
    process writing the file takes), a cut last record is moved to
    ``<file>.partial-<time>`` before anything is appended, with one warning line; a last
    line that is a whole record only missing its newline gets the newline and is kept.

    Args:
        file_path: The journal file.
        lock_obj: Its lock (default: Optuna's :class:`JournalFileSymlinkLock`).
        durable: Wait for the disk after every record (``os.fsync``); ``False`` for a study
            that is cheap to rebuild (a replayed table), whose records a power cut may lose.
    """

    def __init__(
        self,
        file_path: str,
        lock_obj: BaseJournalFileLock | None = None,
        *,
        durable: bool = True,
    ) -> None:
        super().__init__(file_path, lock_obj)
        self._path = Path(file_path)
        self._durable = durable

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(journal_lock(self)):
            self._move_cut_record_locked()
            with self._path.open("ab") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                if self._durable:
                    os.fsync(handle.fileno())

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        """Optuna's records from number ``log_number_from`` on.

        Raises:
            StorageError: Naming the file, the line and the cure, if a line before the last
                one is not a JSON record (Optuna skips only a cut last line).
        """
        number = log_number_from
        try:
            for record in super().read_logs(log_number_from):
                yield record
                number += 1
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise _bad_line(self._path, number + 1, reason) from None

    def move_cut_record(self) -> Path | None:
        """Move a cut last record aside (see the class); return where to, if there was one."""
        if _cut_at(self._path) is None:
            return None  # the usual case, without taking the lock
        with get_lock_file(journal_lock(self)):
            return self._move_cut_record_locked()

    def _move_cut_record_locked(self) -> Path | None:
        start = _cut_at(self._path)
        if start is None:
            return None
        with self._path.open("r+b") as handle:
            handle.seek(start)
            tail = handle.read()
            if _is_record(tail):
                handle.write(b"\n")  # the writer died just before the newline
                moved = None
            else:
                moved = _save_aside(self._path, tail)
                handle.truncate(start)
            handle.flush()
            os.fsync(handle.fileno())
        if moved is None:
            _logger.warning(f"journal {self._path}: its last record lacked its newline; added")
        else:
            _logger.warning(
                f"journal {self._path}: its last record was cut ({len(tail)} bytes of a write "
                f"that did not finish); moved them to {moved.name}, the {start} bytes of "
                "complete records before it are kept"
            )
        return moved


def _bad_line(path: Path, number: int, reason: str) -> StorageError:
    """The error of journal ``path`` whose line ``number`` is no record."""
    return StorageError(
        f"journal {path}: line {number} is not a journal record ({reason}), so no line after "
        "it can be read; keep a copy of the file, then repair or delete that line (e.g. "
        f"sed -i '{number}d' <file>) and run again"
    )


def _refuse_bad_last_line(path: Path) -> None:
    """Raise :class:`StorageError` if the last line of journal ``path`` is whole (it ends
    with its newline) but no record: Optuna skips it when it reads, and the next record
    appended after it would make it a line in the middle, which breaks every read."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - _LONGEST_LINE_READ))
        tail = handle.read()
    if not tail.endswith(b"\n"):
        return  # empty, or a cut record (SafeJournalFileBackend moves it aside)
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    if _is_record(last):
        return
    with path.open("rb") as handle:
        number = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    raise _bad_line(path, number, "not an object with Optuna's keys")


def _cut_at(path: Path) -> int | None:
    """Where the last line of ``path`` starts if it lacks its newline (``None``: none cut)."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return None
    with path.open("rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def _is_record(line: bytes) -> bool:
    """Whether ``line`` is a whole journal record (an object with Optuna's keys)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and {"op_code", "worker_id"} <= record.keys()


def _save_aside(path: Path, tail: bytes) -> Path:
    """Write ``tail`` to a new ``<path>.partial-<time>`` (synced) and return its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        aside = path.with_name(f"{path.name}.partial-{stamp}" + (f"-{n}" if n else ""))
        try:
            with aside.open("xb") as handle:
                handle.write(tail)
                handle.flush()
                os.fsync(handle.fileno())
        except FileExistsError:
            continue
        return aside
    raise StorageError(f"{path}: too many {path.name}.partial-* files; remove old ones")
