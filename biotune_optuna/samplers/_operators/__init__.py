"""The operators of BioTune's evolutionary search, each a small class injected into the sampler.

Reference: J. Colan, A. Davila, Y. Hasegawa, "Transfer learning optimization based on
evolutionary selective fine tuning", arXiv:2508.15367 (2025).
"""

from biotune_optuna.samplers._operators._adoption import BaseAdoption
from biotune_optuna.samplers._operators._adoption import ParentPrototypeAdoption
from biotune_optuna.samplers._operators._crossover import BaseCrossover
from biotune_optuna.samplers._operators._crossover import BlendCrossover
from biotune_optuna.samplers._operators._exploitation import AdaptiveExploitation
from biotune_optuna.samplers._operators._exploitation import BaseExploitation
from biotune_optuna.samplers._operators._exploitation import EliteExploitation
from biotune_optuna.samplers._operators._mutation import BaseMutation
from biotune_optuna.samplers._operators._mutation import extinction
from biotune_optuna.samplers._operators._mutation import ExtinctionMutation
from biotune_optuna.samplers._operators._selection import BaseSelection
from biotune_optuna.samplers._operators._selection import LinearRankSelection


__all__ = [
    "AdaptiveExploitation",
    "BaseAdoption",
    "BaseCrossover",
    "BaseExploitation",
    "BaseMutation",
    "BaseSelection",
    "BlendCrossover",
    "EliteExploitation",
    "ExtinctionMutation",
    "LinearRankSelection",
    "ParentPrototypeAdoption",
    "extinction",
]
