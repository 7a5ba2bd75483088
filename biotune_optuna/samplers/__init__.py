"""Samplers of biotune_optuna: BioTune's evolutionary search (arXiv:2508.15367) for Optuna.

- :class:`BioTuneSampler` (the paper's preset) and :class:`BioTunePlusSampler`; the GA schedule
  they share with the studies, :class:`GASchedule` (``N``, ``E``, and the data fold of a trial),
  and :func:`trial_budget`;
- :data:`SAMPLERS` and :data:`PRUNERS`: every sampler and pruner a study spec may name, with
  their options' checks and factories (``SAMPLERS.create(name, ...)``,
  ``PRUNERS.create(name, ...)``);
- :func:`check_study_sampler` (raising :class:`SamplerMismatchError`): refuse to continue a
  study under another sampler; :func:`recorded_sampler`: the sampler a study was run with, from
  its user attr :data:`SAMPLER_USER_ATTR` or BioTune's settings.

Everything else (the operators, the sampler's collaborators, the storage keys) is private.
This package imports without torch.
"""

from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.samplers._keys import SAMPLER_USER_ATTR
from biotune_optuna.samplers._plus import BioTunePlusSampler
from biotune_optuna.samplers._recorded import check_study_sampler
from biotune_optuna.samplers._recorded import recorded_sampler
from biotune_optuna.samplers._recorded import SamplerMismatchError
from biotune_optuna.samplers._registry import PRUNERS
from biotune_optuna.samplers._registry import SAMPLERS
from biotune_optuna.samplers._sampler import BioTuneSampler
from biotune_optuna.samplers._schedule import GASchedule


__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SAMPLER_USER_ATTR",
    "BioTunePlusSampler",
    "BioTuneSampler",
    "GASchedule",
    "SamplerMismatchError",
    "check_study_sampler",
    "recorded_sampler",
    "trial_budget",
]
