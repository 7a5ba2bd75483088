"""Baseline fine-tuning strategies in the engine: what each trains, how, and with which loss."""

from __future__ import annotations

from collections.abc import Iterator
import copy
import dataclasses
import math

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import pytest
import torch
from torch import nn

from biotune_optuna.finetune import FineTuneObjective
from biotune_optuna.finetune import FineTuneStrategy
from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._registry import BaselineConfig
from biotune_optuna.finetune._registry import hyperparameter
from biotune_optuna.finetune._registry import register_implementation
from biotune_optuna.finetune._registry import register_strategy
from biotune_optuna.finetune._registry import search_space
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.finetune._registry import strategy_settings
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.finetune._strategies import build_strategy
from biotune_optuna.finetune._strategies import LoRA
from biotune_optuna.finetune._strategies import PlanStrategy
from biotune_optuna.finetune._strategies import StrategyRun
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.plan import FineTunePlan
from tests.finetune.conftest import tiny_backbone


BASELINES = [name for name in STRATEGIES if name != "biotune"]
PROTOCOL = TrainingProtocol(
    image_size=16, max_epochs=2, patience=2, n_seeds=1, batch_size=32, feature_cache_mb=0
)


def splits(data: ClassificationData) -> tuple[DataSplit, DataSplit]:
    train = DataSplit(data.train, np.arange(len(data.train_labels)), data.train_labels)
    val = DataSplit(data.val, np.arange(len(data.val_labels)), data.val_labels)
    return train, val


def settings_for(name: str) -> dict[str, object]:
    return {"block": "1"} if name == "surgical" else {}


def parameter_changes(before: nn.Module, after: nn.Module) -> dict[str, bool]:
    old = dict(before.named_parameters())
    return {  # evaluation moves the backbone to the device it trains on (CUDA when present)
        name: not torch.equal(old[name].to(p.device), p.detach())
        for name, p in after.named_parameters()
        if name in old
    }


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_trains_and_reports_like_a_plan(
    name: str, small_digits: ClassificationData
) -> None:
    backbone = tiny_backbone()
    train, val = splits(small_digits)
    strategy = build_strategy(name, settings_for(name), base_lr=3e-3)
    seen = []
    result = evaluate_plan(
        backbone,
        strategy,
        train,
        val,
        PROTOCOL,
        num_classes=10,
        test=val,
        keep_models=True,
        report=lambda epoch, value: seen.append(epoch),
    )
    assert 0.0 < result.fitness <= 1.0 and seen == [1, 2]
    assert result.trainable_parameters > 0
    assert result.runs[0].test_macro_accuracy is not None
    assert strategy.describe()["strategy"] == name and strategy.settings["lr"] == 3e-3
    # The template is never changed, whatever the strategy does to its copy.
    assert all(
        not changed
        for changed in parameter_changes(tiny_backbone().model, backbone.model).values()
    )
    changed = parameter_changes(tiny_backbone().model, result.models[0])
    head = {"3.weight", "3.bias"}
    if name == "linear_probe":
        assert {n for n, c in changed.items() if c} <= head
        assert result.frozen_blocks == ("0", "1", "2")
    if name == "surgical":
        assert {n for n, c in changed.items() if c} <= head | {
            "1.0.weight",
            "1.0.bias",
            "1.1.weight",
            "1.1.bias",
        }
        assert result.frozen_blocks == ("0", "2")
    if name in ("full", "l2sp", "l1sp", "llrd", "lp_ft"):
        assert result.trainable_fraction == 1.0 and all(changed.values())
    if name == "auto_rgn":  # BatchNorm affine out of the optimizer, everything else trained
        assert not changed["0.1.weight"] and not changed["1.1.bias"]
        assert changed["0.0.weight"] and changed["2.2.weight"]
    if name == "lora":  # the pretrained weights stay; adapters and the new head train
        assert {n for n, c in changed.items() if c} <= head
        assert 0 < result.trainable_fraction < 1


def test_blocks_with_frozen_parameters_keep_their_batchnorm_statistics(
    small_digits: ClassificationData,
) -> None:
    backbone = tiny_backbone()
    train, val = splits(small_digits)
    for name in ("linear_probe", "lora", "auto_rgn", "surgical"):
        result = evaluate_plan(
            backbone,
            build_strategy(name, settings_for(name)),
            train,
            val,
            PROTOCOL,
            num_classes=10,
            keep_models=True,
        )
        stats = result.models[0].get_submodule("0.1").running_mean
        assert torch.equal(stats, backbone.model.get_submodule("0.1").running_mean), name
    full = evaluate_plan(
        backbone, build_strategy("full"), train, val, PROTOCOL, num_classes=10, keep_models=True
    )
    stats = full.models[0].get_submodule("0.1").running_mean
    assert not torch.equal(stats, backbone.model.get_submodule("0.1").running_mean)


