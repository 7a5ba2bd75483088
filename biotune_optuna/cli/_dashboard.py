"""``dashboard``: optuna-dashboard on a spec's storage, with its artifact store."""

from __future__ import annotations

import argparse

from biotune_optuna.cli._common import positive_int
from biotune_optuna.studies import load_spec
from biotune_optuna.studies._command_reports import serve_spec_dashboard


def add_arguments(dashboard: argparse.ArgumentParser) -> None:
    """The ``dashboard`` command's own arguments."""
    dashboard.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (local only)")
    dashboard.add_argument("--port", type=positive_int, default=8080, help="default 8080")


def handle(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C."""
    serve_spec_dashboard(load_spec(args.spec), host=args.host, port=args.port, say=print)
    return 0
