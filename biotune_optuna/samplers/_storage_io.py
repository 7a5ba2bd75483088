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

from biotune_optuna.samplers import _optuna_bridge as _bridge


if TYPE_CHECKING:
    from optuna.storages import BaseStorage


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
    backend = _bridge.relational_backend(storage)
    if backend is None:
        for key, value in system_attrs.items():
            storage.set_trial_system_attr(trial_id, key, value)
        for key, value in user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return

    models, session_scope = _bridge.rdb_models, _bridge.create_scoped_session
    assert models is not None and session_scope is not None
    with session_scope(backend.scoped_session, True) as session:
        for key, value in system_attrs.items():
            backend._set_trial_attr_without_commit(
                session, models.TrialSystemAttributeModel, trial_id, key, value
            )
        for key, value in user_attrs.items():
            backend._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial_id, key, value
            )