def test_a_plan_as_a_strategy_is_the_plan(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    train, val = splits(small_digits)
    plan = FineTunePlan(("0", "1", "2", "3"), (0.2, 0.9, 0.1, 0.7), 0.5)
    a = evaluate_plan(backbone, plan, train, val, PROTOCOL, num_classes=10)
    b = evaluate_plan(backbone, PlanStrategy(plan), train, val, PROTOCOL, num_classes=10)
    assert a.fitness == b.fitness and a.runs[0].history == b.runs[0].history
    assert a.frozen_blocks == plan.frozen == ("0", "2")
    assert a.trainable_parameters == b.trainable_parameters


def test_lp_ft_probes_first_then_trains_everything_from_that_head(
    small_digits: ClassificationData,
) -> None:
    backbone = tiny_backbone()
    strategy = build_strategy("lp_ft", {"lp_epochs": 1, "ft_lr_scale": 0.5}, base_lr=2e-3)
    model = copy.deepcopy(backbone.model)
    run = strategy.start(model, backbone, PROTOCOL)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {"3.weight", "3.bias"} and run.groups[0]["lr"] == 2e-3
    assert run.begin_epoch(1, lambda: iter(()), lambda x, y: x) is None
    change = run.begin_epoch(2, lambda: iter(()), lambda x, y: x)
    assert change is not None and change.restart
    assert all(p.requires_grad for p in model.parameters())
    assert change.groups[0]["lr"] == pytest.approx(1e-3)
    assert strategy.changes_trainable


def test_auto_rgn_is_lee_et_al_rule() -> None:
    """lr_i = lr · RGN_i / max_k RGN_k, RGN_i = mean over batches of ||g_i|| / ||θ_i||."""
    torch.manual_seed(0)
    backbone = tiny_backbone()
    model = copy.deepcopy(backbone.model)
    run = build_strategy("auto_rgn", {"n_batches": 2}, base_lr=1e-2).start(
        model, backbone, PROTOCOL
    )
    batches = [(torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))) for _ in range(3)]

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(x), y)

    change = run.begin_epoch(1, lambda: iter(batches), loss_of)
    params = dict(model.named_parameters())
    expected = {}
    for name in run.last_weights:
        ratios = []
        for x, y in batches[:2]:
            (g,) = torch.autograd.grad(loss_of(x, y), [params[name]])
            ratios.append(float(g.norm() / params[name].detach().norm()))
        expected[name] = np.mean(ratios)
    top = max(expected.values())
    assert "0.1.weight" not in run.last_weights  # BatchNorm: out of the optimizer
    for name, weight in run.last_weights.items():
        assert weight == pytest.approx(expected[name] / top, rel=1e-4)
    assert max(run.last_weights.values()) == pytest.approx(1.0)
    lrs = {g["tensor"]: g["lr"] for g in change.groups}
    assert lrs == pytest.approx({n: 1e-2 * w for n, w in run.last_weights.items()})
    # Recomputed every epoch at the current weights, with the schedule's cosine factor.
    with torch.no_grad():
        params["2.2.weight"].mul_(3.0)
    later = run.begin_epoch(2, lambda: iter(batches), loss_of)
    factor = 0.5 * (1 + math.cos(math.pi / PROTOCOL.t_max))
    assert run.last_weights["2.2.weight"] != pytest.approx(expected["2.2.weight"] / top)
    assert max(g["lr"] for g in later.groups) == pytest.approx(1e-2 * factor)


@pytest.mark.parametrize(("name", "power"), [("l2sp", 2), ("l1sp", 1)])
def test_starting_point_penalty(name: str, power: int) -> None:
    backbone = tiny_backbone()
    model = copy.deepcopy(backbone.model)
    run = build_strategy(name, {"alpha": 0.5, "beta": 0.25}).start(model, backbone, PROTOCOL)
    head_l2 = sum(float((p.detach() ** 2).sum()) for p in model.get_submodule("3").parameters())
    assert float(run.penalty().detach()) == pytest.approx(0.25 / 2 * head_l2, rel=1e-5)
    with torch.no_grad():
        model.get_submodule("0.0").weight.add_(0.1)
    n = model.get_submodule("0.0").weight.numel()
    pull = 0.5 / 2 * n * 0.01 if power == 2 else 0.5 * n * 0.1
    assert float(run.penalty().detach()) == pytest.approx(pull + 0.25 / 2 * head_l2, rel=1e-4)


