"""``best``: the study's recommended plan as a table (also what ``run`` ends with)."""

from __future__ import annotations

import argparse

import optuna

from biotune_optuna.cli._common import add_spec_command
from biotune_optuna.cli._common import spec_of
from biotune_optuna.recommendation import current_recommendation
from biotune_optuna.studies import load_study
from biotune_optuna.studies.report import best_plan_rows
from biotune_optuna.studies.report import format_share
from biotune_optuna.studies.report import frozen_head_warning
from biotune_optuna.studies.report import markdown_table
from biotune_optuna.studies.report import strategy_markdown


#: How ``best`` names each rule of :func:`biotune_optuna.recommendation.recommend`.
RULE_WORDS = {
    "smoothed": "Gaussian-process mean over the trials, fold offsets and noise taken out",
    "mean": "mean of the plan's evaluations; too few trials for a model",
    "max": "best single value",
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``best`` command."""
    best = add_spec_command(
        commands,
        "best",
        "the recommended plan as a table",
        "Show the study's recommended trial (an estimate robust to fold and seed noise: a "
        "Gaussian process over all trials) with its decoded plan, and the best single value.",
    )
    best.set_defaults(handle=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the recommended trial of the spec's study."""
    print_best(load_study(spec_of(args)))
    return 0


def print_best(study: optuna.Study) -> None:
    """The study's recommended trial, its estimate and plan; the best single value apart."""
    recommendation = current_recommendation(study)
    if recommendation is None:
        print("no complete trial yet")
        return
    chosen = recommendation.trial
    print(
        f"\nrecommended trial #{chosen.number}: estimate {recommendation.estimate:.4f} "
        f"({RULE_WORDS.get(recommendation.rule, recommendation.rule)}, "
        f"{recommendation.n_trials} complete trials)"
    )
    for label, trial in (("its own value", chosen), ("best single value", study.best_trial)):
        attrs = trial.user_attrs
        line = f"  {label}: trial #{trial.number}, {trial.value:.4f}"
        if "fold" in attrs:
            line += f" (validation macro accuracy, fold {attrs['fold']})"
        if "trainable_fraction" in attrs and trial is chosen:
            line += f", {format_share(attrs['trainable_fraction'])}% of the parameters trained"
        print(line)
    if "freeze_threshold" not in chosen.params:  # a baseline strategy's trial
        print(strategy_markdown(chosen))
        return
    base_lr = float(study.user_attrs.get("base_lr", 1e-3))
    rows = best_plan_rows(chosen, base_lr)
    print(f"freeze threshold {chosen.params.get('freeze_threshold', float('nan')):.3f}")
    print(markdown_table(["block", "importance", "plan", "lr multiplier", "lr"], rows))
    warning = frozen_head_warning(chosen, base_lr)
    if warning is not None:
        print(warning)
