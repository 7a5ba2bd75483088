"""The password of a database never leaves the spec it is written in.

A study is run on a real PostgreSQL server whose role logs in with a password only, the
password in the spec's storage URL; then everything is searched for it: every row of every
table of the database (study and trial user and system attrs, the dashboard note), every file
written, the output of every command. And the safe way works: a URL without a password, with
``PGPASSWORD`` or a ``~/.pgpass`` file (libpq reads both, for psycopg 3 and psycopg2).
"""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import optuna
import pytest
import sqlalchemy

from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import StorageError


pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]

SPEC = """
# The study's database: {storage}
[study]
name = "secret"
storage = "{storage}"
description = "Synthetic landscape on {storage}"
artifacts = "artifacts"
[sampler]
population_size = 4
n_elites = 1
[budget]
trials = {trials}
[objective]
kind = "synthetic"
"""


def _no_password(url: str) -> str:
    u = sqlalchemy.engine.make_url(url)
    return f"postgresql://{u.username}@{u.host}:{u.port}/{u.database}"


def _password(url: str) -> str:
    password = sqlalchemy.engine.make_url(url).password
    assert password
    return str(password)


def _environment(tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of a command: no password from the user's own PGPASSWORD/.pgpass."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**environment, "PGPASSFILE": str(tmp_path / "no-pgpass"), **more}


def _cli(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "biotune_optuna.cli", *arguments]
    return subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300
    )


def _database_text(url: str) -> str:
    """Every row of every table of the database at ``url``, as text."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sqlalchemy.inspect(connection).get_table_names()
            assert "study_system_attributes" in tables and "trial_user_attributes" in tables
            return "\n".join(
                repr(row)
                for table in tables
                for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


def test_the_password_goes_nowhere(tmp_path: Path, postgres_password_url: str) -> None:
    password = _password(postgres_password_url)
    spec = tmp_path / "secret.toml"
    spec.write_text(SPEC.format(storage=postgres_password_url, trials=10))
    environment = _environment(tmp_path)
    outputs = []
    for arguments in (
        ("run", str(spec), "-v"),
        ("run", str(spec), "--workers", "2", "--trials", "14"),
        ("status", str(spec)),
        ("best", str(spec)),
        ("run", str(spec), "--sampler", "random", "--trials", "4", "-q"),
        ("compare", str(spec)),
        ("retrain", str(spec)),  # a synthetic spec: refused, naming the storage at most
        ("run", str(spec), "--study-name", "secret", "--sampler", "tpe"),  # other settings
    ):
        done = _cli(environment, *arguments)
        outputs.append(f"$ {arguments}\n{done.stdout}\n{done.stderr}")
        assert done.returncode in (0, 2), outputs[-1]
    unreachable = tmp_path / "unreachable.toml"
    port = sqlalchemy.engine.make_url(postgres_password_url).port
    unreachable.write_text(
        SPEC.format(storage=postgres_password_url.replace(f":{port}/", ":1/"), trials=2)
    )
    done = _cli(environment, "status", str(unreachable))
    assert done.returncode == 2 and "cannot open storage" in done.stderr, done.stderr
    outputs.append(done.stderr)

    stored = _database_text(postgres_password_url)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != spec}
    files.pop(unreachable)
    assert any(p.name == "compare.md" for p in files), sorted(files)
    assert password not in stored
    assert [p for p, data in files.items() if password.encode() in data] == []
    assert [o for o in outputs if password in o] == []

    # The note shows the spec, its URL masked; the messages name the storage, masked.
    study = optuna.load_study(study_name="secret", storage=open_storage(postgres_password_url))
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    note = "".join(str(v) for k, v in system_attrs.items() if k.startswith("dashboard:note"))
    assert masked_text(postgres_password_url) in note and "[study]" in note
    assert display_storage(postgres_password_url) in outputs[2]  # status
    assert "***@" in outputs[-1] and len(study.trials) >= 14


def test_a_url_without_its_password_logs_in_with_pgpassword_or_pgpass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_password_url: str
) -> None:
    if os.environ.get("BIOTUNE_TEST_POSTGRES_URL"):
        pytest.skip("the server's authentication is not this test's to set")
    password, url = _password(postgres_password_url), _no_password(postgres_password_url)
    assert password not in url
    for variable in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    with pytest.raises(StorageError, match="password") as error:
        open_storage(url)  # the server does ask for it
    assert "\n" not in str(error.value)

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(storage=url, trials=3))
    done = _cli(_environment(tmp_path, PGPASSWORD=password), "run", str(spec), "-q")
    assert done.returncode == 0, done.stderr

    pgpass = tmp_path / "pgpass"
    parsed = sqlalchemy.engine.make_url(url)
    pgpass.write_text(
        f"{parsed.host}:{parsed.port}:{parsed.database}:{parsed.username}:{password}\n"
    )
    pgpass.chmod(0o600)  # libpq ignores a file others can read
    with_file = _environment(tmp_path, PGPASSFILE=str(pgpass))
    spec.write_text(SPEC.format(storage=url, trials=5))
    assert _cli(with_file, "run", str(spec), "-q").returncode == 0
    drivers = ["postgresql+psycopg"]
    try:
        import psycopg2  # noqa: F401

        drivers.append("postgresql+psycopg2")
    except ImportError:
        pass
    for driver in drivers:
        monkeypatch.setenv("PGPASSWORD", password)
        storage = open_storage(url.replace("postgresql", driver, 1))
        assert len(optuna.load_study(study_name="secret", storage=storage).trials) == 5


#: A password SQLAlchemy takes as written: a space, quotes, a backquote, ``#`` and ``/``.
NASTY = "it's a \"nasty\" #/`pw"


def test_a_password_with_spaces_and_quotes_goes_nowhere(
    tmp_path: Path, postgres_server: str, postgres_password_url: str
) -> None:
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    parsed = sqlalchemy.engine.make_url(postgres_password_url)
    with admin.connect() as connection:
        quoted = NASTY.replace("'", "''")
        role = parsed.username
        connection.execute(sqlalchemy.text(f"ALTER ROLE \"{role}\" PASSWORD '{quoted}'"))
    admin.dispose()
    url = f"postgresql://{parsed.username}:{NASTY}@{parsed.host}:{parsed.port}/{parsed.database}"
    assert sqlalchemy.engine.make_url(url).password == NASTY
    spec = tmp_path / "secret.toml"
    spec.write_text(SPEC.format(storage=url.replace('"', '\\"'), trials=6))
    environment = _environment(tmp_path)
    outputs = []
    for arguments in (("run", str(spec), "-v"), ("status", str(spec)), ("best", str(spec))):
        done = _cli(environment, *arguments)
        outputs.append(f"$ {arguments}\n{done.stdout}\n{done.stderr}")
        assert done.returncode == 0, outputs[-1]
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != spec}
    stored = _database_text(url)
    secrets = {NASTY, NASTY.replace('"', '\\"'), "nasty", "#/`pw"}
    assert [s for s in secrets if s in stored] == []
    assert [p for p, data in files.items() if any(s.encode() in data for s in secrets)] == []
    assert [o for o in outputs if any(s in o for s in secrets)] == []
    study = optuna.load_study(study_name="secret", storage=open_storage(url))
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    note = "".join(str(v) for k, v in system_attrs.items() if k.startswith("dashboard:note"))
    assert f"postgresql://{parsed.username}:***@" in note and "[study]" in note
