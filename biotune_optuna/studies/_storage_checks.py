"""What is wrong with a storage file, in words: one that cannot be written, a full disk, damage.

:func:`write_problem` is asked before a study is opened to write (a read-only directory made
Optuna's journal lock spin for ever, and SQLite fail deep inside Optuna); :func:`cause_of`
reads the chain of an error raised under Optuna (which reports a full disk and a damaged
SQLite page alike as "invalid data in the commit") for the driver's or the system's own
cause. Both give one line naming the file and what the user can do.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
import sqlite3
import tempfile


__all__ = ["cause_of", "write_problem"]


def write_problem(path: Path) -> str | None:
    """Why a study cannot be written to the storage file ``path`` (``None``: it can).

    A real write probe, so that it also holds for root (whom permissions do not stop) on a
    read-only file system: a file is created and removed in the file's directory (where
    SQLite writes its rollback journal and Optuna's journal its lock file), and the file, if
    it exists, is opened for appending (which changes neither its bytes nor its times).
    """
    directory = path.parent
    cure = "make it writable, or copy the study to a writable directory and point the spec at it"
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=directory)
    except OSError as exc:
        return (
            f"cannot write in the directory {directory} of the storage ({_reason(exc)}); "
            f"`run` writes there (SQLite its journal beside the database, a journal file its "
            f"lock): {cure}"
        )
    os.close(handle)
    os.unlink(probe)
    if path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            return f"cannot write the storage file {path} ({_reason(exc)}): {cure}"
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


#: The SQLite messages of a damaged database file.
_DAMAGED = ("malformed", "file is not a database", "disk image")
#: The SQLite messages of a full disk, and the ``errno`` of one.
_FULL = ("database or disk is full",)
_FULL_ERRNO = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
#: The SQLite messages of a file or directory that cannot be written.
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def cause_of(
    exc: BaseException, *, sqlite: Path | None, journal: Path | None
) -> tuple[str, bool] | None:
    """The cause of ``exc`` in one line, and whether it is bad input (``None``: none known).

    Looks through the chain of ``exc`` (causes, contexts, SQLAlchemy's ``orig``) for an
    SQLite error or an :class:`OSError` of a full disk, a damaged database or a file that
    cannot be written. ``sqlite`` and ``journal`` are the files of those kinds last opened
    (what an SQLite error, or an :class:`OSError` without a file name, is about).
    """
    for error in _chain(exc):
        text = str(error).strip()
        if isinstance(error, OSError) and error.errno in _FULL_ERRNO:
            named = error.filename or journal or sqlite or "the storage file"
            return _full(named, text), False
        if not isinstance(error, sqlite3.Error):
            continue
        named = sqlite or "the SQLite file"
        if any(m in text.lower() for m in _FULL):
            return _full(named, text), False
        if isinstance(error, sqlite3.DatabaseError) and any(m in text for m in _DAMAGED):
            return (
                f"{named} is damaged ({text}): keep a copy of it, recover what it holds into "
                f"a new file (the sqlite3 command: sqlite3 {named} .recover | sqlite3 "
                "recovered.db) and point the spec's storage at that file",
                True,
            )
        if any(m in text for m in _READ_ONLY):
            return (
                f"cannot write {named} or its directory ({text}): make them writable, or copy "
                "the study to a writable directory and point the spec at it",
                True,
            )
    return None


def _full(named: object, text: str) -> str:
    return (
        f"the disk of {named} is full ({text}); the study keeps every trial that finished: "
        "free space on that disk, then run the same command again to resume"
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every error it was raised from or during (SQLAlchemy's ``orig`` too)."""
    found: list[BaseException] = []
    waiting = [exc]
    while waiting:
        error = waiting.pop(0)
        if any(error is seen for seen in found):
            continue
        found.append(error)
        linked = (getattr(error, "orig", None), error.__cause__, error.__context__)
        waiting += [e for e in linked if isinstance(e, BaseException)]
    return found
