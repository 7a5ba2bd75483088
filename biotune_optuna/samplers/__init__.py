"""Samplers of biotune_optuna: BioTune's evolutionary search (arXiv:2508.15367) for Optuna.

This package imports without torch.
"""

from biotune_optuna.samplers import operators
from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.samplers._configurations import DUPLICATE_TOLERANCE
from biotune_optuna.samplers._configurations import duplicate_trials
from biotune_optuna.samplers._genes import block_names
from biotune_optuna.samplers._genes import importance_param
from biotune_optuna.samplers._genes import IMPORTANCE_PREFIX
from biotune_optuna.samplers._genes import learning_rate_multiplier
from biotune_optuna.samplers._genes import selected_blocks
from biotune_optuna.samplers._genes import THRESHOLD_PARAM
from biotune_optuna.samplers._registry import BIOTUNE_PRESETS
from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.samplers._registry import GENE_SAMPLERS
from biotune_optuna.samplers._registry import sampler_name
from biotune_optuna.samplers._registry import sampler_options
from biotune_optuna.samplers._registry import SAMPLERS
from biotune_optuna.samplers._sampler import BioTunePlusSampler
from biotune_optuna.samplers._sampler import BioTuneSampler


__all__ = [
    "BIOTUNE_PRESETS",
    "DUPLICATE_TOLERANCE",
    "GENE_SAMPLERS",
    "IMPORTANCE_PREFIX",
    "SAMPLERS",
    "THRESHOLD_PARAM",
    "BioTunePlusSampler",
    "BioTuneSampler",
    "block_names",
    "create_sampler",
    "duplicate_trials",
    "importance_param",
    "learning_rate_multiplier",
    "operators",
    "sampler_name",
    "sampler_options",
    "selected_blocks",
    "trial_budget",
]
