"""The optimizer and learning-rate schedule of a run (arXiv:2508.15367, §III).

The paper trains with Adam and cosine annealing over ``t_max`` epochs; AdamW and SGD with
momentum 0.9 are options. Each parameter group keeps its own learning rate (one group per
fine-tuned block for a BioTune plan); ``protocol.base_lr`` is the default of groups without one.
"""

from __future__ import annotations

from typing import Any

import torch

from biotune_optuna.finetune._protocol import TrainingProtocol


__all__ = ["build_optimizer", "build_scheduler"]


def build_optimizer(
    groups: list[dict[str, Any]], protocol: TrainingProtocol
) -> torch.optim.Optimizer:
    """The protocol's optimizer over parameter ``groups``."""
    if protocol.optimizer == "adam":
        return torch.optim.Adam(groups, lr=protocol.base_lr, weight_decay=protocol.weight_decay)
    if protocol.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=protocol.base_lr, weight_decay=protocol.weight_decay)
    return torch.optim.SGD(
        groups, lr=protocol.base_lr, momentum=0.9, weight_decay=protocol.weight_decay
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, protocol: TrainingProtocol
) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing of ``optimizer``'s learning rates over ``protocol.t_max`` epochs."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=protocol.t_max)
