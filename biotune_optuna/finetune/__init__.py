"""The fine-tuning engine: backbones cut into blocks, plans applied and evaluated (needs torch).

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367) searches which blocks of a pretrained CNN to
fine-tune and at what learning rate. This package turns a genotype into a trained model:

- :func:`load_backbone`: a pretrained model with a new head, cut into ordered blocks (the
  paper's blocks for its four backbones, stage rules for others, timm's layer groups, a generic
  fallback, or your own list).
- :class:`FineTuneObjective`: the paper's training protocol (:class:`TrainingProtocol`) as an
  Optuna objective, the same under every sampler: blocks frozen and unfrozen by a plan, one
  optimizer parameter group per fine-tuned block with its own learning rate.
- :func:`digits`: a small offline dataset with stratified folds (a study spec also names
  torchvision datasets, image folders and the offline suite of tasks).
- :func:`load_finetuned`: a trained model saved as one self-contained file, loaded back with
  its preprocessing, ready to predict.
- :func:`register_strategy` with a :class:`BaselineConfig` (fields made by
  :func:`hyperparameter`) and a :class:`FineTuneStrategy` whose ``start`` returns a
  :class:`StrategyRun`: a strategy of your own beside the built-in baselines (full
  fine-tuning, linear probe, LP-FT, surgical, Auto-RGN, L2-SP/L1-SP, LoRA, layer-wise lr decay),
  in the shape of peft's ``register_peft_method``.

``import biotune_optuna.finetune`` imports no torch: the registry and the protocol are
torch-free modules imported at once; every other name is imported on first use (PEP 562, as
Optuna's ``_LazyImport`` defers its heavy modules), so that specs are checked without the
engine.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import TYPE_CHECKING

from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._registry import BaselineConfig
from biotune_optuna.finetune._registry import hyperparameter
from biotune_optuna.finetune._registry import register_strategy


if TYPE_CHECKING:
    from biotune_optuna.finetune._backbones import load_backbone
    from biotune_optuna.finetune._data import digits
    from biotune_optuna.finetune._export import load_finetuned
    from biotune_optuna.finetune._objective import FineTuneObjective
    from biotune_optuna.finetune._strategies import FineTuneStrategy
    from biotune_optuna.finetune._strategies import StrategyRun


__all__ = [
    "BaselineConfig",
    "FineTuneObjective",
    "FineTuneStrategy",
    "StrategyRun",
    "TrainingProtocol",
    "digits",
    "hyperparameter",
    "load_backbone",
    "load_finetuned",
    "register_strategy",
]

#: The names that need torch, by the private module that defines them (imported on first use).
_LAZY = {
    "FineTuneObjective": "biotune_optuna.finetune._objective",
    "FineTuneStrategy": "biotune_optuna.finetune._strategies",
    "StrategyRun": "biotune_optuna.finetune._strategies",
    "digits": "biotune_optuna.finetune._data",
    "load_backbone": "biotune_optuna.finetune._backbones",
    "load_finetuned": "biotune_optuna.finetune._export",
}


def __getattr__(name: str) -> Any:
    """An engine name, imported (with torch) on first use and kept as an attribute."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
