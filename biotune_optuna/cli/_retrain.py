"""``retrain``: the recommended plan (or a chosen trial's) on the whole train split, tested."""

from __future__ import annotations

import argparse
from pathlib import Path

from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._predict import predict_hint
from biotune_optuna.studies._command_reports import retrain_report


def add_arguments(retrain: argparse.ArgumentParser) -> None:
    """The ``retrain`` command's own arguments."""
    retrain.add_argument("--output", type=Path, help="directory (default: the spec's)")
    retrain.add_argument(
        "--trial", type=int, help="retrain this trial's plan, not the recommended one"
    )


def handle(args: argparse.Namespace) -> int:
    """Retrain and test the plan, write it with its results and weights, say the accuracy."""
    spec = spec_of(args)
    output = args.output or (spec.retrain_dir / spec.name)
    line, results = retrain_report(
        spec, trial=args.trial, output=output, say=lambda text: say(args, text)
    )
    print(line)
    if results is not None:
        say(
            args,
            f"wrote {output}/plan.json, results.json and {len(results['weights'])} models "
            f"(best on val: {results['best_weights']}; "
            f"then `{predict_hint(spec, output)}`)",
        )
    return 0
