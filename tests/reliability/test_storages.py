"""Storages a user points a spec at, through the command a user runs.

- The PostgreSQL URL the README shows (``postgresql://user@host/db``) opens with the driver
  the ``[postgresql]`` extra installs; ``postgresql+psycopg2://`` still does with psycopg2; a
  missing driver is one line naming the cure.
- A journal whose last record was cut (power loss, full disk, a kill in a write) is never
  appended to: the cut bytes are moved aside under the journal's lock, once, whatever the
  number of processes, and every record before them is kept.
- An SQLite file of another application and an in-memory SQLite database are refused in one
  line, the file unchanged byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import sqlite3
import subprocess
import sys

import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import SafeJournalFileBackend
from biotune_optuna.studies._storage import storage_problem
from biotune_optuna.studies._storage import StorageError


REPO = Path(__file__).resolve().parents[2]

SPEC = """
[study]
name = "kept"
storage = "{storage}"
[budget]
trials = {trials}
[objective]
kind = "synthetic"
"""


def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "biotune_optuna.cli", *arguments]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def trials_in(storage: str, name: str = "kept") -> int:
    return len(optuna.load_study(study_name=name, storage=open_storage(storage)).trials)


# ------------------------------------------------------------------------------------------
# PostgreSQL: the README's URL, the psycopg2 spelling, a missing driver


@pytest.mark.postgres
def test_the_readme_postgresql_url_runs_a_study(tmp_path: Path, postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")  # no +driver: what the README shows
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage=postgres_url, trials=5))
    done = cli("run", str(spec), "-q")
    assert done.returncode == 0, done.stderr
    assert trials_in(postgres_url) == 5
    # Optuna itself opens the same URL: SQLAlchemy's default driver is the one installed.
    assert len(optuna.load_study(study_name="kept", storage=postgres_url).trials) == 5


@pytest.mark.postgres
def test_the_psycopg2_spelling_still_works(postgres_url: str) -> None:
    pytest.importorskip("psycopg2")
    url = postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    assert storage_problem(url) is None
    study = optuna.create_study(storage=open_storage(url), study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert trials_in(postgres_url) == 2  # the same database through psycopg 3


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError


@pytest.mark.postgres
def test_a_plain_url_takes_psycopg2_when_psycopg_is_missing(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    pytest.importorskip("psycopg2")
    _without(monkeypatch, "psycopg")
    assert storage_problem(postgres_url) is None
    study = optuna.create_study(storage=open_storage(postgres_url), study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


@pytest.mark.parametrize(
    ("url", "cure"),
    [
        ("postgresql://u@h/db", "pip install 'biotune_optuna[postgresql]'"),
        ("postgresql+psycopg://u@h/db", "pip install 'biotune_optuna[postgresql]'"),
        ("postgresql+psycopg2://u@h/db", "pip install psycopg2-binary, or write postgresql://"),
    ],
)
def test_a_missing_driver_is_one_line_naming_the_cure(
    monkeypatch: pytest.MonkeyPatch, url: str, cure: str
) -> None:
    _without(monkeypatch, "psycopg", "psycopg2")
    problem = storage_problem(url)
    assert problem is not None and "not installed" in problem and cure in problem, problem
    assert "\n" not in problem
    with pytest.raises(StorageError, match="not installed"):
        open_storage(url)


def test_a_spec_with_a_missing_driver_exits_2_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "psycopg", "psycopg2")
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage="postgresql://me@127.0.0.1:1/s", trials=3))
    assert main(["run", str(spec), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "biotune_optuna[postgresql]" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


# ------------------------------------------------------------------------------------------
# A journal whose last record was cut


def _cut_in_the_last_record(log: Path) -> bytes:
    """Truncate ``log`` in the middle of its last line, as a kill in a write leaves it;
    return the bytes of that line that remain."""
    data = log.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = start + (len(data) - start) // 2
    os.truncate(log, cut)
    return data[start:cut]


def _records(log: Path) -> list[dict[str, object]]:
    data = log.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def test_a_cut_journal_is_recovered_then_run_and_status_go_on(tmp_path: Path) -> None:
    log = tmp_path / "study.log"
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage="journal:///study.log", trials=6))
    assert cli("run", str(spec), "-q").returncode == 0
    complete = len(_records(log))
    cut = _cut_in_the_last_record(log)

    status = cli("status", str(spec))
    assert status.returncode == 0, status.stderr
    asides = list(tmp_path.glob("study.log.partial-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == cut
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{len(cut)} bytes" in lines[0] and asides[0].name in lines[0]
    assert len(_records(log)) == complete - 1  # every complete record kept

    spec.write_text(SPEC.format(storage="journal:///study.log", trials=10))
    done = cli("run", str(spec), "-q")
    assert done.returncode == 0, done.stderr
    assert "cut" not in done.stderr  # recovered once
    _records(log)  # every line a whole JSON record
    again = cli("status", str(spec))
    assert again.returncode == 0 and "cut" not in again.stderr
    study = optuna.load_study(study_name="kept", storage=open_storage(f"journal:///{log}"))
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 10


def test_a_record_cut_only_before_its_newline_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    storage = f"journal:///{log}"
    study = optuna.create_study(storage=open_storage(storage), study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    records = len(_records(log))
    os.truncate(log, log.stat().st_size - 1)
    assert trials_in(storage) == 3
    assert len(_records(log)) == records and not list(tmp_path.glob("*.partial-*"))


def test_a_live_writer_never_appends_after_a_record_another_one_left_cut(
    tmp_path: Path,
) -> None:
    log = tmp_path / "s.log"
    storage = open_storage(f"journal:///{log}")  # opened before the other worker died
    study = optuna.create_study(storage=storage, study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with log.open("ab") as handle:  # the other worker, killed in the middle of its write
        handle.write(b'{"op_code":5,"worker_id":"dead","trial_id":1,"sta')
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    _records(log)
    assert len(list(tmp_path.glob("s.log.partial-*"))) == 1
    assert trials_in(f"journal:///{log}") == 4


WRITER = """
import sys
import optuna
from biotune_optuna.studies._storage import open_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="kept", storage=open_storage(sys.argv[1]))
study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
"""


def test_several_processes_recover_one_cut_journal_once(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    storage = f"journal:///{log}"
    study = optuna.create_study(storage=open_storage(storage), study_name="kept")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    study.ask()  # a trial that is still running: the cut will be in its last record
    _cut_in_the_last_record(log)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, storage], cwd=REPO, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errors = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 4, errors
    assert sum("was cut" in e for e in errors) == 1, errors
    assert len(list(tmp_path.glob("s.log.partial-*"))) == 1
    _records(log)
    complete = optuna.load_study(study_name="kept", storage=open_storage(storage)).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)
    )
    assert len(complete) == 4 + 4 * 3


def test_the_backend_reads_what_optuna_reads(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    log.write_bytes(b'{"op_code":0,"worker_id":"w","study_name":"a","directions":[1]}\n{"op')
    backend = SafeJournalFileBackend(str(log))
    assert backend.move_cut_record() is not None
    assert [r["study_name"] for r in backend.read_logs(0)] == ["a"]
    assert backend.move_cut_record() is None


# ------------------------------------------------------------------------------------------
# SQLite: another application's database, memory


def test_an_sqlite_file_of_another_application_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO customers (name) VALUES ('Ada')")
    connection.close()
    before = foreign.read_bytes()
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage="sqlite:///app.db", trials=3))
    for command in ("run", "status"):
        assert main([command, str(spec), "-q"] if command == "run" else [command, str(spec)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "another application" in err and "customers" in err
    with pytest.raises(StorageError, match="another application"):
        open_storage(f"sqlite:///{foreign}")
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "s.toml"]


def test_an_empty_sqlite_file_and_a_study_with_more_tables_are_storages(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a zero-byte file, or one with no table: Optuna's to fill
    with sqlite3.connect(empty) as connection:
        connection.execute("PRAGMA user_version = 1")
    connection.close()
    optuna.create_study(storage=open_storage(f"sqlite:///{empty}"), study_name="kept")
    with sqlite3.connect(empty) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")  # a user's own table beside
    connection.close()
    assert trials_in(f"sqlite:///{empty}") == 0


@pytest.mark.parametrize(
    "storage", ["sqlite:///:memory:", "sqlite:///", "sqlite:///file::memory:?cache=shared"]
)
def test_an_in_memory_sqlite_storage_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], storage: str
) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage=storage, trials=3))
    assert main(["run", str(spec), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in-memory SQLite" in err, err
    with pytest.raises(StorageError, match="in-memory"):
        open_storage(storage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


# ------------------------------------------------------------------------------------------
# A file given that is not ours to change, a study name that is empty


def test_a_json_lines_file_given_as_a_journal_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_bytes(b'{"id": 1, "label": "cat"}\n{"id": 2, "label": "dog"}')  # no last newline
    os.utime(data, (1_000_000_000, 1_000_000_000))
    before = (data.read_bytes(), data.stat().st_mtime_ns)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage="journal:///data.jsonl", trials=3))
    for arguments in (["run", str(spec), "-q"], ["status", str(spec)]):
        assert main(arguments) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "data.jsonl is not an Optuna journal" in err, err
        assert (data.read_bytes(), data.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "s.toml"]


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_study_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage="sqlite:///s.db", trials=3))
    for command in ("run", "status"):
        assert main([command, str(spec), "--study-name", name]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--study-name" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


# ------------------------------------------------------------------------------------------
# A read-only study directory, a full disk, a damaged file: the cause, the file, the cure


def _study(tmp_path: Path, kind: str, trials: int = 3) -> tuple[Path, Path]:
    """A spec and its storage file of ``kind``, with ``trials`` finished trials."""
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage=f"{kind}:///study.{kind}", trials=trials))
    assert main(["run", str(spec), "-q"]) == 0
    return spec, tmp_path / f"study.{kind}"


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_directory_that_cannot_be_written_stops_run_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """The write probe, whatever makes the directory read-only (``os.open`` refused here, as
    for a user without permission; root on a read-only mount: the next test)."""
    spec, _ = _study(tmp_path, kind)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    real_open = os.open

    def read_only(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing and Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["run", str(spec), "--trials", "6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"directory {tmp_path} " in err and "writable" in err, err
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    assert main(["status", str(spec)]) == 0  # reading needs no write


def _read_only_mount() -> list[str] | None:
    """The command prefix that runs a command with a directory mounted read-only, if any."""
    for prefix in (["unshare", "--mount"], ["unshare", "--map-root-user", "--mount"]):
        try:
            done = subprocess.run(
                [*prefix, "sh", "-c", "mount --bind -o ro / /mnt"], capture_output=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            return prefix
    return None


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_read_only_mount_stops_run_in_one_line_even_for_root(tmp_path: Path, kind: str) -> None:
    """On a read-only bind mount (permissions do not stop root), with the lock file a killed
    writer left: Optuna's lock spun for ever on it, SQLite failed deep inside Optuna."""
    prefix = _read_only_mount()
    if prefix is None:
        pytest.skip("no read-only bind mount here (needs unshare and mount namespaces)")
    spec, stored = _study(tmp_path, kind)
    if kind == "journal":
        (tmp_path / f"{stored.name}.lock").symlink_to(stored)  # a killed writer's lock
    before = _snapshot(tmp_path)
    command = (
        f"mount --bind -o ro {tmp_path} {tmp_path} && exec {sys.executable} "
        f"-m biotune_optuna.cli run {spec} --trials 6"
    )
    try:
        done = subprocess.run(
            [*prefix, "sh", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`run` on a read-only directory did not stop within a minute")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f"directory {tmp_path} " in done.stderr
    assert "Read-only file system" in done.stderr
    assert _snapshot(tmp_path) == before


def test_a_full_disk_is_named_with_its_file_and_the_study_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's own "database or disk is full" (a page limit stands for the disk), which
    Optuna reports as "invalid data in the commit, e.g. exceeding max length"."""
    import sqlalchemy

    spec, stored = _study(tmp_path, "sqlite")
    with sqlite3.connect(stored) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()

    def disk_full_soon(dbapi_connection: sqlite3.Connection, record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 1}")

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", disk_full_soon)
    try:
        assert main(["run", str(spec), "--trials", "500", "-q"]) == 1
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", disk_full_soon)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("biotune-optuna: failed: the disk of ") and str(stored) in last
    assert "database or disk is full" in last and "run the same command again" in last
    assert "invalid data" not in last
    assert trials_in(f"sqlite:///{stored}") >= 3


def _status_and_run_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: Path
) -> list[str]:
    """The errors of ``status`` and ``run`` on the spec's damaged storage: each one line and
    exit 2, and nothing under ``tmp_path`` changed."""
    capsys.readouterr()
    before = _snapshot(tmp_path)
    errors = []
    for arguments in (["status", str(spec)], ["run", str(spec), "--trials", "6"]):
        assert main(arguments) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        errors.append(err)
    assert _snapshot(tmp_path) == before
    return errors


def test_a_damaged_sqlite_file_is_named_with_its_cure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, stored = _study(tmp_path, "sqlite")
    with stored.open("r+b") as handle:  # every page but the schema's overwritten
        handle.seek(4096)
        handle.write(b"\xa5" * (stored.stat().st_size - 4096))
    for err in _status_and_run_refuse(tmp_path, capsys, spec):
        assert f"{stored} is damaged" in err, err
        assert "malformed" in err and ".recover" in err and "invalid data" not in err


def test_a_journal_with_one_bad_line_names_the_line_and_the_cure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, stored = _study(tmp_path, "journal", trials=4)
    lines = stored.read_bytes().splitlines(keepends=True)
    lines[5] = b'{"op_code": 5, "worker_id": "w", oops\n'
    stored.write_bytes(b"".join(lines))
    for err in _status_and_run_refuse(tmp_path, capsys, spec):
        assert f"journal {stored}: line 6 " in err, err
        assert "delete that line" in err and "sed -i '6d'" in err


def test_a_journal_whose_last_whole_line_is_bad_is_refused_before_any_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Optuna skips such a line when it reads, and appended after it: the file broke."""
    spec, stored = _study(tmp_path, "journal", trials=3)
    lines = len(stored.read_bytes().splitlines())
    with stored.open("ab") as handle:
        handle.write(b"garbage\n")
    capsys.readouterr()
    before = _snapshot(tmp_path)
    assert main(["run", str(spec), "--trials", "6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"journal {stored}: line {lines + 1} " in err, err
    assert _snapshot(tmp_path) == before
