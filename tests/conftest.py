from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import re
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

from tests._source_tree import pytest_sessionfinish  # noqa: F401 (hooks of the session)
from tests._source_tree import pytest_sessionstart  # noqa: F401
from tests._source_tree import pytest_terminal_summary  # noqa: F401
from tests._source_tree import TEST_OUTPUT  # noqa: F401 (for the tests that keep files)


pytest.register_assert_rewrite("optuna.testing.pytest_samplers")

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def copy_spec(
    name: str, directory: Path, *, data: dict[str, int] | None = None, **protocol: int
) -> Path:
    """A copy of ``studies/<name>.toml`` in ``directory`` (so its SQLite file lands there),
    optionally with fewer images (``[data] max_*``) and other ``[protocol]`` values."""
    text = (STUDIES / f"{name}.toml").read_text()
    for key, value in protocol.items():
        text, n = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        if not n:
            text = text.replace("[protocol]", f"[protocol]\n{key} = {value}", 1)
    if data:
        lines = "\n".join(f"{k} = {v}" for k, v in data.items())
        text = re.sub(r"(?m)^\[data\].*$", lambda m: f"{m.group(0)}\n{lines}", text, count=1)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def small_demo_spec(directory: Path) -> Path:
    """The demo spec on 256 train / 128 val digits at 32 px, one epoch: seconds per trial."""
    return copy_spec(
        "demo",
        directory,
        data={"max_train_images": 256, "max_val_images": 128},
        image_size=32,
        max_epochs=1,
    )


#: The smallest spec: a study ``s`` in ``s.db`` (next to the spec) with a budget of 5 trials.
MINIMAL_SPEC = """
[study]
name = "s"
storage = "sqlite:///s.db"
[budget]
trials = 5
"""


def table_spec(*, trials: int, table: str) -> str:
    """A spec whose study ``replay`` replays the plan table ``table`` (next to the spec) with
    BioTune's N = 4, E = 1 for ``trials`` trials."""
    return f"""
[study]
name = "replay"
storage = "sqlite:///replay.db"
[objective]
kind = "table"
table = "{table}"
[sampler]
population_size = 4
n_elites = 1
[budget]
trials = {trials}
"""


# ------------------------------------------------------------------------------------------
# A real PostgreSQL server for the storage tests (marker `postgres`).


@pytest.fixture(
    params=["sqlite", "journal", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def new_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a new, empty storage, once per kind a study lives in: a file in ``tmp_path``,
    or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if request.param == "journal":
        return f"journal:///{tmp_path / 'study.log'}"
    return str(request.getfixturevalue("postgres_url"))


def _postgres_program(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: The server's group of roles that must give a password (the others are trusted).
PASSWORD_GROUP = "biotune_password_users"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a throwaway PostgreSQL server on 127.0.0.1 (trust auth), for the session.

    ``BIOTUNE_TEST_POSTGRES_URL`` points the tests at a server of your own instead. Otherwise
    Debian's ``postgresql`` package must be installed (the README's test command does it);
    ``initdb`` refuses root, so as root the server runs as the package's ``postgres`` user.
    """
    given = os.environ.get("BIOTUNE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, pg_ctl = _postgres_program("initdb"), _postgres_program("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail(
            "PostgreSQL is not installed (apt-get install postgresql, as the README's test "
            "command does), or deselect these tests with -m 'not postgres'"
        )
    root = Path(tempfile.mkdtemp(prefix="biotune-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(command)} failed: {done.stdout}{done.stderr}{tail}")

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    # Members of PASSWORD_GROUP log in with their password (postgres_password_url); all
    # other roles are trusted.
    hba = data / "pg_hba.conf"
    hba.write_text(
        "".join(
            f"host all +{PASSWORD_GROUP} {net} scram-sha-256\n"
            for net in ("127.0.0.1/32", "::1/128")
        )
        + hba.read_text()
    )
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
    run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"  # the README's spelling
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server; dropped afterwards."""
    import sqlalchemy

    name = f"biotune_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_password_url(postgres_server: str) -> Iterator[str]:
    """``postgresql://<role>:<password>@host:port/<db>``: a fresh database owned by a fresh
    role that the server lets in with its password only (scram-sha-256), both dropped
    afterwards. The password is random, to be searched for in everything a test wrote."""
    import sqlalchemy

    token = uuid.uuid4().hex[:12]
    role, password, name = f"biotune_pw_{token}", f"Pw{uuid.uuid4().hex}", f"biotune_{token}"
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            sqlalchemy.text("SELECT 1 FROM pg_roles WHERE rolname = :g"), {"g": PASSWORD_GROUP}
        ).first()
        if exists is None:
            connection.execute(sqlalchemy.text(f'CREATE ROLE "{PASSWORD_GROUP}" NOLOGIN'))
        connection.execute(
            sqlalchemy.text(
                f'CREATE ROLE "{role}" LOGIN PASSWORD \'{password}\' IN ROLE "{PASSWORD_GROUP}"'
            )
        )
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    server = sqlalchemy.engine.make_url(postgres_server)
    url = server.set(username=role, password=password, database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            connection.execute(sqlalchemy.text(f'DROP ROLE "{role}"'))
        admin.dispose()
