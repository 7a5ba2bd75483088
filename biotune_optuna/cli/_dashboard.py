"""``dashboard``: optuna-dashboard on a spec's storage, with its artifact store."""

from __future__ import annotations

import argparse
import os
import socket

from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import UsageError
from biotune_optuna.studies import load_spec
from biotune_optuna.studies._dashboard import serve_dashboard
from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import file_of_storage


def add_arguments(dashboard: argparse.ArgumentParser) -> None:
    """The ``dashboard`` command's own arguments."""
    dashboard.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (local only)")
    dashboard.add_argument("--port", type=positive_int, default=8080, help="default 8080")


def handle(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C.

    Raises:
        UsageError: If the spec's storage file does not exist yet, or the port is taken.
    """
    spec = load_spec(args.spec)
    path = file_of_storage(spec.storage)
    if path is not None and not path.is_file():
        raise UsageError(f"no study storage at {path} yet; `biotune-optuna run {args.spec}` first")
    _check_port(args.host, args.port)
    url = f"http://{args.host}:{args.port}/dashboard/"
    print(f"optuna-dashboard for {display_storage(spec.storage)} at {url} (Ctrl-C to stop)")
    serve_dashboard(spec.storage, host=args.host, port=args.port, artifacts=spec.artifacts)
    return 0


def _check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once, as the server will, before anything is announced.

    Raises:
        UsageError: If it cannot be bound (another dashboard on it, say), with the way out.
    """
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as the server's own bind
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {host}:{port} ({os.strerror(exc.errno) if exc.errno else exc}); "
            f"is a dashboard already there? Choose another port: --port {port + 1}"
        ) from None