def test_layerwise_decay_per_block_and_with_timm_groups() -> None:
    backbone = tiny_backbone()
    model = copy.deepcopy(backbone.model)
    run = build_strategy("llrd", {"decay": 0.5}, base_lr=1e-2).start(model, backbone, PROTOCOL)
    assert [g["lr"] for g in run.groups] == pytest.approx([1.25e-3, 2.5e-3, 5e-3, 1e-2])

    lite0 = load_backbone("efficientnet_lite0", num_classes=10, weights=None)
    model = copy.deepcopy(lite0.model)
    run = build_strategy("llrd", {"decay": 0.5}, base_lr=1e-2).start(model, lite0, PROTOCOL)
    by_param = {id(p): g["lr"] for g in run.groups for p in g["params"]}
    assert by_param[id(model.classifier.weight)] == pytest.approx(1e-2)
    stem = by_param[id(model.conv_stem.weight)]
    assert stem < by_param[id(model.blocks[3][0].conv_pw.weight)] < 1e-2
    assert math.log(1e-2 / stem, 2) == pytest.approx(round(math.log(1e-2 / stem, 2)))
    assert len(by_param) == len(list(model.parameters()))


def test_lora_starts_at_the_pretrained_function_and_skips_depthwise_convs() -> None:
    lite0 = load_backbone("efficientnet_lite0", num_classes=10, weights=None)
    model = copy.deepcopy(lite0.model)
    strategy = build_strategy("lora", {"rank": 4})
    assert strategy.modifies_model
    run = strategy.start(model, lite0, PROTOCOL)
    names = {
        n for g in run.groups for n, p in model.named_parameters() for q in g["params"] if p is q
    }
    assert names and all(".lora_" in n or n.startswith("classifier.") for n in names)
    assert not any(n.startswith("blocks.1.0.conv_dw.") and "lora" in n for n in names)
    assert any(n.startswith("conv_stem.lora_A") for n in names)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    reference = copy.deepcopy(lite0.model).eval()
    reference.classifier.load_state_dict(model.classifier.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


def test_bad_strategies_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown baseline strategy 'nope'"):
        build_strategy("nope")
    with pytest.raises(ValueError, match="rank: must be a positive number, got 0"):
        build_strategy("lora", {"rank": 0})
    with pytest.raises(ValueError, match=r"rank: expected an integer, got 4\.5"):
        build_strategy("lora", {"rank": 4.5})
    with pytest.raises(ValueError, match="takes no hyperparameter 'gamma'"):
        build_strategy("l2sp", {"gamma": 1.0})
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match="block 'nine' is not one of"):
        build_strategy("surgical", {"block": "nine"}).start(
            copy.deepcopy(backbone.model), backbone, PROTOCOL
        )


