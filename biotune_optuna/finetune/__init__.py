"""The fine-tuning engine: backbones cut into blocks, plans applied and evaluated (needs torch).

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367) searches which blocks of a pretrained CNN to
fine-tune and at what learning rate. This package turns a genotype into a trained model:

- :func:`load_backbone` / :func:`block_layout`: a pretrained model with a new head, cut into
  ordered blocks (the paper's blocks for its four backbones, stage rules for others, timm's
  layer groups, a generic fallback, or your own list).
- :func:`apply_plan`: freeze and unfreeze blocks by a :class:`~biotune_optuna.FineTunePlan`, one
  optimizer parameter group per fine-tuned block with its own learning rate.
- :func:`evaluate_plan`: the paper's training protocol (:class:`TrainingProtocol`), fast, for
  a plan or a strategy; with :class:`TrainingCheckpoints`, an evaluation that was killed
  continues from its last epoch.
- :func:`build_strategy`: the baselines (full fine-tuning, linear probe, LP-FT, surgical,
  Auto-RGN, L2-SP/L1-SP, LoRA, layer-wise lr decay), evaluated by the same engine.
- :class:`FineTuneObjective`: all of it as an Optuna objective, the same under every sampler.
- :func:`digits`, :func:`torchvision_dataset`, :func:`image_folder`: data with stratified folds;
  :func:`suite_task`: an offline suite of tasks whose domain shifts differ in kind.
- :func:`save_finetuned` / :func:`load_finetuned`: a trained model as one self-contained file,
  loaded back as a :class:`FineTunedModel` with its preprocessing, ready to predict.
- :data:`STRATEGIES` / :func:`register_strategy`: the strategy registry (peft's
  ``register_peft_method`` shape) and :class:`TrainingProtocol`, read without torch.

``import biotune_optuna.finetune`` imports no torch: the registry and the protocol are
torch-free modules imported at once; every other name is imported on first use (PEP 562, as
Optuna's ``_LazyImport`` defers its heavy modules), so that specs are checked without the
engine.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import TYPE_CHECKING

from biotune_optuna.finetune._protocol import device_problem
from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._registry import BaselineConfig
from biotune_optuna.finetune._registry import grid_size
from biotune_optuna.finetune._registry import hyperparameter
from biotune_optuna.finetune._registry import register_strategy
from biotune_optuna.finetune._registry import searches_choices_only
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.finetune._registry import strategy_settings


if TYPE_CHECKING:
    from biotune_optuna.finetune._apply import apply_plan
    from biotune_optuna.finetune._apply import set_train_mode
    from biotune_optuna.finetune._backbones import Backbone
    from biotune_optuna.finetune._backbones import DEFAULT_BACKBONE
    from biotune_optuna.finetune._backbones import load_backbone
    from biotune_optuna.finetune._blocks import Block
    from biotune_optuna.finetune._blocks import block_layout
    from biotune_optuna.finetune._blocks import BlockLayout
    from biotune_optuna.finetune._cache import FeatureCache
    from biotune_optuna.finetune._checkpoints import TrainingCheckpoints
    from biotune_optuna.finetune._data import ClassificationData
    from biotune_optuna.finetune._data import digits
    from biotune_optuna.finetune._data import image_folder
    from biotune_optuna.finetune._data import TensorImages
    from biotune_optuna.finetune._data import torchvision_dataset
    from biotune_optuna.finetune._device import resolve_device
    from biotune_optuna.finetune._export import FineTunedModel
    from biotune_optuna.finetune._export import load_finetuned
    from biotune_optuna.finetune._export import Prediction
    from biotune_optuna.finetune._export import save_finetuned
    from biotune_optuna.finetune._export_record import builtin_source
    from biotune_optuna.finetune._objective import FineTuneObjective
    from biotune_optuna.finetune._results import PlanEvaluation
    from biotune_optuna.finetune._results import SeedResult
    from biotune_optuna.finetune._splits import DataSplit
    from biotune_optuna.finetune._strategies import build_strategy
    from biotune_optuna.finetune._strategies import FineTuneStrategy
    from biotune_optuna.finetune._strategies import PlanStrategy
    from biotune_optuna.finetune._suite import suite_task
    from biotune_optuna.finetune._suite import SUITE_TASKS
    from biotune_optuna.finetune._training import evaluate_plan


__all__ = [
    "DEFAULT_BACKBONE",
    "STRATEGIES",
    "SUITE_TASKS",
    "Backbone",
    "BaselineConfig",
    "Block",
    "BlockLayout",
    "ClassificationData",
    "DataSplit",
    "FeatureCache",
    "FineTuneObjective",
    "FineTuneStrategy",
    "FineTunedModel",
    "PlanEvaluation",
    "PlanStrategy",
    "Prediction",
    "SeedResult",
    "TensorImages",
    "TrainingCheckpoints",
    "TrainingProtocol",
    "apply_plan",
    "block_layout",
    "build_strategy",
    "builtin_source",
    "device_problem",
    "digits",
    "evaluate_plan",
    "grid_size",
    "hyperparameter",
    "image_folder",
    "load_backbone",
    "load_finetuned",
    "register_strategy",
    "resolve_device",
    "save_finetuned",
    "searches_choices_only",
    "set_train_mode",
    "strategy_settings",
    "suite_task",
    "torchvision_dataset",
]

#: The names that need torch, by the private module that defines them (imported on first use).
_LAZY = {
    "Backbone": "biotune_optuna.finetune._backbones",
    "Block": "biotune_optuna.finetune._blocks",
    "BlockLayout": "biotune_optuna.finetune._blocks",
    "ClassificationData": "biotune_optuna.finetune._data",
    "DEFAULT_BACKBONE": "biotune_optuna.finetune._backbones",
    "DataSplit": "biotune_optuna.finetune._splits",
    "FeatureCache": "biotune_optuna.finetune._cache",
    "FineTuneObjective": "biotune_optuna.finetune._objective",
    "FineTuneStrategy": "biotune_optuna.finetune._strategies",
    "FineTunedModel": "biotune_optuna.finetune._export",
    "PlanEvaluation": "biotune_optuna.finetune._results",
    "PlanStrategy": "biotune_optuna.finetune._strategies",
    "Prediction": "biotune_optuna.finetune._export",
    "SUITE_TASKS": "biotune_optuna.finetune._suite",
    "SeedResult": "biotune_optuna.finetune._results",
    "TensorImages": "biotune_optuna.finetune._data",
    "TrainingCheckpoints": "biotune_optuna.finetune._checkpoints",
    "apply_plan": "biotune_optuna.finetune._apply",
    "block_layout": "biotune_optuna.finetune._blocks",
    "build_strategy": "biotune_optuna.finetune._strategies",
    "builtin_source": "biotune_optuna.finetune._export_record",
    "digits": "biotune_optuna.finetune._data",
    "evaluate_plan": "biotune_optuna.finetune._training",
    "image_folder": "biotune_optuna.finetune._data",
    "load_backbone": "biotune_optuna.finetune._backbones",
    "load_finetuned": "biotune_optuna.finetune._export",
    "resolve_device": "biotune_optuna.finetune._device",
    "save_finetuned": "biotune_optuna.finetune._export",
    "set_train_mode": "biotune_optuna.finetune._apply",
    "suite_task": "biotune_optuna.finetune._suite",
    "torchvision_dataset": "biotune_optuna.finetune._data",
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
