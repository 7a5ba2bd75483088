"""Applying a :class:`~biotune_optuna.plan.FineTunePlan` to a model (arXiv:2508.15367, §II).

Frozen blocks get ``requires_grad=False``, stay out of the optimizer and stay in ``eval()`` mode
(so BatchNorm keeps its pretrained statistics and dropout is off). Each fine-tuned block is one
optimizer parameter group with its own learning rate: the paper's method, which the authors' public
code computes but never hands to the optimizer ("mask only" reproduces that as an ablation).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from biotune_optuna.finetune._blocks import BlockLayout
from biotune_optuna.plan import FineTunePlan


__all__ = [
    "apply_plan",
    "effective_freeze_mask",
    "eval_mode_mask",
    "set_train_mode",
    "trained_blocks",
]


def effective_freeze_mask(
    plan: FineTunePlan, *, always_train_head: bool = False
) -> tuple[bool, ...]:
    """The plan's freeze mask, with the last block (the head) trained if ``always_train_head``."""
    mask = list(plan.freeze_mask)
    if always_train_head:
        mask[-1] = False
    return tuple(mask)


def apply_plan(
    model: nn.Module,
    layout: BlockLayout,
    plan: FineTunePlan,
    *,
    always_train_head: bool = False,
    mask_only: bool = False,
) -> list[dict[str, Any]]:
    """Freeze and unfreeze ``model``'s blocks by ``plan``; return the optimizer's parameter groups.

    Args:
        model: The model (changed in place: ``requires_grad`` of every parameter).
        layout: Its blocks; their names must be the plan's.
        plan: The plan to apply.
        always_train_head: Train the last block even if the plan freezes it (at the learning
            rate its gene gives). Off in the paper.
        mask_only: Ablation of the authors' code: apply the mask but train every selected
            block at ``plan.base_lr``.

    Returns:
        One ``{"params", "lr", "block"}`` group per fine-tuned block, in block order.
    """
    if layout.names != plan.blocks:
        raise ValueError(
            f"the plan's blocks {list(plan.blocks)} are not the model's {list(layout.names)}"
        )
    mask = effective_freeze_mask(plan, always_train_head=always_train_head)
    groups = []
    for index, (block, frozen) in enumerate(zip(plan.blocks, mask)):
        params = layout.parameters(model, index)
        for param in params:
            param.requires_grad_(not frozen)
        if not frozen:
            lr = plan.base_lr if mask_only else plan.learning_rate(block)
            groups.append({"params": params, "lr": lr, "block": block})
    return groups


def set_train_mode(
    model: nn.Module, layout: BlockLayout, freeze_mask: tuple[bool, ...], training: bool = True
) -> None:
    """``model.train(training)``, but every frozen block's modules stay in ``eval()``."""
    model.train(training)
    if training:
        for index, frozen in enumerate(freeze_mask):
            if frozen:
                for module in layout.modules(model, index):
                    module.eval()


def eval_mode_mask(model: nn.Module, layout: BlockLayout) -> tuple[bool, ...]:
    """Blocks that hold a frozen parameter: they stay in eval mode (BatchNorm statistics).

    The mask :func:`set_train_mode` takes, read off ``model``'s ``requires_grad`` flags.
    """
    return tuple(
        any(not p.requires_grad for p in layout.parameters(model, i)) for i in range(len(layout))
    )


def trained_blocks(model: nn.Module, layout: BlockLayout) -> tuple[bool, ...]:
    """Blocks that hold a trainable parameter (``requires_grad``), in block order."""
    return tuple(
        any(p.requires_grad for p in layout.parameters(model, i)) for i in range(len(layout))
    )
