"""Every private name of Optuna that the samplers use, behind one door.

Optuna's public API has no way to read a study's storage past its per-trial cache, to write a
trial's attributes in one transaction, or to reuse TPE's Parzen estimators (which the
surrogate-ranked candidates of :class:`~biotune_optuna.samplers.BioTunePlusSampler` do, with a
faster evaluation of their density, :func:`parzen_log_pdf`). Those uses live here only, so that
a new Optuna release that moves one breaks this module, and
``tests/samplers/test_optuna_bridge.py`` names it and the installed version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


try:  # TPE's estimators, for the surrogate-ranked candidates
    from optuna.samplers._tpe import _truncnorm as truncnorm
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator as ParzenEstimator
    from optuna.samplers._tpe.parzen_estimator import (
        _ParzenEstimatorParameters as ParzenEstimatorParameters,
    )
    from optuna.samplers._tpe.probability_distributions import (
        _BatchedTruncLogNormDistributions as BatchedTruncLogNorm,
    )
    from optuna.samplers._tpe.probability_distributions import (
        _BatchedTruncNormDistributions as BatchedTruncNorm,
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
    "parzen_log_pdf",
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
    ("optuna.samplers._tpe", "_truncnorm"),
    ("optuna.samplers._tpe._truncnorm", "_log_gauss_mass"),
    ("optuna.samplers._tpe._truncnorm", "_norm_pdf_logC"),
    ("optuna.samplers._tpe.probability_distributions", "_BatchedTruncNormDistributions"),
    ("optuna.samplers._tpe.probability_distributions", "_BatchedTruncLogNormDistributions"),
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
    (ParzenEstimator, "_transform"),
    (ParzenEstimator, "_mixture_distribution"),
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


#: Candidates per block in :func:`parzen_log_pdf` (a block's work array stays in cache).
_LOG_PDF_BLOCK = 16


def parzen_log_pdf(estimator: ParzenEstimator, samples: dict[str, np.ndarray]) -> np.ndarray:
    """``estimator.log_pdf(samples)``, bit for bit, about three times faster where it can be.

    For continuous parameters (TPE's truncated normal and log-normal kernels) and samples
    inside their bounds, Optuna's mixture density does the same arithmetic, in the same order,
    as this function, which leaves out the masks for samples outside the bounds and for
    zero-width kernels, computes each kernel's normalisation once and works in cache-sized
    blocks of candidates. Every other case (a categorical or stepped parameter, a sample out of
    bounds, a zero-width kernel) is Optuna's own ``log_pdf``.
    """
    mixture = estimator._mixture_distribution
    dists = mixture.distributions
    if not dists or not all(isinstance(d, (BatchedTruncNorm, BatchedTruncLogNorm)) for d in dists):
        return estimator.log_pdf(samples)
    x = estimator._transform(samples)
    x = np.asarray([np.log(x[:, i]) if d.is_log else x[:, i] for i, d in enumerate(dists)]).T
    lows = np.asarray([d.adapted_low for d in dists])
    highs = np.asarray([d.adapted_high for d in dists])
    mus, sigmas = np.asarray([d.mu for d in dists]).T, np.asarray([d.sigma for d in dists]).T
    a, b = (lows - mus) / sigmas, (highs - mus) / sigmas
    if x.ndim != 2 or not ((x >= lows) & (x <= highs)).all() or (a == b).any():
        return estimator.log_pdf(samples)
    log_mass, log_sigmas = truncnorm._log_gauss_mass(a, b), np.log(sigmas)
    log_weights = np.log(mixture.weights[np.newaxis])
    out = np.empty(len(x))
    for start in range(0, len(x), _LOG_PDF_BLOCK):
        # Optuna's truncnorm.logpdf: -(z**2) / 2 - logC - log_mass - log(sigma), z standardised.
        z = x[start : start + _LOG_PDF_BLOCK, np.newaxis, :] - mus
        z /= sigmas
        np.square(z, out=z)
        np.negative(z, out=z)
        z /= 2.0
        z -= truncnorm._norm_pdf_logC
        z -= log_mass
        z -= log_sigmas
        weighted = z.sum(axis=-1)
        weighted += 0.0  # Optuna adds the sum to zeros (-0.0 becomes 0.0)
        weighted += log_weights
        top = weighted.max(axis=1)
        top[np.isneginf(top)] = 0
        weighted -= top[:, np.newaxis]
        np.exp(weighted, out=weighted)
        with np.errstate(divide="ignore"):
            out[start : start + len(weighted)] = np.log(weighted.sum(axis=1)) + top
    return out
