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
"""

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
from biotune_optuna.finetune._suite import suite_task
from biotune_optuna.finetune._suite import SUITE_TASKS
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.finetune.strategies import build_strategy
from biotune_optuna.finetune.strategies import FineTuneStrategy
from biotune_optuna.finetune.strategies import PlanStrategy
from biotune_optuna.protocol import TrainingProtocol


__all__ = [
    "DEFAULT_BACKBONE",
    "SUITE_TASKS",
    "Backbone",
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
    "digits",
    "evaluate_plan",
    "image_folder",
    "load_backbone",
    "load_finetuned",
    "resolve_device",
    "save_finetuned",
    "set_train_mode",
    "suite_task",
    "torchvision_dataset",
]
