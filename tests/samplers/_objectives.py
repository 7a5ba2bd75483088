"""Objectives shared by the sampler tests."""

from __future__ import annotations

from collections.abc import Callable

import optuna


def flaky(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """``objective`` with every 5th trial failing (numbers 1, 6, …) and every 5th pruned
    after one report (numbers 3, 8, …)."""

    def run(trial: optuna.Trial) -> float:
        value = objective(trial)
        if trial.number % 5 == 1:
            raise RuntimeError("out of memory")
        if trial.number % 5 == 3:
            trial.report(value, 0)
            raise optuna.TrialPruned()
        return value

    return run
