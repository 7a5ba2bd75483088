"""Warm start: the first generation and the surrogate's prior from plans of earlier studies.

BioTune's initial population is random (Colan, Davila, Hasegawa, arXiv:2508.15367, §III-A). A
study on the same backbone with other data often has earlier studies or a recorded plan table;
the plans that did well there are a better start than uniform draws. With ``warm_start`` the
sampler takes such plans as plain data (their genes, the value they reached there, where they
come from), best first: the first of them fill the first slots of generation 0 (the rest of
the generation is drawn as usual), and TPE's estimator of good plans
(:class:`~biotune_optuna.samplers._surrogate.CandidateRanker`), which draws candidate children
(and ranks them under ``surrogate="tpe"``), counts them as observations of good plans with a
weight that fades as the study's own trials accumulate. The plan Gaussian process that ranks
candidates in the preset sees the study's own trials only: values from other data are not
values of this task.

The plans a study started with are stored with it (the study system attr
:data:`~biotune_optuna.samplers._keys.WARM_START_KEY`), so a resumed study seeds from them
whatever its new sampler was given; the study's user attr ``warm_start``
(:data:`~biotune_optuna.samplers._keys.WARM_START_USER_ATTR`) and each seeded trial's say where
the plans came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any
from typing import TYPE_CHECKING
import warnings

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from biotune_optuna.samplers._configurations import ConfigurationSet
from biotune_optuna.samplers._keys import WARM_START_KEY
from biotune_optuna.samplers._keys import WARM_START_USER_ATTR
from biotune_optuna.samplers._optuna_bridge import contains
from biotune_optuna.samplers._optuna_bridge import storage_of
from biotune_optuna.samplers._optuna_bridge import study_id_of
from biotune_optuna.samplers._space import GeneSpace


if TYPE_CHECKING:
    from optuna.study import Study

    from biotune_optuna.samplers._lineage import StudyIndex


__all__ = ["check_warm_start", "load_warm_start"]


def check_warm_start(
    plans: Sequence[Mapping[str, Any]] | None,
    search_space: Mapping[str, BaseDistribution] | None,
    *,
    limit: int,
    tolerance: float,
) -> list[dict[str, Any]]:
    """The prior plans as the sampler keeps them: checked, distinct, best (first given) first.

    Args:
        plans: ``{"params": {gene: value}, "value": float | None, "source": str}`` each, best
            first; ``value`` is what the plan reached where it was measured (provenance only:
            values of other data are not comparable with this study's).
        search_space: The study's genes; every plan must give each of them a value inside it.
        limit: Keep at most this many (the population size).
        tolerance: Plans whose continuous genes differ by less (unit cube) are one
            configuration; only the first is kept.

    Raises:
        ValueError: A plan without the space's genes (another backbone), or out of it.
    """
    if not plans:
        return []
    if not search_space:
        raise ValueError("`warm_start` needs `search_space`: the genes its plans are checked in")
    space = GeneSpace(search_space)
    kept, seen = [], ConfigurationSet(space, tolerance=tolerance)
    for k, plan in enumerate(plans):
        entry = _checked_plan(k, plan, search_space)
        if not seen.add(space.encode(entry["params"], _no_fill)) and len(kept) < limit:
            kept.append(entry)
    return kept


def _checked_plan(
    k: int, plan: Mapping[str, Any], search_space: Mapping[str, BaseDistribution]
) -> dict[str, Any]:
    if not isinstance(plan, Mapping) or not isinstance(plan.get("params"), Mapping):
        raise ValueError(f"warm_start plan {k} must be a mapping with a `params` mapping")
    params = plan["params"]
    missing = sorted(set(search_space) - set(params))
    if missing:
        raise ValueError(f"warm_start plan {k} lacks the study's genes {', '.join(missing)}")
    for name, dist in search_space.items():
        if not contains(dist, params[name]):
            raise ValueError(f"warm_start plan {k}: {name}={params[name]!r} is outside {dist}")
    value = plan.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"warm_start plan {k}: `value` must be a number, got {value!r}")
    return {
        "params": {name: params[name] for name in sorted(search_space)},
        "value": None if value is None or not math.isfinite(value) else float(value),
        "source": str(plan.get("source", "prior")),
    }


def load_warm_start(study: Study, index: StudyIndex, given: list[dict[str, Any]]) -> None:
    """Put the study's prior plans in ``index.warm_plans``: those stored with the study, or, for
    a study without any, ``given``, which are then stored with their provenance."""
    if index.warm_plans is not None:
        return
    storage, study_id = storage_of(study), study_id_of(study)
    stored = storage.get_study_system_attrs(study_id).get(WARM_START_KEY)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    if stored is None and given and not _finished(trials):
        storage.set_study_system_attr(study_id, WARM_START_KEY, given)
        sources = sorted({plan["source"] for plan in given})
        storage.set_study_user_attr(
            study_id, WARM_START_USER_ATTR, {"sources": sources, "plans": given}
        )
        stored = given
    elif given and stored != given:
        warnings.warn(
            f"Study `{study.study_name}` keeps the warm-start plans it started with "
            f"({len(stored or [])}); the {len(given)} given to this sampler are not used.",
            stacklevel=3,
        )
    index.warm_plans = list(stored or [])


def _finished(trials: Sequence[FrozenTrial]) -> bool:
    """Whether the study has begun (a started study that ran cold continues cold)."""
    return any(trial.state.is_finished() for trial in trials)


def _no_fill() -> Any:
    raise AssertionError("a checked plan has every gene")
