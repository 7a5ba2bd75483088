"""biotune_optuna: choose what to fine-tune in a pretrained CNN with BioTune and Optuna.

BioTune (J. Colan, A. Davila, Y. Hasegawa, arXiv:2508.15367, 2025) searches which blocks of a
pretrained network to fine-tune and at what learning rate, with a genetic algorithm. Here it is an
Optuna sampler, :class:`~biotune_optuna.BioTuneSampler`, whose state lives in the study's storage.
"""

from biotune_optuna.failures import TrialFailed
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan
from biotune_optuna.recommendation import current_recommendation
from biotune_optuna.recommendation import recommend
from biotune_optuna.recommendation import Recommendation
from biotune_optuna.recommendation import recommended_trial
from biotune_optuna.recommendation import record_recommendation
from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import trial_budget
from biotune_optuna.strategies import STRATEGIES


__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "BioTunePlusSampler",
    "BioTuneSampler",
    "FineTunePlan",
    "Recommendation",
    "TrialFailed",
    "__version__",
    "current_recommendation",
    "plan_search_space",
    "recommend",
    "recommended_trial",
    "record_recommendation",
    "suggest_plan",
    "trial_budget",
]
