"""A storage password is masked whatever its characters, in every text that is shown or stored.

SQLAlchemy takes spaces, quotes, ``#``, ``/`` and ``%``-escapes in a password, so nothing but
its own parse says where a password ends. Each nasty password below is written in a spec's
storage URL (as is, percent-encoded, or as a ``?password=`` parameter of a server that does
not answer) and then searched for, in any spelling, in what the commands print (one-line
errors, ``-v`` tracebacks), in the study note and in every file written. The run on a real
server is in ``test_secrets.py``.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from urllib.parse import quote
from urllib.parse import quote_plus
from urllib.parse import unquote

import optuna
import pytest
from sqlalchemy.engine import make_url

from biotune_optuna.cli import main
from biotune_optuna.studies import _masking
from biotune_optuna.studies import load_spec
from biotune_optuna.studies import save_study_note
from biotune_optuna.studies._session import open_study
from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.studies._storage import masked_url
from biotune_optuna.studies._storage import open_storage
from tests.conftest import copy_spec


NASTY = [
    "two words",
    "it's-x",
    'say "hi"',
    "back`tick",
    "hash#tag",
    "sla/sh:col",
    "pct%41 %zz",
    "p@ss/w0rd",  # only percent-encoded: SQLAlchemy ends a password at its first @
]
FORMS = ["as written", "percent-encoded", "query"]


@pytest.fixture(autouse=True)
def _no_password_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no password remembered (a URL's form alone must mask it), and
    leaves none to the other tests of the session."""
    monkeypatch.setattr(_masking, "_KNOWN_PASSWORDS", set(), raising=False)


def _url(password: str, form: str, *, port: int = 1) -> str:
    """A URL of a server that does not answer (port 1), with ``password`` in ``form``."""
    if form == "percent-encoded" or "@" in password:
        password = quote(password, safe="")
    if form == "query":
        return f"postgresql://u@127.0.0.1:{port}/db?sslmode=disable&password={password}"
    return f"postgresql://u:{password}@127.0.0.1:{port}/db"


def _cases() -> list[tuple[str, str]]:
    return [
        (pw, form) for pw in NASTY for form in FORMS if not (form == "query" and "#" in pw)
    ] + [("hash#tag&more", "percent-encoded")]


def _leaks(password: str, text: str) -> list[str]:
    """The spellings of ``password`` found in ``text``."""
    spellings = {password, unquote(password)}
    spellings |= {f(s) for s in list(spellings) for f in (quote, quote_plus)}
    spellings |= {quote(s, safe="") for s in list(spellings)}
    spellings |= {json.dumps(s)[1:-1] for s in list(spellings)}
    return sorted(s for s in spellings if s in text)


@pytest.mark.parametrize(("password", "form"), _cases())
def test_sqlalchemy_reads_the_password_the_tests_search_for(password: str, form: str) -> None:
    parsed = make_url(_url(password, form))
    read = parsed.query.get("password") if form == "query" else parsed.password
    assert read == password or ("@" not in password and read == unquote(password))


@pytest.mark.parametrize(("password", "form"), _cases())
def test_the_masking_functions_hide_the_whole_password(password: str, form: str) -> None:
    url = _url(password, form)
    assert masked_url(url) == _url("***", form).replace("%2A%2A%2A", "***")
    for shown in (masked_url(url), display_storage(url), masked_text(f"storage = {url!r}")):
        assert _leaks(password, shown) == [] and "***" in shown, shown
    assert "127.0.0.1:1/db" in display_storage(url)
    # In free text that never named it, from the URL's form alone.
    if form != "percent-encoded" and "@" not in password:
        line = f"    storage = {json.dumps(url.replace('u', 'v'))}  # the server"
        assert "***" in masked_text(line) and "s" + password[1:] not in masked_text(line)


def _spec(tmp_path: Path, storage: str) -> Path:
    spec = copy_spec("synthetic", tmp_path)
    text = spec.read_text()
    old = next(line for line in text.splitlines() if line.startswith("storage = "))
    spec.write_text(text.replace(old, f"storage = {json.dumps(storage)}"))
    assert load_spec(spec).storage == storage
    return spec


@pytest.mark.parametrize(("password", "form"), _cases())
def test_no_command_prints_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str, form: str
) -> None:
    spec = str(_spec(tmp_path, _url(password, form)))
    for arguments in (["run", spec], ["run", spec, "-v"], ["status", spec], ["best", spec]):
        assert main(arguments) == 2
        out, err = capsys.readouterr()
        assert "cannot open storage postgresql://u" in err and "***" in err, err
        assert _leaks(password, out + err) == [], (arguments, out + err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic.toml"]


def test_a_verbose_traceback_is_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = 'it\'s "two" words#/`%'
    url = _url(password, "as written")
    spec = _spec(tmp_path, url)

    def failing(args: object) -> int:
        try:
            raise ConnectionError(f"driver: bad password {password!r} for {url}")
        except ConnectionError as exc:
            raise RuntimeError(f"while opening {url}") from exc

    monkeypatch.setattr("biotune_optuna.cli._status.handle", failing)
    assert main(["status", str(spec)]) == 1
    assert main(["status", str(spec), "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConnectionError" in err and "***" in err
    assert _leaks(password, err) == [], err


@pytest.mark.parametrize("password", NASTY)
def test_the_note_and_every_file_hide_a_password_in_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    """A journal study whose spec also names a server with its password (a comment and the
    description): the note shows the spec, and the commands write reports."""
    spec = copy_spec("synthetic", tmp_path)
    server = _url(password, "percent-encoded" if "@" in password else "as written", port=5432)
    spec.write_text(
        spec.read_text()
        .replace("sqlite:///synthetic.db", "journal:///synthetic.log")
        .replace("[study]", f"# moved from {server}\n[study]\ndescription = {json.dumps(server)}")
    )
    assert main(["run", str(spec), "--trials", "4", "-v"]) == 0
    for arguments in (["status", str(spec)], ["best", str(spec)], ["compare", str(spec)]):
        assert main(arguments) == 0
    out, err = capsys.readouterr()
    assert _leaks(password, out + err) == []

    storage = open_storage(f"journal:///{tmp_path / 'synthetic.log'}")
    study = optuna.load_study(study_name="biotune-synthetic", storage=storage)
    attrs = storage.get_study_system_attrs(study._study_id)
    note = "".join(str(v) for k, v in attrs.items() if k.startswith("dashboard:note"))
    assert "# moved from postgresql://u:***@127.0.0.1:5432/db" in note
    assert _leaks(password, note) == []
    save_study_note(open_study(load_spec(spec)), load_spec(spec))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    written = {p: p.read_bytes().decode(errors="replace") for p in files}
    assert len(written) >= 3, sorted(written)  # the spec, the journal, compare.md
    assert [p for p, text in written.items() if p != spec and _leaks(password, text)] == []


def test_log_lines_are_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Optuna logs a failed trial's error, which may quote a URL (not only with ``-v``)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    try:
        assert main(["status", str(tmp_path / "absent.toml")]) == 2
        url = _url("two words", "as written")
        logging.getLogger("optuna.study").warning(f"Trial 4 failed because of {url}")
    finally:
        logger.removeHandler(handler)
    assert "Trial 4 failed because of postgresql://u:***@127.0.0.1:1/db" in stream.getvalue()
    assert "words" not in stream.getvalue()
