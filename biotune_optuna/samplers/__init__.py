"""Samplers of biotune_optuna: BioTune's evolutionary search (arXiv:2508.15367) for Optuna.

- :class:`BioTuneSampler` (the paper's preset) and :class:`BioTunePlusSampler`, their
  :mod:`~biotune_optuna.samplers.operators`, :func:`duplicate_trials` and :func:`trial_budget`;
- :data:`SAMPLERS` and :data:`PRUNERS`: every sampler and pruner a study spec may name, built by
  :func:`create_sampler` and :func:`create_pruner` (their options' tables and checks:
  :mod:`biotune_optuna.samplers.registry`);
- :func:`check_study_sampler`: refuse to continue a study under another sampler;
- :data:`DUPLICATE_RETRY_KEY`: marks a heartbeat retry that gave way to another one;
  :data:`RETRY_HISTORY_KEY`: the trials a heartbeat retry retries.

This package imports without torch.
"""

from biotune_optuna.samplers import operators
from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.samplers._configurations import DUPLICATE_TOLERANCE
from biotune_optuna.samplers._configurations import duplicate_trials
from biotune_optuna.samplers._keys import DUPLICATE_RETRY_KEY
from biotune_optuna.samplers._keys import SAMPLER_USER_ATTR
from biotune_optuna.samplers._plus import BioTunePlusSampler
from biotune_optuna.samplers._recorded import check_study_sampler
from biotune_optuna.samplers._recorded import recorded_sampler
from biotune_optuna.samplers._recorded import SamplerMismatchError
from biotune_optuna.samplers._sampler import BioTuneSampler
from biotune_optuna.samplers._schedule import GASchedule
from biotune_optuna.samplers._schedule import ScheduleError
from biotune_optuna.samplers.registry import create_pruner
from biotune_optuna.samplers.registry import create_sampler
from biotune_optuna.samplers.registry import PRUNERS
from biotune_optuna.samplers.registry import SAMPLERS
from biotune_optuna.trials import RETRY_HISTORY_KEY


__all__ = [
    "DUPLICATE_RETRY_KEY",
    "DUPLICATE_TOLERANCE",
    "PRUNERS",
    "RETRY_HISTORY_KEY",
    "SAMPLERS",
    "SAMPLER_USER_ATTR",
    "BioTunePlusSampler",
    "BioTuneSampler",
    "GASchedule",
    "SamplerMismatchError",
    "ScheduleError",
    "check_study_sampler",
    "create_pruner",
    "create_sampler",
    "duplicate_trials",
    "operators",
    "recorded_sampler",
    "trial_budget",
]
