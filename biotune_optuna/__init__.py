"""biotune_optuna: choose what to fine-tune in a pretrained CNN with BioTune and Optuna.

BioTune (J. Colan, A. Davila, Y. Hasegawa, arXiv:2508.15367, 2025) searches which blocks of a
pretrained network to fine-tune and at what learning rate, with a genetic algorithm. Here it is an
Optuna sampler, :class:`~biotune_optuna.BioTuneSampler`, whose state lives in the study's storage.
"""

from biotune_optuna.failures import TrialFailed
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import trial_budget
from biotune_optuna.strategies import STRATEGIES


__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "BioTuneSampler",
    "FineTunePlan",
    "TrialFailed",
    "__version__",
    "plan_search_space",
    "suggest_plan",
    "trial_budget",
]
