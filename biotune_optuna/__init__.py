"""biotune_optuna: choose what to fine-tune in a pretrained CNN with BioTune and Optuna.

BioTune (J. Colan, A. Davila, Y. Hasegawa, arXiv:2508.15367, 2025) searches which blocks of a
pretrained network to fine-tune and at what learning rate, with a genetic algorithm. Here it is an
Optuna sampler, :class:`~biotune_optuna.BioTuneSampler`, whose state lives in the study's storage.
"""

import importlib
from typing import Any

from biotune_optuna.failures import TrialFailed
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan
from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import trial_budget


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


#: Names of the packages above the ground floor, by package, imported on first use (so that
#: ``import biotune_optuna`` imports neither torch nor the study layer).
_LAZY = {
    "STRATEGIES": "biotune_optuna.finetune",
    "load_finetuned": "biotune_optuna.finetune",
    "Recommendation": "biotune_optuna.studies",
    "current_recommendation": "biotune_optuna.studies",
    "recommend": "biotune_optuna.studies",
    "recommended_trial": "biotune_optuna.studies",
    "record_recommendation": "biotune_optuna.studies",
}


def __getattr__(name: str) -> Any:
    """The engine's and the studies' names (:func:`~biotune_optuna.finetune.load_finetuned`,
    :func:`~biotune_optuna.studies.recommend`…), imported on first use, so that
    ``import biotune_optuna`` needs no torch."""
    package = _LAZY.get(name)
    if package is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(package), name)
