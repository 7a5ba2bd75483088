"""``dashboard``: a busy port is one line and exit 2 with the way out; --help shows the port."""

from __future__ import annotations

from pathlib import Path
import socket

import optuna
import pytest

from biotune_optuna.cli import build_parser
from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.conftest import copy_spec


def test_a_busy_port_is_one_line_with_the_port_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    optuna.create_study(study_name="biotune-synthetic", storage=f"sqlite:///{tmp_path}/synthetic.db")
    with socket.create_server(("127.0.0.1", 0)) as busy:  # another dashboard, say
        port = busy.getsockname()[1]
        assert main(["dashboard", str(spec), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing announced
    assert len(lines(err)) == 1, err
    assert f"127.0.0.1:{port}" in err and f"--port {port + 1}" in err, err


def test_help_shows_the_default_port() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "default 8080" in commands["dashboard"].format_help()
