"""Fine-tuning strategies by name: BioTune's plans and the baselines it is compared with.

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367, §IV) is compared against full fine-tuning,
a linear probe, L1-SP/L2-SP, Auto-RGN and LoRA; the same authors' earlier study (arXiv:2406.10050)
adds LP-FT, and Lee et al. (ICLR 2023, arXiv:2210.11466) surgical fine-tuning of one block. Each
strategy here trains with the same engine, data, folds, epochs, seeds and metric as a BioTune
plan; only what is trained, at which learning rate, and the loss differ.

A strategy is one :func:`register_strategy` call, as peft registers a method
(``register_peft_method(name=..., config_cls=..., model_cls=...)``): its name, its config
dataclass and its implementation, a :class:`~biotune_optuna.finetune.FineTuneStrategy` class,
called from the package that defines that class. The built-in strategies register their
configs here, without torch, so that specs are checked without the engine; their
implementations attach themselves (:func:`register_implementation`) where they are defined, in
:mod:`biotune_optuna.finetune._strategies`, which
:func:`~biotune_optuna.finetune._strategies.build_strategy`
imports. Nothing is imported by name at run time. The config's fields are its
hyperparameters (:func:`hyperparameter`): each with a default and the range Optuna searches when
the hyperparameter is named in ``search`` (a given value may lie outside that range; it must be
positive). ``lr`` defaults to the protocol's ``base_lr`` (the learning rate BioTune's genes
scale), so that by default every strategy starts from the same learning rate.

This module imports without torch; the implementations are in
:mod:`biotune_optuna.finetune._strategies`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import math
import types
import typing
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from biotune_optuna.options import type_problem
from biotune_optuna.plan import BIOTUNE


__all__ = [
    "BIOTUNE",
    "BLOCK_CHOICES",
    "STRATEGIES",
    "AutoRGNConfig",
    "BaselineConfig",
    "BioTuneConfig",
    "FullFineTuningConfig",
    "Hyperparameter",
    "L1SPConfig",
    "L2SPConfig",
    "LPFTConfig",
    "LayerwiseDecayConfig",
    "LinearProbeConfig",
    "LoRAConfig",
    "StrategyConfig",
    "StrategyInfo",
    "SurgicalConfig",
    "grid_size",
    "hyperparameter",
    "register_implementation",
    "register_strategy",
    "search_space",
    "searches_choices_only",
    "strategy_settings",
]

#: Hyperparameters whose choices are the backbone's blocks (known once the model is loaded).
BLOCK_CHOICES = "<blocks>"

_DISTRIBUTION = "distribution"
_HELP = "help"
_KINDS = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter of a strategy (a field of its config, :func:`hyperparameter`).

    Attributes:
        default: Its value when it is neither given nor searched (``None`` for ``lr``: the
            protocol's ``base_lr``; for ``block``: chosen by the search).
        distribution: The range Optuna searches; ``None`` for a choice among the backbone's
            blocks.
        kind: Its plain type in a spec (``float``, ``int`` or ``str``).
        help: What it does.
    """

    default: Any
    distribution: BaseDistribution | None
    kind: type
    help: str


def hyperparameter(default: Any, distribution: BaseDistribution | None, help: str) -> Any:
    """A field of a strategy's config: its default, the range Optuna searches, what it does.

    Args:
        default: Its value when it is neither given nor searched.
        distribution: The range Optuna searches; ``None`` for a choice among the backbone's
            blocks.
        help: What it does, in a few words.

    Returns:
        A :func:`dataclasses.field`; its annotation (``float``, ``int | None``…) is its kind.
    """
    return dataclasses.field(default=default, metadata={_DISTRIBUTION: distribution, _HELP: help})


@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """The hyperparameters of a strategy: the base of every registered config.

    Each field is a :func:`hyperparameter`; a config is frozen and takes keywords only.
    """


