"""Pruners by name for study specs.

The paper trains every plan to its end, so the default is ``"none"``. Note that Optuna's own
default, :class:`~optuna.pruners.MedianPruner`, would stop many GA trials after their first
epoch; a spec has to ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from biotune_optuna.samplers._registry import type_problem


__all__ = ["PRUNERS", "check_pruner_option", "create_pruner"]

_WARMUP = {"n_startup_trials": int, "n_warmup_steps": int, "interval_steps": int}

#: Name → (pruner class, the options a spec may set with their types).
PRUNERS: dict[str, tuple[type, dict[str, type]]] = {
    "none": (optuna.pruners.NopPruner, {}),
    "median": (optuna.pruners.MedianPruner, {**_WARMUP, "n_min_trials": int}),
    "percentile": (
        optuna.pruners.PercentilePruner,
        {**_WARMUP, "percentile": float, "n_min_trials": int},
    ),
    "successive_halving": (
        optuna.pruners.SuccessiveHalvingPruner,
        {"min_resource": int, "reduction_factor": int, "min_early_stopping_rate": int},
    ),
    "hyperband": (
        optuna.pruners.HyperbandPruner,
        {"min_resource": int, "max_resource": int, "reduction_factor": int},
    ),
    "threshold": (
        optuna.pruners.ThresholdPruner,
        {"lower": float, "upper": float, "n_warmup_steps": int, "interval_steps": int},
    ),
}


def check_pruner_option(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid option ``key`` of pruner ``name`` (``None``: valid)."""
    kinds = PRUNERS[name][1]
    if key not in kinds:
        return f"pruner {name!r} takes no option {key!r}; it takes {', '.join(kinds) or 'none'}"
    return type_problem(value, kinds[key])


def create_pruner(
    name: str, options: Mapping[str, Any] | None = None
) -> optuna.pruners.BasePruner:
    """Build a pruner by name (see :data:`PRUNERS`).

    Raises:
        ValueError: On an unknown name or option, or a value the pruner rejects.
    """
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")
    options = dict(options or {})
    for key, value in options.items():
        problem = check_pruner_option(name, key, value)
        if problem:
            raise ValueError(f"pruner option {key!r}: {problem}")
    try:
        return PRUNERS[name][0](**options)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"pruner {name!r}: {exc}") from None
