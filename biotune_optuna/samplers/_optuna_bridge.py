"""Every private name of Optuna that the samplers use, behind one door.

Optuna's public API has no way to read a study's storage past its per-trial cache, to write a
trial's attributes in one transaction, or to reuse TPE's Parzen estimators (which the
surrogate-ranked candidates of :class:`~biotune_optuna.samplers.BioTunePlusSampler` do). Those
uses live here only, so that a new Optuna release that moves one breaks this module, and
``tests/samplers/test_optuna_bridge.py`` names it and the installed version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


try:  # TPE's estimators, for the surrogate-ranked candidates
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator as ParzenEstimator
    from optuna.samplers._tpe.parzen_estimator import (
        _ParzenEstimatorParameters as ParzenEstimatorParameters,
    )
    from optuna.samplers._tpe.sampler import default_gamma
    from optuna.samplers._tpe.sampler import default_weights
except ImportError as exc:
    raise ImportError(
        f"{__name__}: Optuna {optuna.__version__} moved a private name this bridge uses ({exc}); "
        f"update {__name__} for this Optuna version"
    ) from exc
try:  # Optuna internals, used only to batch the writes in one transaction.
    from optuna.storages._rdb import models as rdb_models
    from optuna.storages._rdb.storage import _create_scoped_session as create_scoped_session
except ImportError:  # they moved (or SQLAlchemy is missing): the public API is used instead
    rdb_models = None
    create_scoped_session = None


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study


__all__ = [
    "PRIVATE_ATTRIBUTES",
    "PRIVATE_IMPORTS",
    "ParzenEstimator",
    "ParzenEstimatorParameters",
    "cached_trials",
    "contains",
    "create_scoped_session",
    "default_gamma",
    "default_weights",
    "rdb_models",
    "relational_backend",
    "storage_of",
    "study_id_of",
    "trial_id_of",
]

#: ``(module, name)`` of every private import above.
PRIVATE_IMPORTS = (
    ("optuna.samplers._tpe.parzen_estimator", "_ParzenEstimator"),
    ("optuna.samplers._tpe.parzen_estimator", "_ParzenEstimatorParameters"),
    ("optuna.samplers._tpe.sampler", "default_gamma"),
    ("optuna.samplers._tpe.sampler", "default_weights"),
    ("optuna.storages._rdb", "models"),
    ("optuna.storages._rdb.storage", "_create_scoped_session"),
)
#: ``(class, attribute)`` of every private attribute used below (instance attributes of a
#: study and a trial are checked on live objects by the test).
PRIVATE_ATTRIBUTES = (
    (optuna.Study, "_storage"),
    (optuna.Study, "_study_id"),
    (optuna.Study, "_get_trials"),
    (FrozenTrial, "_trial_id"),
    (BaseDistribution, "_contains"),
    (RDBStorage, "_set_trial_attr_without_commit"),
)


def storage_of(study: Study) -> BaseStorage:
    """The study's storage."""
    return study._storage


def study_id_of(study: Study) -> int:
    """The study's id in its storage."""
    return study._study_id


def trial_id_of(trial: FrozenTrial) -> int:
    """The trial's id in its storage."""
    return trial._trial_id


def cached_trials(study: Study, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
    """The study's trials as Optuna's per-trial view of the study holds them (no copies)."""
    return study._get_trials(deepcopy=False, states=states, use_cache=True)


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` lies in ``dist`` (``False`` for a value it cannot represent)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def relational_backend(storage: BaseStorage) -> RDBStorage | None:
    """The relational storage behind ``storage`` when its per-attribute helper is there."""
    backend = getattr(storage, "_backend", storage)  # optuna wraps RDBStorage in _CachedStorage
    if rdb_models is None:
        return None
    if isinstance(backend, RDBStorage) and hasattr(backend, "_set_trial_attr_without_commit"):
        return backend
    return None
