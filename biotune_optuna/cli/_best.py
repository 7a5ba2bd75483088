"""``best``: the study's recommended plan as a table (also what ``run`` ends with)."""

from __future__ import annotations

import argparse

import optuna

from biotune_optuna.cli._common import spec_of
from biotune_optuna.studies import load_study
from biotune_optuna.studies._command_reports import best_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``best`` command has no arguments of its own."""


def handle(args: argparse.Namespace) -> int:
    """Print the recommended trial of the spec's study."""
    print_best(load_study(spec_of(args)))
    return 0


def print_best(study: optuna.Study) -> None:
    """The study's recommended trial, its estimate and plan; the best single value apart."""
    print(best_report(study))
