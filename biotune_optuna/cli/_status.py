"""``status``: a study's trials per state, generation, best so far and recommended trial."""

from __future__ import annotations

import argparse
from typing import Any

from biotune_optuna.cli._common import spec_of
from biotune_optuna.studies import load_study
from biotune_optuna.studies._report import estimate_words
from biotune_optuna.studies._report import evaluations_words
from biotune_optuna.studies._report import status_summary
from biotune_optuna.studies._session import running_trials_health
from biotune_optuna.studies._storage import display_storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``status`` command has no arguments of its own."""


def handle(args: argparse.Namespace) -> int:
    """Print the progress of the spec's study, and the health of its running trials."""
    spec = spec_of(args)
    study = load_study(spec)
    summary = status_summary(study)
    states = ", ".join(f"{n} {s.lower()}" for s, n in summary["states"].items()) or "none"
    print(f"study `{summary['study']}` in {display_storage(spec.storage)}")
    print(f"  sampler     {summary['sampler']}")
    print(f"  budget      {summary['budget'] or spec.describe_budget()}")
    print(f"  trials      {summary['trials']} ({states})")
    if summary["generation"] is not None:
        print(f"  generation  {summary['generation']}")
    print(f"  metric      {summary['metric']} ({summary['direction']}d)")
    if summary["best_value"] is not None:
        _print_values(summary)
    else:
        print("  best        none yet")
    for number, health in running_trials_health(study, spec.grace_period):
        print(f"  running     trial {number}: {health}")
    return 0


def _print_values(summary: dict[str, Any]) -> None:
    """The best value observed (one evaluation) and the recommended trial, each named."""
    print(
        f"  best        {summary['best_value']:.4f} observed "
        f"(trial #{summary['best_trial']}, a single evaluation)"
    )
    print(
        f"  recommended trial #{summary['recommended_trial']}: observed "
        f"{summary['recommended_observed']:.4f} "
        f"({evaluations_words(summary['recommended_evaluations'])})"
    )
    words = estimate_words(summary["recommended_rule"], summary["recommended_n_trials"])
    print(f"              model estimate {summary['recommended_estimate']:.4f}: {words}")
