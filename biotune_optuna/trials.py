"""Where a trial sits in a study: its generation's data fold, and the trial a retry stands for.

The paper's protocol (Colan, Davila, Hasegawa, arXiv:2508.15367, §III) trains each generation on
one fold of the data, the folds alternating; every objective (the fine-tuning engine, a replayed
plan table) places a trial on its fold by these rules, under any sampler. Imports without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna


__all__ = [
    "DUPLICATE_RETRY_KEY",
    "FAILED_TRIAL_KEY",
    "RETRY_HISTORY_KEY",
    "fold_of_generation",
    "prune_if_asked",
    "retried_trial_number",
    "stored_system_attrs",
    "stored_user_attrs",
]

#: System attr of a heartbeat retry: the number of the first trial it retries (Optuna's
#: :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`).
FAILED_TRIAL_KEY = "failed_trial"
#: System attr of a heartbeat retry: the numbers of the trials it retries, first to last.
RETRY_HISTORY_KEY = "retry_history"
#: System attr of a heartbeat retry created twice for one dead trial (two workers at once): the
#: one that gave way to the earlier retry (whose number it holds), failed at once and never part
#: of the search.
DUPLICATE_RETRY_KEY = "biotune:duplicate_retry"


def fold_of_generation(generation: int, n_folds: int) -> int:
    """The data fold a generation trains and validates on (arXiv:2508.15367, §III).

    Generation ``g >= 1`` uses fold ``(g − 1) mod n_folds`` and the initial population
    (generation 0) uses fold 0: "the initial population and generation 1 both use fold 0",
    after which the folds alternate.
    """
    if generation < 0 or n_folds < 1:
        raise ValueError(f"need generation >= 0 and n_folds >= 1, got {generation}, {n_folds}")
    return max(generation - 1, 0) % n_folds


def stored_user_attrs(trial: optuna.trial.BaseTrial) -> Mapping[str, Any]:
    """User attrs as stored now (the sampler writes ``generation`` after the trial started)."""
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is not None and trial_id is not None:
        return storage.get_trial_user_attrs(trial_id)
    return trial.user_attrs


def stored_system_attrs(trial: optuna.trial.BaseTrial) -> Mapping[str, Any]:
    """System attrs as stored (a heartbeat retry's ``failed_trial`` and ``retry_history``)."""
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is not None and trial_id is not None:
        return storage.get_trial_system_attrs(trial_id)
    return getattr(trial, "system_attrs", {})


def retried_trial_number(trial: optuna.trial.BaseTrial) -> int:
    """The number of the trial a heartbeat retry retries (the first of its chain), else its own.

    Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` (run by
    ``fail_stale_trials`` for a trial whose worker stopped beating) gives the retry the system
    attrs ``failed_trial`` (the first trial retried) and ``retry_history`` (all of them).
    """
    attrs = stored_system_attrs(trial)
    if attrs.get(FAILED_TRIAL_KEY) is not None:
        return int(attrs[FAILED_TRIAL_KEY])
    history = attrs.get(RETRY_HISTORY_KEY) or ()
    return int(history[0]) if history else trial.number


def prune_if_asked(trial: optuna.trial.BaseTrial, epoch: int, value: float, *, last: int) -> None:
    """Ask the study's pruner after ``epoch`` of ``last``; raise :class:`optuna.TrialPruned` if
    it says stop. Never after the last epoch: the trial is trained, stopping it saves nothing
    and throws its value away (Optuna's pruners would prune there too)."""
    if epoch < last and trial.should_prune():
        raise optuna.TrialPruned(f"pruned after epoch {epoch} at {value:.4f}")
