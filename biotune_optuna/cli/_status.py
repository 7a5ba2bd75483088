"""``status``: a study's trials per state, generation, best so far and recommended trial."""

from __future__ import annotations

import argparse

from biotune_optuna.cli._common import spec_of
from biotune_optuna.studies._command_reports import status_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``status`` command has no arguments of its own."""


def handle(args: argparse.Namespace) -> int:
    """Print the progress of the spec's study, and the health of its running trials."""
    print(status_report(spec_of(args)))
    return 0
