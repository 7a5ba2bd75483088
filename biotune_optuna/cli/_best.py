"""``best``: the study's recommended plan as a table (also what ``run`` ends with)."""

from __future__ import annotations

import argparse

import numpy as np
import optuna

from biotune_optuna.cli._common import spec_of
from biotune_optuna.studies import load_study
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import Recommendation
from biotune_optuna.studies._report import best_plan_rows
from biotune_optuna.studies._report import estimate_words
from biotune_optuna.studies._report import evaluations_words
from biotune_optuna.studies._report import format_share
from biotune_optuna.studies._report import frozen_head_warning
from biotune_optuna.studies._report import markdown_table
from biotune_optuna.studies._report import metric_name
from biotune_optuna.studies._report import plan_evaluations
from biotune_optuna.studies._report import strategy_markdown
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``best`` command has no arguments of its own."""


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
    _print_values(study, recommendation)
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


def _print_values(study: optuna.Study, recommendation: Recommendation) -> None:
    """The recommended trial's observed value and the model's estimate, and the best value
    observed, each said for what it is."""
    chosen, best = recommendation.trial, study.best_trial
    attrs = chosen.user_attrs
    observed = plan_evaluations(study, chosen)
    print(f"\nrecommended trial #{chosen.number} ({metric_name(study)}, {_direction(study)})")
    line = f"  observed        {np.mean(observed):.4f}: {evaluations_words(observed)}"
    if FOLD_ATTR in attrs and len(observed) == 1:
        line += f" (fold {attrs[FOLD_ATTR]})"
    if TRAINABLE_FRACTION_ATTR in attrs:
        line += f", {format_share(attrs[TRAINABLE_FRACTION_ATTR])}% of the parameters trained"
    print(line)
    words = estimate_words(recommendation.rule, recommendation.n_trials)
    print(f"  model estimate  {recommendation.estimate:.4f}: {words}")
    fold = f" (fold {best.user_attrs[FOLD_ATTR]})" if FOLD_ATTR in best.user_attrs else ""
    print(f"  best observed   {best.value:.4f}: trial #{best.number}, a single evaluation{fold}")


def _direction(study: optuna.Study) -> str:
    return f"{study.direction.name.lower()}d"
