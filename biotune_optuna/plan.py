"""BioTune's genes and the fine-tuning plans they decode to, for a backbone cut into blocks.

A backbone cut into blocks ``m_0..m_B`` is configured by ``B + 2`` genes in ``[0, 1]`` (Colan,
Davila, Hasegawa, arXiv:2508.15367, §II): one importance index ``ν_b`` per block and one freezing
threshold ``ε``. Block ``b`` is fine-tuned iff ``ν_b > ε`` (strictly) and then trains at
``base_lr · 10^(2(ν_b − 0.5))``; a frozen block gets no learning rate.

The genes' names (``importance:<block>``, ``freeze_threshold``) are the one convention shared by
the sampler, the objective and every renderer. The sampler is generic, but when a search space
holds genes named so it also honours the paper's rules that depend on their meaning (an initial
genotype or an immigrant selects at least one block; exploitation perturbs selected blocks).

This module imports without torch, so studies can be read and plans decoded anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any
from typing import TYPE_CHECKING

from optuna.distributions import FloatDistribution


if TYPE_CHECKING:
    import optuna


__all__ = [
    "BIOTUNE",
    "IMPORTANCE_PREFIX",
    "THRESHOLD_PARAM",
    "FineTunePlan",
    "PlanRow",
    "biotune_gene_indices",
    "block_names",
    "importance_param",
    "learning_rate_multiplier",
    "plan_search_space",
    "selected_blocks",
    "suggest_plan",
    "table_items",
    "table_line",
]

#: The strategy whose hyperparameters are BioTune's genes, searched by any sampler (its name in
#: specs, the CLI and the trials' ``strategy`` attr; the other strategies are baselines).
BIOTUNE = "biotune"
#: Parameter name prefix of a block's importance gene, e.g. ``"importance:layer3"``.
IMPORTANCE_PREFIX = "importance:"
#: Parameter name of the freezing threshold gene.
THRESHOLD_PARAM = "freeze_threshold"


#: What joins the items of a :func:`table_line`: a comma and a no-break space.
_TABLE_SEPARATOR = ",\u00a0"


def table_line(items: Sequence[str], *, empty: str = "none") -> str:
    """Items as one unbreakable line, ``"stem, stage4"`` with no-break spaces.

    The trial user attrs people read in optuna-dashboard's trial table (``plan``,
    ``frozen_blocks``, ``learning_rates``) are such lines: its grid makes a column as wide as
    its longest word and wraps the rest, so a list or a spaced text would make every row
    hundreds of pixels tall; one line keeps rows one line tall (the grid scrolls sideways).
    Plans are decoded from the genes (:meth:`FineTunePlan.from_params`), not from these.
    """
    return _TABLE_SEPARATOR.join(item.replace(" ", "\u00a0") for item in items) or empty


def table_items(line: str | Sequence[str], *, empty: str = "none") -> list[str]:
    """The items of a :func:`table_line` (a list, as older studies stored, passes through)."""
    if not isinstance(line, str):
        return list(line)
    if line == empty:
        return []
    return [item.replace("\u00a0", " ") for item in line.split(_TABLE_SEPARATOR)]


def importance_param(block: str) -> str:
    """Return the parameter name of the importance gene of ``block``."""
    return f"{IMPORTANCE_PREFIX}{block}"


def learning_rate_multiplier(importance: float) -> float:
    """Learning-rate multiplier of a fine-tuned block: ``10 ** (2 * (importance - 0.5))``.

    Log-uniform in the importance over ``(0.1, 10]``; 0.5 gives 1 (arXiv:2508.15367, §II).
    """
    return float(10.0 ** (2.0 * (importance - 0.5)))


def biotune_gene_indices(names: Sequence[str]) -> tuple[list[int], int] | None:
    """Locate BioTune genes among parameter names.

    Args:
        names: Parameter names in genotype order.

    Returns:
        ``(importance_indices, threshold_index)`` if ``names`` holds the threshold and at least one
        importance gene, else :obj:`None`.
    """
    if THRESHOLD_PARAM not in names:
        return None
    importance = [i for i, name in enumerate(names) if name.startswith(IMPORTANCE_PREFIX)]
    if not importance:
        return None
    return importance, list(names).index(THRESHOLD_PARAM)


def block_names(params: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Block names of the importance genes among parameter names, in the order given."""
    return [p[len(IMPORTANCE_PREFIX) :] for p in params if p.startswith(IMPORTANCE_PREFIX)]


