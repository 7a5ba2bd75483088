"""Race samplers on a recorded plan table: many seeded studies, replayed in seconds.

A race runs one study per (entry, seed) on a :class:`~biotune_optuna.studies._plan_table.PlanTable`
through the replay objective (:class:`~biotune_optuna.studies._replay.TableObjective`), with the
project's own samplers and pruners (:data:`~biotune_optuna.samplers.SAMPLERS`,
:data:`~biotune_optuna.samplers.PRUNERS`) on in-memory storage. Each study is scored by
what its user would get: the recorded **test** accuracy (:meth:`PlanTable.test_accuracy`) of
the plan :func:`~biotune_optuna.studies.recommend` picks, never the luckiest validation
value. The test split chooses nothing: the recommendation sees validation values only.

A study's record keeps every trial (grid code, fold, state, value, epochs) and its *anytime
curve*: after every ``every`` trials (and at each budget), the cumulative epochs of all trials so
far (complete, pruned and failed alike) and the recommended plan's recorded test accuracy.
Records are plain JSON, so a race can be stored, resumed and judged later
(:mod:`~biotune_optuna.studies._race_statistics`). Imports without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import math
import time
from typing import Any
from typing import NamedTuple

import optuna

from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._recommendation import recommend
from biotune_optuna.studies._replay import TABLE_CODE_ATTR
from biotune_optuna.studies._replay import TableObjective
from biotune_optuna.trials import EPOCHS_ATTR
from biotune_optuna.trials import FOLD_ATTR


__all__ = [
    "BUDGETS",
    "RaceEntry",
    "race_entries",
    "race_study",
    "score_at",
    "score_at_epochs",
]

#: The trial budgets a race scores: a short study, a medium one, the paper's ~140 trials.
BUDGETS = (25, 50, 140)

_STATE = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "fail",
}


class RaceEntry(NamedTuple):
    """A contestant: a sampler of the registry, with a pruner (``"none"``: train every trial).

    Attributes:
        label: How tables and figures name it.
        sampler: Registry name of the sampler (:data:`~biotune_optuna.samplers.SAMPLERS`).
        pruner: Registry name of the pruner (:data:`~biotune_optuna.samplers.PRUNERS`).
        pruner_options: The pruner's options.
        sampler_options: The sampler's options (``options`` of
            :func:`~biotune_optuna.samplers._registry.create_sampler`), e.g. a preset with one
            option off, or a BioTune preset's ``warm_start`` plans.
    """

    label: str
    sampler: str
    pruner: str = "none"
    pruner_options: Mapping[str, Any] = {}
    sampler_options: Mapping[str, Any] = {}


def race_entries(max_epochs: int) -> dict[str, RaceEntry]:
    """Every sampler of the registry but ``grid``, and the multi-fidelity variants.

    The variants are those of the compute benchmark: ``biotune-plus`` and ``tpe`` with
    successive halving (rungs after 1, 2, 4… epochs, half promoted), and ``random`` with
    Hyperband up to ``max_epochs``. No pruner stops a trial after its last epoch.
    """
    entries = {name: RaceEntry(name, name) for name in SAMPLERS if name != "grid"}
    halving = {"min_resource": 1, "reduction_factor": 2}
    hyperband = {"min_resource": 1, "max_resource": max_epochs, "reduction_factor": 2}
    entries["biotune-plus+sh"] = RaceEntry(
        "biotune-plus + SH", "biotune-plus", "successive_halving", halving
    )
    entries["tpe+sh"] = RaceEntry("tpe + SH", "tpe", "successive_halving", halving)
    entries["random+hyperband"] = RaceEntry("random + Hyperband", "random", "hyperband", hyperband)
    return entries


def race_study(
    table: PlanTable,
    entry: RaceEntry,
    *,
    seed: int,
    n_trials: int = max(BUDGETS),
    budgets: Iterable[int] = BUDGETS,
    every: int = 5,
) -> dict[str, Any]:
    """Run one seeded study of ``entry`` on ``table``; its record (plain JSON).

    Args:
        table: The recorded table to replay.
        entry: The sampler and pruner.
        seed: The sampler's seed.
        n_trials: Trials of the study.
        budgets: Trial counts at which the recommendation is scored (all ``<= n_trials``).
        every: The anytime curve has a point after every ``every`` trials.

    Returns:
        ``{"seed", "seconds", "trials": [[code, fold, state, value, epochs], ...],
        "curve": [[trials, cumulative epochs, recommended code, its recorded test], ...]}``.
    """
    objective = TableObjective(table)
    start = time.perf_counter()
    study = optuna.create_study(
        direction="maximize",
        sampler=SAMPLERS.create(
            entry.sampler,
            seed=seed,
            search_space=objective.search_space,
            options=entry.sampler_options,
        ),
        pruner=PRUNERS.create(entry.pruner, entry.pruner_options),
    )
    study.optimize(objective, n_trials=n_trials)
    seconds = time.perf_counter() - start
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    points = sorted({*range(every, len(trials) + 1, every), *budgets} & {*range(1, n_trials + 1)})
    return {
        "seed": seed,
        "seconds": round(seconds, 3),
        "trials": [_trial_row(trial) for trial in trials],
        "curve": _curve(table, trials, points),
    }


def _trial_row(trial: optuna.trial.FrozenTrial) -> list[Any]:
    value = None if trial.value is None else round(float(trial.value), 6)
    return [
        trial.user_attrs.get(TABLE_CODE_ATTR),
        trial.user_attrs.get(FOLD_ATTR),
        _STATE.get(trial.state, trial.state.name.lower()),
        value,
        float(trial.user_attrs.get(EPOCHS_ATTR, 0.0)),
    ]


def _curve(
    table: PlanTable, trials: list[optuna.trial.FrozenTrial], points: list[int]
) -> list[list[Any]]:
    """After each point's first trials: cumulative epochs, the recommendation and its test."""
    cumulative, total = [], 0.0
    for trial in trials:
        total += float(trial.user_attrs.get(EPOCHS_ATTR, 0.0))
        cumulative.append(total)
    curve = []
    for k in points:
        chosen = recommend(trials[:k], direction="maximize")
        code = None if chosen is None else chosen.trial.user_attrs[TABLE_CODE_ATTR]
        test = None if code is None else round(table.test_accuracy(code), 6)
        curve.append([k, cumulative[k - 1], code, test])
    return curve


def score_at(record: Mapping[str, Any], budget: int) -> float | None:
    """The recorded test accuracy of the study's recommendation after ``budget`` trials."""
    for k, _, _, test in record["curve"]:
        if k == budget:
            return test
    return None


def score_at_epochs(record: Mapping[str, Any], epochs: float) -> float:
    """The study's score with ``epochs`` spent: the recorded test accuracy at its last curve
    point within them (``nan`` if it had none yet): how an anytime curve is read."""
    value = math.nan
    for _, spent, _, test in record["curve"]:
        if spent > epochs:
            break
        value = math.nan if test is None else test
    return value
