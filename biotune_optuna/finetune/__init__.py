"""The fine-tuning engine: backbones cut into blocks, plans applied and evaluated (needs torch).

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367) searches which blocks of a pretrained CNN to
fine-tune and at what learning rate. This package turns a genotype into a trained model:

- :func:`load_backbone`: a pretrained model with a new head, cut into ordered blocks (the
  paper's blocks for its four backbones, stage rules for others, timm's layer groups, a generic
  fallback, or your own list).
- :func:`evaluate_plan`: the paper's training protocol (:class:`TrainingProtocol`), fast, for
  a plan or a strategy: blocks frozen and unfrozen by a plan, one optimizer parameter group per
  fine-tuned block with its own learning rate.
- :func:`build_strategy` / :class:`FineTuneStrategy`: the baselines (full fine-tuning, linear
  probe, LP-FT, surgical, Auto-RGN, L2-SP/L1-SP, LoRA, layer-wise lr decay), evaluated by the
  same engine.
- :class:`FineTuneObjective`: all of it as an Optuna objective, the same under every sampler.
- :func:`digits`: a small offline dataset with stratified folds (a study spec also names
  torchvision datasets, image folders and the offline suite of tasks).
- :func:`save_finetuned` / :func:`load_finetuned`: a trained model as one self-contained file,
  loaded back with its preprocessing, ready to predict.

The other names live in private ``_name`` modules.
"""

from biotune_optuna.finetune._backbones import load_backbone
from biotune_optuna.finetune._data import digits
from biotune_optuna.finetune._export import load_finetuned
from biotune_optuna.finetune._export import save_finetuned
from biotune_optuna.finetune._objective import FineTuneObjective
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.finetune.strategies import build_strategy
from biotune_optuna.finetune.strategies import FineTuneStrategy
from biotune_optuna.protocol import TrainingProtocol


__all__ = [
    "FineTuneObjective",
    "FineTuneStrategy",
    "TrainingProtocol",
    "build_strategy",
    "digits",
    "evaluate_plan",
    "load_backbone",
    "load_finetuned",
    "save_finetuned",
]
