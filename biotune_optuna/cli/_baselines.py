"""``baselines``: BioTune's recommended plan against the usual ways of fine-tuning."""

from __future__ import annotations

import argparse
from pathlib import Path

from biotune_optuna.cli._common import names
from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import UsageError
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.studies._command_reports import baselines_report


def add_arguments(baselines: argparse.ArgumentParser) -> None:
    """The ``baselines`` command's own arguments."""
    baselines.add_argument(
        "--strategies",
        type=names,
        default=None,
        help=f"comma-separated subset of {','.join(STRATEGIES)} (default: all)",
    )
    baselines.add_argument(
        "--final-seeds", type=positive_int, default=3, help="final runs per method (default 3)"
    )
    baselines.add_argument("--output", type=Path, help="directory of the table")


def handle(args: argparse.Namespace) -> int:
    """Run what the table needs, write it and print it."""
    if args.strategy is not None:
        raise UsageError("baselines compares every strategy; --strategy does not apply")
    spec = spec_of(args)
    output = args.output or (spec.path.resolve().parent / "baselines" / spec.name)
    table = baselines_report(
        spec,
        strategies=args.strategies,
        n_seeds=args.final_seeds,
        output=output,
        say=(lambda text: None) if args.quiet else (lambda text: print(text, flush=True)),
    )
    print(table)
    say(args, f"\nwrote {output / 'baselines.md'} and baselines.json")
    return 0
