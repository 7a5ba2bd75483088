"""Applying a plan: per-block learning rates reach the optimizer, frozen blocks never move."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune._apply import apply_plan
from biotune_optuna.finetune._apply import eval_mode_mask
from biotune_optuna.finetune._apply import set_train_mode
from biotune_optuna.finetune._apply import trained_blocks
from biotune_optuna.plan import FineTunePlan
from tests.finetune.conftest import tiny_backbone


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_each_blocks_learning_rate_reaches_the_optimizer_and_frozen_weights_stay() -> None:
    backbone = load_backbone("torchvision:resnet18", weights=None, num_classes=3)
    model, layout = backbone.model, backbone.layout
    # stem, layer1 frozen; layer2 at 10^(2(0.9-0.5)) = 6.31x; layer3 0.1x... ; layer4 1x; fc 10x
    importances = (0.1, 0.3, 0.9, 0.4001, 0.5, 1.0)
    plan = FineTunePlan(layout.names, importances, threshold=0.4, base_lr=1e-3)
    groups = apply_plan(model, layout, plan)
    optimizer = torch.optim.Adam(groups)
    assert [g["block"] for g in optimizer.param_groups] == ["layer2", "layer3", "layer4", "fc"]
    expected = [1e-3 * 10 ** (2 * (v - 0.5)) for v in importances[2:]]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(expected)
    for group, block in zip(optimizer.param_groups, ("layer2", "layer3", "layer4", "fc")):
        index = layout.names.index(block)
        assert {id(p) for p in group["params"]} == {id(p) for p in layout.parameters(model, index)}

    frozen = {name: _snapshot(model.get_submodule(name)) for name in ("conv1", "bn1", "layer1")}
    trained = _snapshot(model.layer2)
    set_train_mode(model, layout, plan.freeze_mask)
    assert not model.bn1.training and not model.layer1.training and model.layer2.training
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    for name, before in frozen.items():
        after = model.get_submodule(name).state_dict()
        for key, value in before.items():  # weights *and* BatchNorm statistics
            torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=f"{name}.{key}")
        assert all(p.grad is None for p in model.get_submodule(name).parameters())
    changed = [not torch.equal(model.layer2.state_dict()[k], v) for k, v in trained.items()]
    assert any(changed)


def test_one_adam_step_moves_weights_by_their_blocks_lr() -> None:
    backbone = tiny_backbone(3)
    model, layout = backbone.model, backbone.layout
    plan = FineTunePlan(layout.names, (0.0, 0.2, 0.5, 1.0), threshold=0.1, base_lr=1e-3)
    optimizer = torch.optim.Adam(apply_plan(model, layout, plan))
    before = {i: [p.detach().clone() for p in layout.parameters(model, i)] for i in range(4)}
    set_train_mode(model, layout, plan.freeze_mask)
    nn.functional.cross_entropy(model(torch.rand(8, 3, 8, 8)), torch.arange(8) % 3).backward()
    optimizer.step()
    for index, lr in enumerate([0.0, 1e-3 * 10**-0.6, 1e-3, 1e-2]):
        moved = max(
            float((p.detach() - b).abs().max())
            for p, b in zip(layout.parameters(model, index), before[index])
        )
        # Adam's first step is lr * sign(grad) wherever the gradient is non-zero.
        assert moved == pytest.approx(lr, rel=1e-3), index


def test_mask_only_and_always_train_head() -> None:
    backbone = tiny_backbone(3)
    model, layout = backbone.model, backbone.layout
    plan = FineTunePlan(layout.names, (0.0, 0.9, 0.8, 0.1), threshold=0.5, base_lr=1e-3)
    groups = apply_plan(model, layout, plan, mask_only=True)
    assert [(g["block"], g["lr"]) for g in groups] == [("1", 1e-3), ("2", 1e-3)]
    groups = apply_plan(model, layout, plan, always_train_head=True)
    assert [g["block"] for g in groups] == ["1", "2", "3"]
    assert groups[-1]["lr"] == pytest.approx(1e-3 * 10 ** (2 * (0.1 - 0.5)))
    assert all(p.requires_grad for p in model[3].parameters())
    assert not any(p.requires_grad for p in model[0].parameters())


def test_plan_for_another_model_is_refused() -> None:
    backbone = tiny_backbone(3)
    plan = FineTunePlan(("a", "b", "c", "d"), (1, 1, 1, 1), threshold=0.5)
    with pytest.raises(ValueError, match="not the model's"):
        apply_plan(backbone.model, backbone.layout, plan)


def test_masks_read_off_requires_grad() -> None:
    backbone = tiny_backbone(3)
    model, layout = backbone.model, backbone.layout
    apply_plan(model, layout, FineTunePlan(layout.names, (0.0, 0.9, 0.0, 0.9), threshold=0.5))
    model[1][0].bias.requires_grad_(False)  # block 1 partly frozen
    assert eval_mode_mask(model, layout) == (True, True, True, False)
    assert trained_blocks(model, layout) == (False, True, False, True)
