"""Fine-tuning strategies as the engine runs them (registry: ``finetune._registry``).

Each class here registers itself as the implementation of its strategy, next to the class, as
peft registers a method (:func:`~biotune_optuna.finetune._registry.register_implementation`);
it reads its hyperparameters from its typed config
(:class:`~biotune_optuna.finetune._registry.StrategyConfig`), whose defaults live in the
registry only.

A strategy decides, for each fresh copy of the backbone (one per seed), which parameters train,
in which optimizer parameter groups, whether the loss gets a penalty, and whether any of that
changes at the start of an epoch. Everything else is the engine's and is the same for every
strategy: data, folds, epochs, early stopping, seeds, the cosine schedule, the metric. Blocks
that hold a frozen parameter stay in ``eval()`` mode, so BatchNorm keeps its statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import dataclasses
import math
from typing import Any
from typing import ClassVar
from typing import Generic
from typing import TypeVar

import torch
from torch import nn

from biotune_optuna.finetune._apply import apply_plan
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._blocks import is_timm_model
from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._registry import AutoRGNConfig
from biotune_optuna.finetune._registry import BaselineConfig
from biotune_optuna.finetune._registry import BioTuneConfig
from biotune_optuna.finetune._registry import FullFineTuningConfig
from biotune_optuna.finetune._registry import L1SPConfig
from biotune_optuna.finetune._registry import L2SPConfig
from biotune_optuna.finetune._registry import LayerwiseDecayConfig
from biotune_optuna.finetune._registry import LinearProbeConfig
from biotune_optuna.finetune._registry import LoRAConfig
from biotune_optuna.finetune._registry import LPFTConfig
from biotune_optuna.finetune._registry import register_implementation
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.finetune._registry import strategy_settings
from biotune_optuna.finetune._registry import StrategyConfig
from biotune_optuna.finetune._registry import SurgicalConfig
from biotune_optuna.options import format_setting
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.plan import FineTunePlan


__all__ = [
    "L1SP",
    "L2SP",
    "LPFT",
    "AutoRGN",
    "EpochChange",
    "FineTuneStrategy",
    "FullFineTuning",
    "LayerwiseDecay",
    "LinearProbe",
    "LoRA",
    "PlanStrategy",
    "StartingPointRegularisation",
    "StrategyRun",
    "Surgical",
    "build_strategy",
]

Groups = list[dict[str, Any]]
Batches = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]
LossOf = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)

ConfigT = TypeVar("ConfigT", bound=StrategyConfig)


@dataclasses.dataclass
class EpochChange:
    """New optimizer parameter groups from the start of an epoch on.

    Attributes:
        groups: The groups (the engine builds a new optimizer from them).
        restart: A new training phase: the cosine schedule and early stopping start again.
    """

    groups: Groups
    restart: bool = False


class StrategyRun:
    """One training run's state (one seed): the groups to start with, then per-epoch changes."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def begin_epoch(self, epoch: int, batches: Batches, loss_of: LossOf) -> EpochChange | None:
        """Called before each epoch (1-based) with the epoch's first batches available."""
        return None

    def penalty(self) -> torch.Tensor | None:
        """A term added to the training loss (``None``: none)."""
        return None


class FineTuneStrategy(Generic[ConfigT]):
    """How a strategy trains a fresh copy of the backbone. Subclasses implement :meth:`start`.

    Args:
        name: Registry name (:data:`~biotune_optuna.finetune._registry.STRATEGIES`).
        config: Its hyperparameters, ``lr`` resolved (:func:`build_strategy` fills them).

    Attributes:
        name: Registry name.
        config: Its hyperparameters.
        modifies_model: It changes the model's modules (then the engine runs the model whole,
            without its cached frozen prefix).
        changes_trainable: Which parameters train can change between epochs (then nothing
            is cached either).
        changes_optimizer: Its runs build a new optimizer between epochs (an
            :class:`EpochChange`).
    """

    modifies_model = False
    changes_trainable = False
    changes_optimizer = False

    def __init__(self, *, name: str, config: ConfigT) -> None:
        self.name = name
        self.config = config

    @property
    def settings(self) -> dict[str, Any]:
        """Its hyperparameters by name, ``lr`` resolved (the trial user attr of that name)."""
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}

    @property
    def resumable(self) -> bool:
        """Whether an evaluation can continue from a checkpoint of its runs.

        It can when the model, what trains and the optimizer stay as :meth:`start` made them:
        the engine then rebuilds a run from a fresh copy and loads the saved state into it
        (:class:`~biotune_optuna.finetune._checkpoints.TrainingCheckpoints`).
        """
        return not (self.modifies_model or self.changes_trainable or self.changes_optimizer)

    @property
    def lr(self) -> float:
        """The learning rate it trains at."""
        return float(self.settings["lr"])

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        """Set ``requires_grad`` on a fresh copy (in place) and return the run's state."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The strategy and its hyperparameters (a trial user attr)."""
        return {"strategy": self.name, **self.settings}

    def summary(self) -> str:
        """One line for the trial user attr ``plan``: the strategy and its hyperparameters,
        floats to 3 significant digits, e.g. ``"lora: rank 8, alpha 16, lr 0.001"``."""
        settings = ", ".join(f"{k} {format_setting(v)}" for k, v in self.settings.items())
        return f"{self.name}: {settings}" if settings else self.name


