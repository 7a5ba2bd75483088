"""``compare``: a study and its siblings (or chosen studies), as a table and best-so-far plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from biotune_optuna.cli._common import positive_ints
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.studies._command_reports import compare_report


def add_arguments(compare: argparse.ArgumentParser) -> None:
    """The ``compare`` command's own arguments."""
    compare.add_argument(
        "--study",
        action="append",
        default=None,
        metavar="NAME",
        help="a study of the spec's storage to compare (repeatable; default: the siblings)",
    )
    compare.add_argument(
        "--budgets", type=positive_ints, default=None, help="comma-separated trial budgets"
    )
    compare.add_argument("--output", type=Path, help="directory of the table and plots")


def handle(args: argparse.Namespace) -> int:
    """Write and print the comparison table, and write the best-so-far plots."""
    table, written = compare_report(
        spec_of(args), names=args.study, budgets=args.budgets, output=args.output
    )
    print(table)
    say(args, f"\n{written}")
    return 0
