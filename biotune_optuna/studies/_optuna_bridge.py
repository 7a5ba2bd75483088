"""Optuna's private API as the study layer uses it, in one place.

``pyproject.toml`` allows any ``optuna>=5.0,<6``, and a minor release may move or rename a
private name. Every private name the study layer touches is reached through this module, and
listed in :data:`PRIVATE_NAMES` and :data:`PRIVATE_ATTRIBUTES`, which
``tests/test_optuna_bridges.py`` resolves against the installed Optuna: when Optuna changes
under us, that test names this module and the version, instead of five rooms failing at once.

The heavy parts (Optuna's Gaussian process, which needs torch; its RDB models, which need
SQLAlchemy) are imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import types
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal._file import BaseJournalFileLock
from optuna.storages.journal._file import get_lock_file


__all__ = [
    "PRIVATE_ATTRIBUTES",
    "PRIVATE_NAMES",
    "BaseHeartbeat",
    "BaseJournalFileLock",
    "gaussian_process",
    "get_lock_file",
    "journal_lock",
    "rdb_backend",
    "rdb_heartbeat_row",
    "storage_of",
    "study_id",
    "trial_id",
]

#: Private names imported from Optuna, as ``"module:name"``.
PRIVATE_NAMES = (
    "optuna.storages._heartbeat:BaseHeartbeat",
    "optuna.storages.journal._file:BaseJournalFileLock",
    "optuna.storages.journal._file:get_lock_file",
    "optuna.storages._rdb.models:TrialHeartbeatModel",
    "optuna.storages._rdb.storage:_create_scoped_session",
    "optuna._gp.gp:fit_kernel_params",
    "optuna._gp.gp:GPRegressor",
    "optuna._gp.prior:default_log_prior",
    "optuna._gp.prior:DEFAULT_MINIMUM_NOISE_VAR",
    "optuna._gp.search_space:SearchSpace",
    "optuna._gp.thread_limiting:limit_threads_in_optimization",
)
#: Private attributes read from Optuna's objects, as ``"Class.attribute"``: a study's storage
#: and id, a trial's id (live and frozen), a cached storage's backend, a journal file's lock;
#: and the private hooks the heartbeat storages override (``studies._heartbeat``).
PRIVATE_ATTRIBUTES = (
    "Study._storage",
    "Study._study_id",
    "Trial._trial_id",
    "FrozenTrial._trial_id",
    "_CachedStorage._backend",
    "JournalFileBackend._lock",
    "BaseHeartbeat._get_stale_trial_ids",
    "RDBStorage._get_stale_trial_ids",
    "RDBStorage._create_new_trial",
)


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (``study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (``study._study_id``)."""
    return study._study_id


def trial_id(trial: optuna.trial.BaseTrial) -> int:
    """The trial's id in its storage (``trial._trial_id``), live or frozen."""
    return trial._trial_id  # type: ignore[attr-defined]


def journal_lock(backend: optuna.storages.journal.JournalFileBackend) -> BaseJournalFileLock:
    """The lock every process writing a journal file takes (``backend._lock``)."""
    return backend._lock


def rdb_backend(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDB storage behind ``storage`` (Optuna wraps it in a cache), or ``None``."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


@contextlib.contextmanager
def rdb_heartbeat_row(backend: optuna.storages.RDBStorage, trial: Any) -> Iterator[Any]:
    """A trial's row of Optuna's heartbeat table (``None`` without one), and its session."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        yield models.TrialHeartbeatModel.where_trial_id(trial_id(trial), session), session


def gaussian_process() -> types.SimpleNamespace:
    """Optuna's Gaussian process (:mod:`optuna._gp`, the model of ``GPSampler``; needs torch).

    Returns:
        A namespace of ``gp`` (``fit_kernel_params``, ``GPRegressor``), ``prior``,
        ``search_space`` (``SearchSpace``) and ``limit_threads_in_optimization``.
    """
    from optuna._gp import gp
    from optuna._gp import prior
    from optuna._gp import search_space
    from optuna._gp.thread_limiting import limit_threads_in_optimization

    return types.SimpleNamespace(
        gp=gp,
        prior=prior,
        search_space=search_space,
        limit_threads_in_optimization=limit_threads_in_optimization,
    )
