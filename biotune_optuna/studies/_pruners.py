"""Pruners by name for study specs.

The paper trains every plan to its end, so the default is ``"none"``. Note that Optuna's own
default, :class:`~optuna.pruners.MedianPruner`, would stop many GA trials after their first
epoch; a spec has to ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from biotune_optuna.samplers._registry import Option


__all__ = ["PRUNERS", "check_pruner_option", "create_pruner"]

_AT_LEAST_0 = Option(int, 0)
_AT_LEAST_1 = Option(int, 1)
_REDUCTION = Option(int, 2)  # a factor of 1 never promotes nor stops anything
_STEPS = {"n_warmup_steps": _AT_LEAST_0, "interval_steps": _AT_LEAST_1}
_WARMUP = {"n_startup_trials": _AT_LEAST_0, **_STEPS, "n_min_trials": _AT_LEAST_1}

#: Name → (pruner class, the options a spec may set with their types and values). Optuna
#: checks some of these itself, not all: a threshold of NaN never prunes, and Hyperband
#: takes a ``reduction_factor`` of 1 or a ``min_resource`` of 0 without a word.
PRUNERS: dict[str, tuple[type, dict[str, Option]]] = {
    "none": (optuna.pruners.NopPruner, {}),
    "median": (optuna.pruners.MedianPruner, _WARMUP),
    "percentile": (
        optuna.pruners.PercentilePruner,
        {**_WARMUP, "percentile": Option(float, 0.0, 100.0)},
    ),
    "successive_halving": (
        optuna.pruners.SuccessiveHalvingPruner,
        {
            "min_resource": _AT_LEAST_1,
            "reduction_factor": _REDUCTION,
            "min_early_stopping_rate": _AT_LEAST_0,
        },
    ),
    "hyperband": (
        optuna.pruners.HyperbandPruner,
        {"min_resource": _AT_LEAST_1, "max_resource": _AT_LEAST_1, "reduction_factor": _REDUCTION},
    ),
    "threshold": (
        optuna.pruners.ThresholdPruner,
        {"lower": Option(float), "upper": Option(float), **_STEPS},
    ),
}


def check_pruner_option(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid option ``key`` of pruner ``name`` (``None``: valid)."""
    options = PRUNERS[name][1]
    if key not in options:
        return f"pruner {name!r} takes no option {key!r}; it takes {', '.join(options) or 'none'}"
    return options[key].problem(value)


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