@dataclasses.dataclass(frozen=True, kw_only=True)
class BioTuneConfig(StrategyConfig):
    """BioTune's plan (arXiv:2508.15367, §II): no hyperparameters here.

    Its genes are searched by a sampler and decoded to a :class:`~biotune_optuna.plan.FineTunePlan`
    (:mod:`biotune_optuna.plan`), which the engine trains as ``PlanStrategy(plan)``.
    """


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaselineConfig(StrategyConfig):
    """A baseline's hyperparameters: every baseline trains at a learning rate ``lr``.

    Attributes:
        lr: The learning rate; ``None`` is the protocol's ``base_lr``, as for BioTune's plans.
    """

    lr: float | None = hyperparameter(
        None,
        FloatDistribution(1e-5, 1e-1, log=True),
        "learning rate (default: the protocol's base_lr, as for BioTune's plans)",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class FullFineTuningConfig(BaselineConfig):
    """Full fine-tuning: every parameter at ``lr``."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearProbeConfig(BaselineConfig):
    """A linear probe: the new classifier at ``lr``, the backbone frozen."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LPFTConfig(BaselineConfig):
    """LP-FT (Kumar et al., ICLR 2022, arXiv:2202.10054): a linear probe, then everything.

    Attributes:
        lp_epochs: Epochs of the linear-probe phase (``None``: half of ``max_epochs``, at
            least 1).
        ft_lr_scale: Learning rate of the fine-tuning phase relative to ``lr``.
    """

    lp_epochs: int | None = hyperparameter(
        None,
        IntDistribution(1, 10),
        "epochs of the linear-probe phase (default: half of max_epochs, at least 1)",
    )
    ft_lr_scale: float = hyperparameter(
        1.0,
        FloatDistribution(0.01, 1.0, log=True),
        "learning rate of the fine-tuning phase relative to lr",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SurgicalConfig(BaselineConfig):
    """Surgical fine-tuning (Lee et al., ICLR 2023, arXiv:2210.11466): one block trained.

    Attributes:
        block: The one block to fine-tune (``None``: searched over all blocks).
    """

    block: str | None = hyperparameter(
        None, None, "the one block to fine-tune (searched over all blocks)"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class AutoRGNConfig(BaselineConfig):
    """Auto-RGN (Lee et al., ICLR 2023, arXiv:2210.11466): lr by relative gradient norm.

    Attributes:
        n_batches: Batches that estimate the gradient norms at the start of each epoch.
    """

    n_batches: int = hyperparameter(
        5, IntDistribution(1, 20), "batches that estimate the gradient norms"
    )


def _head_l2() -> Any:
    return hyperparameter(0.01, FloatDistribution(1e-4, 1.0, log=True), "L2 of the new classifier")


@dataclasses.dataclass(frozen=True, kw_only=True)
class L2SPConfig(BaselineConfig):
    """L2-SP (Li, Grandvalet, Davoine, ICML 2018, arXiv:1802.01483).

    Attributes:
        alpha: The pull α/2·||w − w⁰||² towards the pretrained weights w⁰.
        beta: The L2 β/2·||w_head||² of the new classifier.
    """

    alpha: float = hyperparameter(0.01, FloatDistribution(1e-4, 1.0, log=True), "pull towards w⁰")
    beta: float = _head_l2()


@dataclasses.dataclass(frozen=True, kw_only=True)
class L1SPConfig(BaselineConfig):
    """L1-SP (Li, Grandvalet, Davoine, ICML 2018, arXiv:1802.01483).

    Attributes:
        alpha: The pull α·||w − w⁰||₁ towards the pretrained weights w⁰; its gradient does not
            shrink near w⁰, so α is far below L2-SP's.
        beta: The L2 β/2·||w_head||² of the new classifier.
    """

    alpha: float = hyperparameter(1e-5, FloatDistribution(1e-7, 1e-2, log=True), "pull towards w⁰")
    beta: float = _head_l2()


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoRAConfig(BaselineConfig):
    """LoRA (Hu et al., ICLR 2022, arXiv:2106.09685) on the backbone's convolutions.

    Attributes:
        rank: The adapters' rank (``lora_alpha`` is ``2 · rank``).
    """

    rank: int = hyperparameter(8, CategoricalDistribution((4, 8, 16)), "the adapters' rank")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerwiseDecayConfig(BaselineConfig):
    """Layer-wise learning-rate decay: layer ``l`` of ``L`` at ``lr · decay^(L − l)``.

    Attributes:
        decay: The ratio of a layer's learning rate to the next one's.
    """

    decay: float = hyperparameter(
        0.85, FloatDistribution(0.5, 1.0), "ratio of a layer's lr to the next's"
    )


def _plain_kind(config: type[StrategyConfig], name: str, hint: Any) -> type:
    """The plain type of an annotation such as ``float`` or ``int | None``."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] if union else [hint]
    if len(kinds) != 1 or kinds[0] not in _KINDS:
        raise TypeError(
            f"{config.__name__}.{name}: annotate it with one of bool, int, float, str "
            f"(or it | None), got {hint!r}"
        )
    return kinds[0]


def _hyperparameters_of(config: type[StrategyConfig]) -> dict[str, Hyperparameter]:
    """A config's fields as hyperparameters, in field order (``lr`` first for baselines)."""
    hints = typing.get_type_hints(config)
    found: dict[str, Hyperparameter] = {}
    for field in dataclasses.fields(config):
        if _HELP not in field.metadata:
            raise TypeError(
                f"{config.__name__}.{field.name}: declare it with "
                "hyperparameter(default, distribution, help)"
            )
        found[field.name] = Hyperparameter(
            field.default,
            field.metadata[_DISTRIBUTION],
            _plain_kind(config, field.name, hints[field.name]),
            field.metadata[_HELP],
        )
    return found


@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyInfo:
    """A fine-tuning strategy of the registry (:func:`register_strategy`).

    Attributes:
        name: Its registry name.
        title: Its usual name.
        description: What it trains, in one sentence, with its source.
        config: Its config dataclass (its hyperparameters, their defaults and ranges).
        search: The hyperparameters searched by default (the method is defined by a search).
        hyperparameters: Its hyperparameters by name, from ``config``'s fields.
    """

    name: str
    title: str
    description: str
    config: type[StrategyConfig]
    search: tuple[str, ...] = ()
    hyperparameters: Mapping[str, Hyperparameter] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        hyperparameters = types.MappingProxyType(_hyperparameters_of(self.config))
        object.__setattr__(self, "hyperparameters", hyperparameters)

    @property
    def implementation(self) -> type | None:
        """The class that trains this strategy; ``None`` until the package that defines it
        registers it (the built-in ones: when the engine's strategies are imported)."""
        return _IMPLEMENTATIONS.get(self.name)


#: Name → strategy, filled by :func:`register_strategy`. ``biotune`` is BioTune's plan,
#: searched through its genes by a sampler.
STRATEGIES: dict[str, StrategyInfo] = {}
#: Name → the class that trains it, filled by :func:`register_implementation`.
_IMPLEMENTATIONS: dict[str, type] = {}


def register_strategy(
    name: str,
    *,
    title: str,
    description: str,
    config: type[StrategyConfig],
    implementation: type | None = None,
    search: Sequence[str] = (),
) -> StrategyInfo:
    """Add a strategy to :data:`STRATEGIES`: its name, config and implementation in one call.

    Call it from the package that defines the implementation, as peft's
    ``register_peft_method`` is called next to each method.

    Args:
        name: Its registry name (in specs, the CLI and the trials' ``strategy`` attr).
        title: Its usual name.
        description: What it trains, in one sentence, with its source.
        config: Its config: a frozen dataclass deriving from :class:`BaselineConfig` (from
            :class:`StrategyConfig` for BioTune's plan), fields made by :func:`hyperparameter`.
        implementation: A :class:`~biotune_optuna.finetune.FineTuneStrategy` subclass,
            constructed as ``Class(name=name, config=config)``; ``None`` registers the config
            alone (checked without torch), the class attaching later through
            :func:`register_implementation`.
        search: The hyperparameters searched by default (the method is defined by a search).

    Returns:
        The registered strategy.

    Raises:
        ValueError: The name is taken, or ``search`` names no hyperparameter of ``config``.
        TypeError: ``config`` is no such dataclass, or ``implementation`` is no class.
    """
    if name in STRATEGIES:
        raise ValueError(f"strategy {name!r} is already registered")
    base = StrategyConfig if name == BIOTUNE else BaselineConfig
    if not (
        isinstance(config, type) and issubclass(config, base) and dataclasses.is_dataclass(config)
    ):
        raise TypeError(f"strategy {name!r}: its config must be a dataclass of {base.__name__}")
    if implementation is not None and not isinstance(implementation, type):
        raise TypeError(f"strategy {name!r}: its implementation must be a class")
    info = StrategyInfo(
        name=name, title=title, description=description, config=config, search=tuple(search)
    )
    unknown = [key for key in info.search if key not in info.hyperparameters]
    if unknown:
        raise ValueError(f"strategy {name!r}: search names no hyperparameter {unknown[0]!r}")
    STRATEGIES[name] = info
    _IMPLEMENTATIONS.pop(name, None)
    if implementation is not None:
        _IMPLEMENTATIONS[name] = implementation
    return info


def register_implementation(name: str, implementation: type) -> None:
    """Attach the class that trains a registered strategy (called where the class is defined).

    Raises:
        ValueError: No strategy ``name`` is registered, or another class trains it already.
        TypeError: ``implementation`` is no class.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy {name!r} is not registered")
    if not isinstance(implementation, type):
        raise TypeError(f"strategy {name!r}: its implementation must be a class")
    if _IMPLEMENTATIONS.get(name, implementation) is not implementation:
        raise ValueError(f"strategy {name!r} already has an implementation")
    _IMPLEMENTATIONS[name] = implementation


register_strategy(
    BIOTUNE,
    title="BioTune",
    description="the plan BioTune's genes decode to: selected blocks at their own learning "
    "rates, the others frozen in eval mode (arXiv:2508.15367, §II)",
    config=BioTuneConfig,
)
register_strategy(
    "full",
    title="Full fine-tuning",
    description="every parameter at one learning rate",
    config=FullFineTuningConfig,
)
register_strategy(
    "linear_probe",
    title="Linear probe",
    description="the new classifier only; the backbone frozen in eval mode (feature extraction)",
    config=LinearProbeConfig,
)
register_strategy(
    "lp_ft",
    title="LP-FT",
    description="a linear probe for the first `lp_epochs` epochs, then every parameter from "
    "that head at lr × ft_lr_scale (Kumar et al., ICLR 2022, arXiv:2202.10054)",
    config=LPFTConfig,
)
register_strategy(
    "surgical",
    title="Surgical (best single block)",
    description="one block and the new classifier trained, the others frozen in eval mode; the "
    "block is chosen on validation (Lee et al., ICLR 2023, arXiv:2210.11466)",
    config=SurgicalConfig,
    search=("block",),
)
register_strategy(
    "auto_rgn",
    title="Auto-RGN",
    description="every tensor but the normalisation layers' at lr × RGN_i / max_k RGN_k, the "
    "relative gradient norm ||g_i|| / ||θ_i|| averaged over the first `n_batches` batches, "
    "recomputed with a new optimizer every epoch; normalisation layers frozen in eval "
    "mode (Lee et al., ICLR 2023, arXiv:2210.11466)",
    config=AutoRGNConfig,
)
register_strategy(
    "l2sp",
    title="L2-SP",
    description="every parameter, loss + α/2·||w − w⁰||² over the pretrained weights + "
    "β/2·||w_head||² (Li, Grandvalet, Davoine, ICML 2018, arXiv:1802.01483)",
    config=L2SPConfig,
)
register_strategy(
    "l1sp",
    title="L1-SP",
    description="every parameter, loss + α·||w − w⁰||₁ + β/2·||w_head||²; the L1 pull's "
    "gradient α·sign(w − w⁰) does not shrink near w⁰, so α is far below L2-SP's",
    config=L1SPConfig,
)
register_strategy(
    "lora",
    title="LoRA on the convolutions",
    description="low-rank adapters (peft) on every convolution with groups = 1, lora_alpha = "
    "2·rank, the new classifier trained; the backbone's weights and normalisation "
    "layers frozen in eval mode (Hu et al., ICLR 2022, arXiv:2106.09685)",
    config=LoRAConfig,
)
register_strategy(
    "llrd",
    title="Layer-wise lr decay",
    description="every parameter, layer l at lr · decay^(L − l) counted from the head: timm's "
    "param_groups_layer_decay on timm models (timm's layers), else per block",
    config=LayerwiseDecayConfig,
)


def _check_value(name: str, key: str, value: Any) -> str | None:
    kind = STRATEGIES[name].hyperparameters[key].kind
    problem = type_problem(value, kind)
    if problem is None and kind in (int, float) and not (math.isfinite(value) and value > 0):
        problem = f"must be a positive number, got {value!r}"
    return problem


def strategy_settings(
    name: str, options: Mapping[str, Any], search: Sequence[str] | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Check a strategy's given hyperparameters and searched names.

    Args:
        name: The strategy's registry name.
        options: Given hyperparameter values.
        search: Hyperparameters to search (default: the strategy's own, minus given ones).

    Returns:
        ``(given values, searched names)``.

    Raises:
        ValueError: ``"<key>: <problem>"`` for an unknown strategy or hyperparameter, a value
            of the wrong type or out of range, or one both given and searched.
    """
    if name not in STRATEGIES:
        raise ValueError(f"name: unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    known = STRATEGIES[name].hyperparameters
    given = dict(options)
    for key, value in given.items():
        if key not in known:
            raise ValueError(
                f"{key}: strategy {name!r} takes no hyperparameter {key!r}; it takes "
                f"{', '.join(known) or 'none'}"
            )
        problem = _check_value(name, key, value)
        if problem:
            raise ValueError(f"{key}: {problem}")
    if search is None:
        searched = tuple(k for k in STRATEGIES[name].search if k not in given)
    else:
        searched = tuple(search)
        for key in searched:
            if key not in known:
                raise ValueError(f"search: strategy {name!r} has no hyperparameter {key!r}")
            if key in given:
                raise ValueError(f"search: {key!r} is both given and searched; give it once")
        if len(set(searched)) != len(searched):
            raise ValueError("search: a hyperparameter is named twice")
    return given, searched


def search_space(
    name: str, search: Sequence[str], blocks: Sequence[str]
) -> dict[str, BaseDistribution]:
    """The Optuna distributions of the searched hyperparameters for a backbone's blocks."""
    known = STRATEGIES[name].hyperparameters
    space: dict[str, BaseDistribution] = {}
    for key in search:
        dist = known[key].distribution
        space[key] = CategoricalDistribution(tuple(blocks)) if dist is None else dist
    return space


def searches_choices_only(name: str, search: Sequence[str]) -> bool:
    """Whether a strategy's search is over choices only (a grid can enumerate it)."""
    return grid_size(search_space(name, search, blocks=("<any block>",))) > 0


def grid_size(space: Mapping[str, BaseDistribution]) -> int:
    """Number of points of a space a grid can enumerate (categorical choices only); 0 when
    it cannot be enumerated or is empty."""
    if not space or not all(isinstance(d, CategoricalDistribution) for d in space.values()):
        return 0
    size = 1
    for dist in space.values():
        assert isinstance(dist, CategoricalDistribution)
        size *= len(dist.choices)
    return size
