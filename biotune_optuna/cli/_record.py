"""``record``: a plan table of the spec's task, every plan of the grid trained by the engine."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from biotune_optuna.cli._common import non_negative_int
from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import UsageError
from biotune_optuna.studies._record import record_table


def add_arguments(record: argparse.ArgumentParser) -> None:
    """The ``record`` command's own arguments."""
    record.add_argument("--output", type=Path, required=True, help="the table (.json.gz)")
    record.add_argument(
        "--workers", type=positive_int, default=1, help="workers sharing the grid (default 1)"
    )
    record.add_argument(
        "--worker", type=non_negative_int, default=0, help="this worker, 0 to N-1 (default 0)"
    )


def handle(args: argparse.Namespace) -> int:
    """Record this worker's share of the grid; write the table once the grid is complete."""
    if args.worker >= args.workers:
        raise UsageError(f"--worker {args.worker}: must be below --workers {args.workers}")
    if args.sampler or args.strategy:
        raise UsageError("record trains a grid of plans; --sampler and --strategy do not apply")
    spec = spec_of(args)
    bar = None

    def on_run(done: int, todo: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=todo, desc="runs", unit="run", disable=True if args.quiet else None)
        bar.update(1)

    try:
        progress = record_table(
            spec, output=args.output, worker=args.worker, workers=args.workers, on_run=on_run
        )
    finally:
        if bar is not None:
            bar.close()
    if progress.table is None:
        say(
            args,
            f"{progress.recorded} of {progress.total} runs recorded; the other workers' runs "
            "are missing: run them (or this command again) to finish the table",
        )
        return 0
    cost = progress.table.recorded_with
    say(
        args,
        f"wrote {args.output}: {len(progress.table.plans)} plans, {progress.total} runs, "
        f"{cost['wall_seconds']:.0f} s of training ({cost['cpu_seconds']:.0f} CPU s)",
    )
    return 0
