"""Writing a trial's attributes to storage in as few round trips as possible.

The sampler writes one system attr and three user attrs per trial. Through Optuna's public API that
is four commits, which on SQLite costs more than the rest of a trial's bookkeeping. For relational
storages the writes are done in one transaction with the storage's own per-attribute helper;
every other storage (in-memory, journal, gRPC proxy) goes through the public API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TYPE_CHECKING

from optuna.storages import RDBStorage


try:  # Optuna internals, used only to batch the writes in one transaction.
    from optuna.storages._rdb import models as _models
    from optuna.storages._rdb.storage import _create_scoped_session
except ImportError:  # they moved: every storage goes through the public API
    _models = None


if TYPE_CHECKING:
    from optuna.storages import BaseStorage


def _relational_backend(storage: BaseStorage) -> RDBStorage | None:
    backend = getattr(storage, "_backend", storage)  # optuna wraps RDBStorage in _CachedStorage
    if _models is None:
        return None
    if isinstance(backend, RDBStorage) and hasattr(backend, "_set_trial_attr_without_commit"):
        return backend
    return None


def write_trial_attrs(
    storage: BaseStorage,
    trial_id: int,
    *,
    system_attrs: Mapping[str, Any],
    user_attrs: Mapping[str, Any],
) -> None:
    """Set system and user attrs of a running trial, in one transaction where the storage allows.

    Args:
        storage: The study's storage.
        trial_id: Storage id of a RUNNING trial.
        system_attrs: System attrs to set.
        user_attrs: User attrs to set.
    """
    backend = _relational_backend(storage)
    if backend is None:
        for key, value in system_attrs.items():
            storage.set_trial_system_attr(trial_id, key, value)
        for key, value in user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return

    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in system_attrs.items():
            backend._set_trial_attr_without_commit(
                session, _models.TrialSystemAttributeModel, trial_id, key, value
            )
        for key, value in user_attrs.items():
            backend._set_trial_attr_without_commit(
                session, _models.TrialUserAttributeModel, trial_id, key, value
            )
