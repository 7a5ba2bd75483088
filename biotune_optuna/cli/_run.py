"""``run``: create or resume a spec's study and run it to its budget, here or in workers."""

from __future__ import annotations

import argparse
import sys

import optuna

from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import worker_count
from biotune_optuna.cli._interrupt import StopAfterTrial
from biotune_optuna.cli._progress import Progress
from biotune_optuna.cli._workers import count_workers
from biotune_optuna.cli._workers import start_workers
from biotune_optuna.studies import DashboardUpdater
from biotune_optuna.studies import finished_trials
from biotune_optuna.studies import prepare_study
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies import save_study_note
from biotune_optuna.studies import StudySpec
from biotune_optuna.studies._command_reports import run_announcement
from biotune_optuna.studies._command_reports import run_report
from biotune_optuna.studies._workers import stop_with_parent
from biotune_optuna.trials import StudyObjective


def add_arguments(run: argparse.ArgumentParser) -> None:
    """The ``run`` command's own arguments (and the hidden ``--worker-id`` of its workers)."""
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=positive_int, help="budget in trials (total)")
    budget.add_argument(
        "--generations", type=positive_int, help="budget in BioTune generations (total)"
    )
    run.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N|auto",
        help="run N worker processes on the study (auto: one per visible GPU); each GPU "
        "worker sees only its own device. Other hosts may run the same command.",
    )
    run.add_argument(
        "--max-failures",
        type=positive_int,
        default=5,
        metavar="K",
        help="stop (exit 1, study kept) after K failed trials in a row (default 5)",
    )
    run.add_argument("--worker-id", type=int, default=None, help=argparse.SUPPRESS)


def handle(args: argparse.Namespace) -> int:
    """Run the spec's study to its budget; then, unless a worker, report it.

    Raises:
        KeyboardInterrupt: After Ctrl-C, once the running trial is over (the study is kept).
    """
    worker = args.worker_id is not None
    if worker:
        stop_with_parent()
    spec = spec_of(args, trials=args.trials, generations=args.generations)
    study, objective = prepare_study(spec)  # bad model or data fails before any write
    search_space = objective.search_space
    target = spec.budget_for(search_space)
    done = finished_trials(study)
    remaining = max(0, target - done)
    n_workers = 1 if worker else count_workers(args, spec)
    if not worker:
        budget = f"{spec.describe_budget(search_space)}: {done} finished, running {remaining} more"
        _announce(args, spec, budget, n_workers)
        if done == 0:
            save_study_note(study, spec)
    if n_workers > 1 and remaining:
        start_workers(args, spec, n_workers)
    else:  # also with the budget met: dead trials are failed, and their retries run
        _run_here(args, spec, study, objective, target, remaining)
    if not worker:
        _report(args, spec, study)
    return 0


def _announce(args: argparse.Namespace, spec: StudySpec, budget: str, n_workers: int) -> None:
    """Say the study, its objective, strategy, sampler, seed and ``budget`` (and workers)."""
    say(args, run_announcement(spec, budget=budget, n_workers=n_workers))


def _run_here(
    args: argparse.Namespace,
    spec: StudySpec,
    study: optuna.Study,
    objective: StudyObjective,
    target: int,
    remaining: int,
) -> None:
    """Run the study to ``target`` finished trials in this process, with progress and Ctrl-C.

    Raises:
        KeyboardInterrupt: After the first Ctrl-C, once the running trial is over.
    """
    progress = Progress(
        remaining, spec.protocol.max_epochs, quiet=args.quiet, verbose=args.verbose
    )
    objective.on_epoch = progress.on_epoch
    interrupt = StopAfterTrial(study)
    try:
        with interrupt:
            run_to_budget(
                study,
                objective,
                target,
                callbacks=[DashboardUpdater(spec), progress.on_trial],
                max_failures_in_a_row=args.max_failures,
                stop_requested=lambda: interrupt.requested,
                say=lambda text: print(f"biotune-optuna: {text}", file=sys.stderr),
            )
    finally:
        progress.close()
    if interrupt.requested:
        raise KeyboardInterrupt


def _report(args: argparse.Namespace, spec: StudySpec, study: optuna.Study) -> None:
    """After the run: trials still running, the figures and note, generations, the best."""
    warnings, text = run_report(study, spec, generations=not args.quiet)
    for warning in warnings:
        print(f"biotune-optuna: {warning}", file=sys.stderr)
    print(text)