def _freeze_all(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad_(False)


def _train_all(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad_(True)


def _head_parameters(model: nn.Module, backbone: Backbone) -> list[nn.Parameter]:
    return [p for path in backbone.head for p in model.get_submodule(path).parameters()]


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _train_head_only(model: nn.Module, backbone: Backbone) -> list[nn.Parameter]:
    _freeze_all(model)
    head = _head_parameters(model, backbone)
    for param in head:
        param.requires_grad_(True)
    return head


class PlanStrategy(FineTuneStrategy[BioTuneConfig]):
    """BioTune's plan: its blocks at their learning rates, the rest frozen (arXiv:2508.15367)."""

    def __init__(
        self, plan: FineTunePlan, *, always_train_head: bool = False, mask_only: bool = False
    ) -> None:
        super().__init__(name=BIOTUNE, config=BioTuneConfig())
        self.plan = plan
        self.always_train_head = always_train_head
        self.mask_only = mask_only

    @classmethod
    def under(cls, plan: FineTunePlan, protocol: TrainingProtocol) -> PlanStrategy:
        """The plan trained as ``protocol`` says (its head and mask-only switches)."""
        return cls(
            plan, always_train_head=protocol.always_train_head, mask_only=protocol.mask_only
        )

    @property
    def settings(self) -> dict[str, Any]:
        """The plan's base learning rate (its blocks' rates scale it); its genes are its plan."""
        return {"lr": self.plan.base_lr}

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        groups = apply_plan(
            model,
            backbone.layout,
            self.plan,
            always_train_head=self.always_train_head,
            mask_only=self.mask_only,
        )
        return StrategyRun(groups)

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.name, **self.plan.to_dict()}

    def summary(self) -> str:
        """The plan's one line (:meth:`~biotune_optuna.plan.FineTunePlan.summary`), with the
        protocol's switches that change what it trains."""
        text = self.plan.summary()
        if self.always_train_head and self.plan.freeze_mask[-1]:
            text += f"; {self.plan.blocks[-1]} trained anyway (always_train_head)"
        if self.mask_only:
            text += "; every trained block at the base lr (mask_only)"
        return text


register_implementation(BIOTUNE, PlanStrategy)


class FullFineTuning(FineTuneStrategy[FullFineTuningConfig]):
    """Full fine-tuning: every parameter at one learning rate."""

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        _train_all(model)
        return StrategyRun([{"params": _trainable(model), "lr": self.lr}])


register_implementation("full", FullFineTuning)


class LinearProbe(FineTuneStrategy[LinearProbeConfig]):
    """A linear probe: the new classifier only, the backbone frozen in eval mode."""

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        return StrategyRun([{"params": _train_head_only(model, backbone), "lr": self.lr}])


register_implementation("linear_probe", LinearProbe)


class _LinearProbeThenFineTune(StrategyRun):
    def __init__(self, model: nn.Module, groups: Groups, lp_epochs: int, ft_lr: float) -> None:
        super().__init__(groups)
        self.model = model
        self.lp_epochs = lp_epochs
        self.ft_lr = ft_lr

    def begin_epoch(self, epoch: int, batches: Batches, loss_of: LossOf) -> EpochChange | None:
        if epoch != self.lp_epochs + 1:
            return None
        _train_all(self.model)
        return EpochChange([{"params": _trainable(self.model), "lr": self.ft_lr}], restart=True)


class LPFT(FineTuneStrategy[LPFTConfig]):
    """LP-FT (Kumar et al., ICLR 2022): a linear probe, then everything from that head."""

    changes_trainable = True
    changes_optimizer = True

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        lp_epochs = self.config.lp_epochs or max(1, protocol.max_epochs // 2)
        groups = [{"params": _train_head_only(model, backbone), "lr": self.lr}]
        ft_lr = self.lr * float(self.config.ft_lr_scale)
        return _LinearProbeThenFineTune(model, groups, int(lp_epochs), ft_lr)


register_implementation("lp_ft", LPFT)


class Surgical(FineTuneStrategy[SurgicalConfig]):
    """One block and the new classifier (Lee et al., ICLR 2023, arXiv:2210.11466)."""

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        block = self.config.block
        if block not in backbone.blocks:
            raise ValueError(
                f"surgical: block {block!r} is not one of the model's {list(backbone.blocks)}"
            )
        _freeze_all(model)
        chosen = backbone.layout.parameters(model, backbone.blocks.index(block))
        head = [p for p in _head_parameters(model, backbone) if all(p is not q for q in chosen)]
        for param in chosen + head:
            param.requires_grad_(True)
        return StrategyRun([{"params": chosen + head, "lr": self.lr}])


register_implementation("surgical", Surgical)


class _RelativeGradientNorms(StrategyRun):
    def __init__(
        self, named: list[tuple[str, nn.Parameter]], lr: float, n_batches: int, t_max: int
    ):
        super().__init__([{"params": [p for _, p in named], "lr": lr}])
        self.named = named
        self.lr = lr
        self.n_batches = n_batches
        self.t_max = t_max
        self.last_weights: dict[str, float] = {}

    def begin_epoch(self, epoch: int, batches: Batches, loss_of: LossOf) -> EpochChange:
        params = [p for _, p in self.named]
        sums = torch.zeros(len(params), dtype=torch.float64)
        seen = 0
        for inputs, labels in batches():
            if seen == self.n_batches:
                break
            grads = torch.autograd.grad(loss_of(inputs, labels), params, allow_unused=True)
            for i, (grad, param) in enumerate(zip(grads, params)):
                if grad is not None:  # a tensor the loss does not reach has RGN 0
                    ratio = grad.detach().float().norm() / param.detach().float().norm()
                    sums[i] += float(ratio.nan_to_num(0.0, posinf=0.0))
            seen += 1
        rgn = sums / max(seen, 1)
        top = float(rgn.max())
        weights = rgn / top if top > 0 else torch.ones_like(rgn)
        # The schedule as for every strategy (cosine over t_max, stepped per epoch), applied
        # here because the optimizer is new each epoch.
        cosine = 0.5 * (1 + math.cos(math.pi * (epoch - 1) / self.t_max))
        self.last_weights = {n: float(w) for (n, _), w in zip(self.named, weights)}
        groups = [
            {"params": [p], "lr": self.lr * float(w) * cosine, "tensor": name}
            for (name, p), w in zip(self.named, weights)
        ]
        return EpochChange(groups)


class AutoRGN(FineTuneStrategy[AutoRGNConfig]):
    """Auto-RGN (Lee et al., ICLR 2023): per-tensor lr ∝ relative gradient norm, per epoch.

    Each epoch starts with the gradients of the first ``n_batches`` training batches at the
    current weights; tensor ``i`` gets ``lr · RGN_i / max_k RGN_k`` with
    ``RGN_i = mean_batches ||g_i|| / ||θ_i||``, in a new optimizer (its moments reset, as in the
    authors' code). Normalisation layers stay frozen in eval mode, their affine parameters out
    of the optimizer (the reference code drops tensors named ``bn``; here by module type).
    """

    changes_optimizer = True

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        norm_params = {
            id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters()
        }
        named = []
        for name, param in model.named_parameters():
            trained = id(param) not in norm_params
            param.requires_grad_(trained)
            if trained:
                named.append((name, param))
        return _RelativeGradientNorms(named, self.lr, int(self.config.n_batches), protocol.t_max)


register_implementation("auto_rgn", AutoRGN)


class _StartingPointPenalty(StrategyRun):
    def __init__(
        self,
        groups: Groups,
        backbone_params: list[nn.Parameter],
        head: list[nn.Parameter],
        alpha: float,
        beta: float,
        power: int,
    ):
        super().__init__(groups)
        self.pairs = [(p, p.detach().clone()) for p in backbone_params]
        self.head = head
        self.alpha = alpha
        self.beta = beta
        self.power = power

    def penalty(self) -> torch.Tensor:
        if self.power == 2:
            pull = sum(((p - p0) ** 2).sum() for p, p0 in self.pairs) * (self.alpha / 2)
        else:
            pull = sum((p - p0).abs().sum() for p, p0 in self.pairs) * self.alpha
        return pull + sum((h**2).sum() for h in self.head) * (self.beta / 2)


class StartingPointRegularisation(FineTuneStrategy[L2SPConfig | L1SPConfig]):
    """L2-SP / L1-SP (Li, Grandvalet, Davoine, ICML 2018): everything trained, pulled to w⁰.

    Attributes:
        power: The pull's norm: 2 for ``α/2·||w − w⁰||²``, 1 for ``α·||w − w⁰||₁``.
    """

    power: ClassVar[int]

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        _train_all(model)
        head = _head_parameters(model, backbone)
        pretrained = [p for p in model.parameters() if all(p is not h for h in head)]
        return _StartingPointPenalty(
            [{"params": _trainable(model), "lr": self.lr}],
            pretrained,
            head,
            float(self.config.alpha),
            float(self.config.beta),
            self.power,
        )


class L2SP(StartingPointRegularisation):
    """L2-SP: the pull ``α/2·||w − w⁰||²`` (Li, Grandvalet, Davoine, ICML 2018)."""

    power = 2


register_implementation("l2sp", L2SP)


class L1SP(StartingPointRegularisation):
    """L1-SP: the pull ``α·||w − w⁰||₁`` (Li, Grandvalet, Davoine, ICML 2018)."""

    power = 1


register_implementation("l1sp", L1SP)


class LoRA(FineTuneStrategy[LoRAConfig]):
    """LoRA adapters (peft) on the backbone's convolutions, the new classifier trained.

    Hu et al., ICLR 2022 (arXiv:2106.09685), with ``lora_alpha = 2 · rank``.
    """

    modifies_model = True

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        from peft import inject_adapter_in_model
        from peft import LoraConfig

        rank = int(self.config.rank)
        head_paths = tuple(backbone.head)
        targets = [
            name
            for name, module in model.named_modules()
            if isinstance(module, nn.Conv2d)
            and module.groups == 1  # peft's conv adapters need groups = 1 (no depthwise)
            and not any(name == h or name.startswith(h + ".") for h in head_paths)
        ]
        if not targets:
            raise ValueError("lora: the backbone has no convolution with groups = 1 to adapt")
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none", target_modules=targets
        )
        inject_adapter_in_model(config, model)
        _freeze_all(model)
        adapters = [p for n, p in model.named_parameters() if ".lora_" in n]
        head = _head_parameters(model, backbone)
        for param in adapters + head:
            param.requires_grad_(True)
        return StrategyRun([{"params": adapters + head, "lr": self.lr}])


register_implementation("lora", LoRA)


class LayerwiseDecay(FineTuneStrategy[LayerwiseDecayConfig]):
    """Layer-wise learning-rate decay: ``lr · decay^(L − l)`` for layer ``l`` of ``L``."""

    def start(
        self, model: nn.Module, backbone: Backbone, protocol: TrainingProtocol
    ) -> StrategyRun:
        _train_all(model)
        decay = float(self.config.decay)
        if is_timm_model(model):
            from timm.optim._param_groups import param_groups_layer_decay

            groups = param_groups_layer_decay(
                model, weight_decay=protocol.weight_decay, layer_decay=decay
            )
            for group in groups:
                group["lr"] = self.lr * group["lr_scale"]
            return StrategyRun(groups)
        layout = backbone.layout
        last = len(layout) - 1
        groups = [
            {"params": layout.parameters(model, i), "lr": self.lr * decay ** (last - i)}
            for i in range(len(layout))
        ]
        return StrategyRun(groups)


register_implementation("llrd", LayerwiseDecay)


def build_strategy(
    name: str, settings: Mapping[str, Any] | None = None, *, base_lr: float = 1e-3
) -> FineTuneStrategy:
    """A baseline strategy by registry name with its hyperparameters.

    The values are checked by :func:`~biotune_optuna.finetune._registry.strategy_settings`, the
    others
    take their config's defaults, ``lr=None`` becomes ``base_lr``, and the registered
    implementation is built as ``Class(name=name, config=config)``.

    Args:
        name: A name of :data:`~biotune_optuna.finetune._registry.STRATEGIES` other than
        ``biotune``
            (a BioTune plan is ``PlanStrategy(plan)``).
        settings: Hyperparameter values; the others take their defaults.
        base_lr: The protocol's learning rate, the default of ``lr``.

    Raises:
        ValueError: On an unknown strategy or hyperparameter, or a value out of range.
        LookupError: No implementation is registered for it.
        TypeError: The registered implementation is no :class:`FineTuneStrategy`.
    """
    if name == BIOTUNE or name not in STRATEGIES:
        baselines = [n for n in STRATEGIES if n != BIOTUNE]
        raise ValueError(f"unknown baseline strategy {name!r}; choose from {', '.join(baselines)}")
    given, _ = strategy_settings(name, settings or {}, search=())
    info = STRATEGIES[name]
    config = info.config(**given)
    assert isinstance(config, BaselineConfig)  # register_strategy checks it
    if config.lr is None:
        config = dataclasses.replace(config, lr=base_lr)
    implementation = info.implementation
    if implementation is None:
        raise LookupError(
            f"strategy {name!r}: no implementation is registered; pass implementation= to "
            "register_strategy in the package that defines it"
        )
    if not issubclass(implementation, FineTuneStrategy):
        raise TypeError(
            f"strategy {name!r}: its implementation {implementation.__qualname__!r} is no "
            "FineTuneStrategy"
        )
    return implementation(name=name, config=config)
