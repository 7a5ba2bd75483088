"""Warm start: the prior plans a study spec names, read from earlier studies and plan tables.

A spec's ``[sampler] warm_start`` lists sources on the same backbone (the same block names) with
other data: ``{study = "...", storage = "..."}`` for an earlier study, ``{table = "path"}`` for a
recorded :class:`~biotune_optuna.studies._plan_table.PlanTable`, each with an optional ``top``
(how many plans it gives, :data:`DEFAULT_TOP` by default). This module reads them into the plain
plans a BioTune preset's ``warm_start`` takes (see
:mod:`~biotune_optuna.samplers._warm_start`): from a study, the plan
:func:`~biotune_optuna.studies._recommendation.recommend` picks, then its other COMPLETE trials
by value; from a table, its plans by mean recorded VALIDATION value (never test). The sources'
plans are interleaved, best of each first. Files are read as data only (JSON), studies through
Optuna's storage; anything unreadable or on other blocks is a :class:`SpecError`, raised before
the study is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import itertools
import math
from pathlib import Path
from typing import Any

import optuna

from biotune_optuna.options import Option
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import importance_param
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.studies._errors import SpecError
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._plan_table import TableError
from biotune_optuna.studies._recommendation import recommend


__all__ = ["DEFAULT_TOP", "check_sources", "warm_start_plans"]

#: Plans each source gives by default: half of the paper's population of 10, so that with one
#: source half of the first generation stays random (a source that misleads cannot take all of
#: it); several sources together fill at most the population.
DEFAULT_TOP = 5

_TOP = Option(int, 1, 1000)


def check_sources(value: Any, base: Path) -> tuple[dict[str, Any], ...]:
    """The ``warm_start`` sources of a spec, checked (paths resolved against ``base``).

    Raises:
        ValueError: One line saying what is wrong.
    """
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of {study, storage} or {table} tables")
    sources = []
    for k, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise ValueError(f"entry {k} must be a table, got {entry!r}")
        keys = set(entry) - {"top"}
        top = entry.get("top", DEFAULT_TOP)
        problem = _TOP.problem(top)
        if problem:
            raise ValueError(f"entry {k}: top {problem}")
        if keys == {"table"} and isinstance(entry["table"], str):
            sources.append({"table": str((base / entry["table"]).resolve()), "top": top})
        elif keys == {"study", "storage"} and all(isinstance(entry[x], str) for x in keys):
            storage = entry["storage"]
            if storage.startswith("sqlite:///") and not Path(storage[10:]).is_absolute():
                storage = f"sqlite:///{(base / storage[10:]).resolve()}"
            sources.append({"study": entry["study"], "storage": storage, "top": top})
        else:
            raise ValueError(
                f'entry {k} must give `table = "path"` or `study` and `storage` '
                f"(and optionally `top`), got keys {sorted(entry)}"
            )
    return tuple(sources)


def warm_start_plans(
    sources: Sequence[Mapping[str, Any]], blocks: Sequence[str]
) -> list[dict[str, Any]]:
    """The prior plans of ``sources`` for a study over ``blocks``, interleaved best first.

    Raises:
        SpecError: A source that cannot be read, or that is on other blocks.
    """
    per_source = [
        _table_plans(s["table"], blocks, s["top"])
        if "table" in s
        else _study_plans(s["study"], s["storage"], blocks, s["top"])
        for s in sources
    ]
    interleaved = itertools.chain.from_iterable(itertools.zip_longest(*per_source))
    return [plan for plan in interleaved if plan is not None]


def _table_plans(path: str, blocks: Sequence[str], top: int) -> list[dict[str, Any]]:
    """A table's ``top`` plans by mean recorded validation value, as genes of ``blocks``."""
    try:
        table = PlanTable.load(path)
    except (OSError, TableError, ValueError) as exc:
        raise SpecError(f"[sampler] warm_start: cannot read table {path}: {exc}") from None
    if tuple(table.blocks) != tuple(blocks):
        raise SpecError(
            f"[sampler] warm_start: table {path} is over blocks {', '.join(table.blocks)}, "
            f"the study's are {', '.join(blocks)}"
        )
    ranked = sorted(table.plans, key=lambda code: (-table.expected_value(code), code))
    plans = []
    for code in ranked[:top]:
        plans.append(
            {
                "params": genes_of_code(code, table.blocks, table.levels),
                "value": round(table.expected_value(code), 6),
                "source": f"table:{Path(path).name}",
            }
        )
    return plans


def genes_of_code(code: str, blocks: Sequence[str], levels: Sequence[float]) -> dict[str, float]:
    """Genes in ``[0, 1]`` that a table gives the code ``code`` (its inverse, as
    :meth:`~biotune_optuna.studies._plan_table.PlanTable.code_of` reads genes).

    A level's importance is ``0.5 + log10(level) / 2`` (the multiplier's inverse); each trained
    block takes the middle of the importances nearest its level, the threshold the middle of
    the lowest level's range and frozen blocks half of it, so that small gene steps keep the
    plan.
    """
    centres = [min(1.0, max(0.0, 0.5 + math.log10(level) / 2)) for level in levels]
    edges = [0.0, *((a + b) / 2 for a, b in itertools.pairwise(centres)), 1.0]
    threshold = edges[1] / 2
    importances = []
    for c in code:
        k = int(c)
        low = threshold if k == 1 else edges[k - 1]
        importances.append(threshold / 2 if k == 0 else (low + edges[k]) / 2)
    params = {importance_param(b): nu for b, nu in zip(blocks, importances)}
    params[THRESHOLD_PARAM] = threshold
    return params


def _study_plans(name: str, storage: str, blocks: Sequence[str], top: int) -> list[dict[str, Any]]:
    """An earlier study's recommended plan, then its other COMPLETE trials by value."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except (KeyError, ValueError, RuntimeError, ImportError) as exc:
        raise SpecError(f"[sampler] warm_start: cannot read study `{name}`: {exc}") from None
    genes = {importance_param(b) for b in blocks} | {THRESHOLD_PARAM}
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not trials or any(set(t.params) != genes for t in trials):
        raise SpecError(
            f"[sampler] warm_start: study `{name}` has no COMPLETE trials over the study's "
            f"blocks {', '.join(blocks)}"
        )
    chosen = recommend(study)
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    rest = sorted(trials, key=lambda t: (-sign * float(t.value or 0.0), t.number))
    ordered = ([chosen.trial] if chosen is not None else []) + rest
    plans, seen = [], set()
    for trial in ordered:
        key = tuple(sorted(trial.params.items()))
        if key in seen or len(plans) == top:
            continue
        seen.add(key)
        FineTunePlan.from_params(trial.params, tuple(blocks))  # a valid plan of these blocks
        plans.append(
            {"params": dict(trial.params), "value": trial.value, "source": f"study:{name}"}
        )
    return plans
