"""biotune_optuna: choose what to fine-tune in a pretrained CNN with BioTune and Optuna.

BioTune (J. Colan, A. Davila, Y. Hasegawa, arXiv:2508.15367, 2025) searches which blocks of a
pretrained network to fine-tune and at what learning rate, with a genetic algorithm. Here it is an
Optuna sampler, :class:`~biotune_optuna.BioTuneSampler`, whose state lives in the study's storage.
"""

from typing import Any

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
    "load_finetuned",
    "plan_search_space",
    "recommend",
    "recommended_trial",
    "record_recommendation",
    "suggest_plan",
    "trial_budget",
]


def __getattr__(name: str) -> Any:
    """The engine's names (:func:`~biotune_optuna.finetune.load_finetuned`), imported on first
    use, so that ``import biotune_optuna`` needs no torch."""
    if name == "load_finetuned":
        from biotune_optuna.finetune import load_finetuned

        return load_finetuned
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
