"""Fine-tuning strategies by name: BioTune's plans and the baselines it is compared with.

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367, §IV) is compared against full fine-tuning,
a linear probe, L1-SP/L2-SP, Auto-RGN and LoRA; the same authors' earlier study (arXiv:2406.10050)
adds LP-FT, and Lee et al. (ICLR 2023, arXiv:2210.11466) surgical fine-tuning of one block. Each
strategy here trains with the same engine, data, folds, epochs, seeds and metric as a BioTune
plan; only what is trained, at which learning rate, and the loss differ.

Every strategy states its hyperparameters with a default and the range Optuna searches when the
hyperparameter is named in ``search`` (a given value may lie outside that range; it must be
positive). ``lr`` defaults to the protocol's ``base_lr`` (the
learning rate BioTune's genes scale), so that by default every strategy starts from the same
learning rate.

This module imports without torch; the implementations are in
:mod:`biotune_optuna.finetune`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import math
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from biotune_optuna.options import type_problem


__all__ = [
    "BIOTUNE",
    "STRATEGIES",
    "Hyperparameter",
    "StrategyInfo",
    "grid_size",
    "is_grid",
    "search_space",
    "searches_choices_only",
    "strategy_settings",
]

#: The strategy whose hyperparameters are BioTune's genes (searched by any sampler).
BIOTUNE = "biotune"
#: Hyperparameters whose choices are the backbone's blocks (known once the model is loaded).
BLOCK_CHOICES = "<blocks>"


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """A hyperparameter of a strategy.

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


@dataclasses.dataclass(frozen=True)
class StrategyInfo:
    """A fine-tuning strategy of the registry.

    Attributes:
        name: Its registry name.
        title: Its usual name.
        description: What it trains, in one sentence, with its source.
        hyperparameters: Its hyperparameters by name.
        search: The hyperparameters searched by default (the method is defined by a search).
    """

    name: str
    title: str
    description: str
    hyperparameters: Mapping[str, Hyperparameter]
    search: tuple[str, ...] = ()


_LR = Hyperparameter(
    None,
    FloatDistribution(1e-5, 1e-1, log=True),
    float,
    "learning rate (default: the protocol's base_lr, as for BioTune's plans)",
)


_HEAD_L2 = Hyperparameter(
    0.01, FloatDistribution(1e-4, 1.0, log=True), float, "L2 of the new classifier"
)


def _info(name: str, title: str, description: str, search: Sequence[str] = (), **extra: Any):
    return StrategyInfo(name, title, description, {"lr": _LR, **extra}, tuple(search))


#: Name → strategy. ``biotune`` is BioTune's plan, searched through its genes by a sampler.
STRATEGIES: dict[str, StrategyInfo] = {
    BIOTUNE: StrategyInfo(
        BIOTUNE,
        "BioTune",
        "the plan BioTune's genes decode to: selected blocks at their own learning rates, "
        "the others frozen in eval mode (arXiv:2508.15367, §II)",
        {},
    ),
    "full": _info("full", "Full fine-tuning", "every parameter at one learning rate"),
    "linear_probe": _info(
        "linear_probe",
        "Linear probe",
        "the new classifier only; the backbone frozen in eval mode (feature extraction)",
    ),
    "lp_ft": _info(
        "lp_ft",
        "LP-FT",
        "a linear probe for the first `lp_epochs` epochs, then every parameter from that "
        "head at lr × ft_lr_scale (Kumar et al., ICLR 2022, arXiv:2202.10054)",
        lp_epochs=Hyperparameter(
            None,
            IntDistribution(1, 10),
            int,
            "epochs of the linear-probe phase (default: half of max_epochs, at least 1)",
        ),
        ft_lr_scale=Hyperparameter(
            1.0,
            FloatDistribution(0.01, 1.0, log=True),
            float,
            "learning rate of the fine-tuning phase relative to lr",
        ),
    ),
    "surgical": _info(
        "surgical",
        "Surgical (best single block)",
        "one block and the new classifier trained, the others frozen in eval mode; the block "
        "is chosen on validation (Lee et al., ICLR 2023, arXiv:2210.11466)",
        search=("block",),
        block=Hyperparameter(
            None, None, str, "the one block to fine-tune (searched over all blocks)"
        ),
    ),
    "auto_rgn": _info(
        "auto_rgn",
        "Auto-RGN",
        "every tensor but the normalisation layers' at lr × RGN_i / max_k RGN_k, the relative "
        "gradient norm ||g_i|| / ||θ_i|| averaged over the first `n_batches` batches, "
        "recomputed with a new optimizer every epoch; normalisation layers frozen in eval "
        "mode (Lee et al., ICLR 2023, arXiv:2210.11466)",
        n_batches=Hyperparameter(
            5, IntDistribution(1, 20), int, "batches that estimate the gradient norms"
        ),
    ),
    "l2sp": _info(
        "l2sp",
        "L2-SP",
        "every parameter, loss + α/2·||w − w⁰||² over the pretrained weights + "
        "β/2·||w_head||² (Li, Grandvalet, Davoine, ICML 2018, arXiv:1802.01483)",
        alpha=Hyperparameter(
            0.01, FloatDistribution(1e-4, 1.0, log=True), float, "pull towards w⁰"
        ),
        beta=_HEAD_L2,
    ),
    "l1sp": _info(
        "l1sp",
        "L1-SP",
        "every parameter, loss + α·||w − w⁰||₁ + β/2·||w_head||²; the L1 pull's gradient "
        "α·sign(w − w⁰) does not shrink near w⁰, so α is far below L2-SP's",
        alpha=Hyperparameter(
            1e-5, FloatDistribution(1e-7, 1e-2, log=True), float, "pull towards w⁰"
        ),
        beta=_HEAD_L2,
    ),
    "lora": _info(
        "lora",
        "LoRA on the convolutions",
        "low-rank adapters (peft) on every convolution with groups = 1, lora_alpha = "
        "2·rank, the new classifier trained; the backbone's weights and normalisation "
        "layers frozen in eval mode (Hu et al., ICLR 2022, arXiv:2106.09685)",
        rank=Hyperparameter(8, CategoricalDistribution((4, 8, 16)), int, "the adapters' rank"),
    ),
    "llrd": _info(
        "llrd",
        "Layer-wise lr decay",
        "every parameter, layer l at lr · decay^(L − l) counted from the head: timm's "
        "param_groups_layer_decay on timm models (timm's layers), else per block",
        decay=Hyperparameter(
            0.85, FloatDistribution(0.5, 1.0), float, "ratio of a layer's lr to the next's"
        ),
    ),
}


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
    return is_grid(search_space(name, search, blocks=("<any block>",)))


def is_grid(space: Mapping[str, BaseDistribution]) -> bool:
    """Whether a search space can be enumerated (categorical choices only)."""
    return bool(space) and all(isinstance(d, CategoricalDistribution) for d in space.values())


def grid_size(space: Mapping[str, BaseDistribution]) -> int:
    """Number of points of an enumerable space."""
    size = 1
    for dist in space.values():
        assert isinstance(dist, CategoricalDistribution)
        size *= len(dist.choices)
    return size
