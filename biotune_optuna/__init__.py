"""biotune_optuna: choose what to fine-tune in a pretrained CNN with BioTune and Optuna.

BioTune (J. Colan, A. Davila, Y. Hasegawa, arXiv:2508.15367, 2025) searches which blocks of a
pretrained network to fine-tune and at what learning rate, with a genetic algorithm. Here it is an
Optuna sampler, :class:`~biotune_optuna.BioTuneSampler`, whose state lives in the study's storage.

The rest lives in the packages: the engine in :mod:`biotune_optuna.finetune`, specs and studies
in :mod:`biotune_optuna.studies`, the genes and the plan they decode to in
:mod:`biotune_optuna.plan`.
"""

from typing import Any

from biotune_optuna.failures import TrialFailed
from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import BioTuneSampler


__version__ = "0.1.0"


__all__ = [
    "BioTunePlusSampler",
    "BioTuneSampler",
    "TrialFailed",
    "__version__",
    "load_finetuned",
]


def __getattr__(name: str) -> Any:
    """The engine's names (:func:`~biotune_optuna.finetune.load_finetuned`), imported on first
    use, so that ``import biotune_optuna`` needs no torch."""
    if name == "load_finetuned":
        from biotune_optuna.finetune import load_finetuned

        return load_finetuned
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