def test_the_objective_searches_a_baseline_and_records_the_same_attrs(
    small_digits: ClassificationData,
) -> None:
    import optuna

    backbone = tiny_backbone()
    protocol = TrainingProtocol(image_size=16, max_epochs=1, n_seeds=1, batch_size=64)
    objective = FineTuneObjective(backbone, small_digits, protocol, strategy="surgical")
    assert list(objective.search_space) == ["block"]
    assert objective.search_space["block"].choices == ("0", "1", "2", "3")
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.GridSampler({"block": ["0", "1", "2", "3"]}, seed=0),
    )
    study.optimize(objective, n_trials=4)
    assert sorted(t.params["block"] for t in study.trials) == ["0", "1", "2", "3"]
    biotune = FineTuneObjective(backbone, small_digits, protocol)
    plan_study = optuna.create_study(direction="maximize")
    plan_study.optimize(biotune, n_trials=1)
    common = {"fold", "frozen_blocks", "trained_blocks", "trainable_fraction", "wall_time_s"}
    common |= {"host", "device"}
    for attrs in (study.trials[0].user_attrs, plan_study.trials[0].user_attrs):
        assert common <= set(attrs)
    assert study.trials[0].user_attrs["strategy"] == "surgical"
    assert study.trials[0].user_attrs["strategy_settings"]["lr"] == protocol.base_lr
    block = study.trials[0].params["block"]
    # One line in the trial table: no-break spaces.
    assert study.trials[0].user_attrs["plan"] == f"surgical: lr 0.001, block {block}".replace(
        " ", "\u00a0"
    )
    plan = FineTunePlan.from_params(plan_study.trials[0].params, backbone.blocks)
    assert plan_study.trials[0].user_attrs["plan"] == plan.summary().replace(" ", "\u00a0")
    with pytest.raises(ValueError, match="lr: must be a positive number"):
        FineTuneObjective(
            backbone, small_digits, protocol, strategy="full", strategy_options={"lr": -5.0}
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaledHeadConfig(BaselineConfig):
    """This test's strategy: the new classifier at ``lr · scale``, a width searched."""

    scale: float = hyperparameter(0.5, FloatDistribution(0.1, 1.0), "the head's lr relative to lr")
    width: int = hyperparameter(2, CategoricalDistribution((1, 2, 3)), "a width it searches")


class ScaledHead(FineTuneStrategy[ScaledHeadConfig]):
    """The implementation this test registers (its class, as peft registers a method)."""

    def start(self, model: nn.Module, backbone: object, protocol: object) -> StrategyRun:
        head = list(model.get_submodule("3").parameters())
        for param in model.parameters():
            param.requires_grad_(any(param is h for h in head))
        return StrategyRun([{"params": head, "lr": self.lr * self.config.scale}])


@pytest.fixture
def scaled_head() -> Iterator[str]:
    name = "test_scaled_head"
    register_strategy(
        name,
        title="Scaled head",
        description="the new classifier at lr × scale (registered by a test)",
        config=ScaledHeadConfig,
        implementation=ScaledHead,
        search=("width",),
    )
    try:
        yield name
    finally:
        del STRATEGIES[name]


def test_a_registered_strategy_is_checked_searched_and_built_with_its_defaults(
    scaled_head: str,
) -> None:
    given, searched = strategy_settings(scaled_head, {"scale": 0.25})
    assert (given, searched) == ({"scale": 0.25}, ("width",))
    assert list(search_space(scaled_head, searched, blocks=("0", "1"))) == ["width"]
    strategy = build_strategy(scaled_head, base_lr=2e-3)
    assert isinstance(strategy, ScaledHead) and strategy.name == scaled_head
    assert strategy.config == ScaledHeadConfig(lr=2e-3, scale=0.5, width=2)
    assert strategy.describe() == {"strategy": scaled_head, "lr": 2e-3, "scale": 0.5, "width": 2}
    backbone = tiny_backbone()
    run = build_strategy(scaled_head, given).start(copy.deepcopy(backbone.model), None, None)
    assert run.groups[0]["lr"] == pytest.approx(1e-3 * 0.25)
    with pytest.raises(ValueError, match="scale: must be a positive number, got 0"):
        build_strategy(scaled_head, {"scale": 0})


def test_a_registered_implementation_that_cannot_be_built_fails_clearly(
    scaled_head: str,
) -> None:
    register_implementation(scaled_head, ScaledHead)  # the same class again: accepted
    with pytest.raises(ValueError, match="'test_scaled_head' already has an implementation"):
        register_implementation(scaled_head, StrategyRun)
    with pytest.raises(TypeError, match="its implementation must be a class"):
        register_implementation(scaled_head, "tests.finetune.test_strategies:ScaledHead")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy 'absent' is not registered"):
        register_implementation("absent", ScaledHead)
    info = STRATEGIES.pop(scaled_head)
    register_strategy(scaled_head, title=info.title, description="d", config=ScaledHeadConfig)
    with pytest.raises(LookupError, match="'test_scaled_head': no implementation is registered"):
        build_strategy(scaled_head)
    del STRATEGIES[scaled_head]
    register_strategy(
        scaled_head,
        title=info.title,
        description="d",
        config=ScaledHeadConfig,
        implementation=StrategyRun,
    )
    with pytest.raises(TypeError, match="is no FineTuneStrategy"):
        build_strategy(scaled_head)


def test_the_built_in_implementations_register_themselves_beside_their_classes() -> None:
    assert STRATEGIES["lora"].implementation is LoRA
    assert STRATEGIES["biotune"].implementation is PlanStrategy
    assert all(info.implementation is not None for info in STRATEGIES.values())


def test_a_strategy_summary_is_its_plan_or_its_rounded_settings() -> None:
    assert build_strategy("l1sp").summary() == "l1sp: lr 0.001, alpha 1e-05, beta 0.01"
    assert (
        build_strategy("lp_ft", {"lr": 1 / 3})
        .summary()
        .startswith("lp_ft: lr 0.333, lp_epochs auto")
    )
    plan = FineTunePlan(("a", "b", "head"), (0.9, 0.6, 0.1), threshold=0.5)
    assert PlanStrategy(plan).summary() == plan.summary() == "a ×6.3, b ×1.6"
    assert PlanStrategy(plan, always_train_head=True, mask_only=True).summary() == (
        "a ×6.3, b ×1.6; head trained anyway (always_train_head); "
        "every trained block at the base lr (mask_only)"
    )