def selected_blocks(params: Mapping[str, Any]) -> list[str]:
    """Return the blocks a BioTune genotype fine-tunes (importance strictly above the threshold).

    Args:
        params: Trial parameters holding the threshold and the importance genes.

    Returns:
        Block names in the order of ``params``.
    """
    threshold = float(params[THRESHOLD_PARAM])
    return [
        name[len(IMPORTANCE_PREFIX) :]
        for name, value in params.items()
        if name.startswith(IMPORTANCE_PREFIX) and float(value) > threshold
    ]


def _check_block_names(blocks: Sequence[str]) -> tuple[str, ...]:
    names = tuple(blocks)
    if not names:
        raise ValueError("a fine-tuning plan needs at least one block")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"block names must be unique; repeated: {', '.join(duplicates)}")
    for name in names:
        if not name or name != name.strip():
            raise ValueError(f"block names must be non-empty without outer spaces, got {name!r}")
    return names


def plan_search_space(blocks: Sequence[str]) -> dict[str, FloatDistribution]:
    """The ``B + 2`` genes of a backbone's blocks as an Optuna search space.

    Pass it to :class:`~biotune_optuna.BioTuneSampler` as ``search_space=`` so that even the first
    trial follows the paper's rules (an initial genotype selects at least one block).

    Args:
        blocks: Block names in forward order.

    Returns:
        ``{"importance:<block>": FloatDistribution(0, 1), ..., "freeze_threshold": ...}``.
    """
    space = {
        importance_param(name): FloatDistribution(0.0, 1.0) for name in _check_block_names(blocks)
    }
    space[THRESHOLD_PARAM] = FloatDistribution(0.0, 1.0)
    return space


@dataclasses.dataclass(frozen=True)
class PlanRow:
    """One block of a plan as every renderer shows it (CLI table, dashboard note, figures).

    Attributes:
        block: The block's name.
        importance: Its importance gene ``ν_b``.
        frozen: Whether the plan freezes it (``ν_b <= ε``).
        multiplier: Its learning-rate multiplier ``10^(2(ν_b − 0.5))`` if it is trained.
        learning_rate: ``base_lr × multiplier``, 0 for a frozen block.
    """

    block: str
    importance: float
    frozen: bool
    multiplier: float
    learning_rate: float


@dataclasses.dataclass(frozen=True)
class FineTunePlan:
    """Which blocks of a backbone to fine-tune, and at what learning rate.

    Attributes:
        blocks: Block names in forward order.
        importances: The importance gene ``ν_b`` of each block.
        threshold: The freezing threshold ``ε``.
        base_lr: The protocol's base learning rate.
    """

    blocks: tuple[str, ...]
    importances: tuple[float, ...]
    threshold: float
    base_lr: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", _check_block_names(self.blocks))
        object.__setattr__(self, "importances", tuple(float(v) for v in self.importances))
        if len(self.importances) != len(self.blocks):
            raise ValueError(
                f"{len(self.blocks)} blocks but {len(self.importances)} importance genes"
            )
        if not self.base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], blocks: Sequence[str], *, base_lr: float = 1e-3
    ) -> FineTunePlan:
        """Decode a trial's parameters (e.g. ``trial.params``) into a plan.

        Raises:
            KeyError: If a gene of ``blocks`` is missing from ``params``.
        """
        names = _check_block_names(blocks)
        missing = [p for p in [*map(importance_param, names), THRESHOLD_PARAM] if p not in params]
        if missing:
            raise KeyError(f"the parameters lack the genes {', '.join(missing)}")
        return cls(
            blocks=names,
            importances=tuple(float(params[importance_param(name)]) for name in names),
            threshold=float(params[THRESHOLD_PARAM]),
            base_lr=base_lr,
        )

    @property
    def freeze_mask(self) -> tuple[bool, ...]:
        """``True`` for each frozen block (``ν_b <= ε``), in block order."""
        return tuple(not v > self.threshold for v in self.importances)

    @property
    def selected(self) -> tuple[str, ...]:
        """Names of the blocks to fine-tune."""
        return tuple(b for b, frozen in zip(self.blocks, self.freeze_mask) if not frozen)

    @property
    def frozen(self) -> tuple[str, ...]:
        """Names of the frozen blocks."""
        return tuple(b for b, frozen in zip(self.blocks, self.freeze_mask) if frozen)

    @property
    def is_empty(self) -> bool:
        """Whether the plan fine-tunes no block at all (the paper gives it the worst fitness)."""
        return all(self.freeze_mask)

    def learning_rate(self, block: str) -> float:
        """The learning rate of a block *if it is trained*: ``base_lr · 10^(2(ν_b − 0.5))``."""
        return self.base_lr * learning_rate_multiplier(self.importances[self.blocks.index(block)])

    @property
    def learning_rates(self) -> dict[str, float]:
        """Learning rate of every block, 0 for frozen ones."""
        return {row.block: row.learning_rate for row in self.rows()}

    @property
    def frozen_prefix(self) -> int:
        """How many leading blocks are frozen (they can run once, without autograd, cached)."""
        count = 0
        for frozen in self.freeze_mask:
            if not frozen:
                break
            count += 1
        return count

    @property
    def params(self) -> dict[str, float]:
        """The genes as trial parameters: the inverse of :meth:`from_params`."""
        genes = {importance_param(b): nu for b, nu in zip(self.blocks, self.importances)}
        return {**genes, THRESHOLD_PARAM: self.threshold}

    def rows(self) -> tuple[PlanRow, ...]:
        """The plan block by block, in forward order: the one view every renderer uses."""
        return tuple(
            PlanRow(
                block=block,
                importance=nu,
                frozen=frozen,
                multiplier=learning_rate_multiplier(nu),
                learning_rate=0.0 if frozen else self.base_lr * learning_rate_multiplier(nu),
            )
            for block, nu, frozen in zip(self.blocks, self.importances, self.freeze_mask)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (stored as trial user attrs, printed by the CLI)."""
        return {
            "blocks": list(self.blocks),
            "frozen": list(self.frozen),
            "learning_rates": self.learning_rates,
            "importances": list(self.importances),
            "threshold": self.threshold,
            "base_lr": self.base_lr,
        }

    def summary(self) -> str:
        """The plan in one line: its trained blocks in order, each with its learning-rate
        multiplier to 2 significant digits (none for a block at the base rate, ``×1``).

        E.g. ``"stem, stage4 ×4.8, head ×9.8"`` (the trial user attr ``plan`` that
        optuna-dashboard shows in its trial table); a plan that trains nothing says so.
        """
        trained = [row for row in self.rows() if not row.frozen]
        if not trained:
            return f"nothing fine-tuned (all {len(self.blocks)} blocks frozen)"
        return ", ".join(_block_summary(row) for row in trained)

    def describe(self) -> str:
        """One line per block: frozen, or its learning rate."""
        width = max(len(b) for b in self.blocks)
        return "\n".join(
            f"{row.block:<{width}}  " + ("frozen" if row.frozen else f"lr {row.learning_rate:.3g}")
            for row in self.rows()
        )


def _block_summary(row: PlanRow) -> str:
    multiplier = f"{row.multiplier:.2g}"
    return row.block if multiplier == "1" else f"{row.block} ×{multiplier}"


def suggest_plan(
    trial: optuna.trial.BaseTrial, blocks: Sequence[str], *, base_lr: float = 1e-3
) -> FineTunePlan:
    """Suggest the ``B + 2`` BioTune genes on a trial and decode them into a plan.

    Every gene is suggested unconditionally as ``FloatDistribution(0, 1)`` named after its block
    (``importance:<block>``, then ``freeze_threshold``), so every sampler sees the same space and
    optuna-dashboard shows one column per block.

    Args:
        trial: The Optuna trial.
        blocks: Block names in forward order.
        base_lr: The base learning rate that the importance genes scale.

    Returns:
        The decoded :class:`FineTunePlan`.
    """
    names = _check_block_names(blocks)
    params = {p: trial.suggest_float(p, 0.0, 1.0) for p in plan_search_space(names)}
    return FineTunePlan.from_params(params, names, base_lr=base_lr)
