"""What evaluating a plan gives: a :class:`SeedResult` per seed, and a :class:`PlanEvaluation`.

Under the paper's protocol (arXiv:2508.15367, §III) a plan's fitness is the mean over seeds of
each run's best validation macro accuracy; the test split, when there is one, is scored once per
seed with that best epoch's weights.
"""

from __future__ import annotations

import dataclasses

from torch import nn


__all__ = ["PlanEvaluation", "SeedResult"]


@dataclasses.dataclass
class SeedResult:
    """One training run of a plan.

    Attributes:
        seed: Its seed.
        macro_accuracy: Best validation macro accuracy over its epochs.
        top1_accuracy: Validation top-1 accuracy at that epoch.
        best_epoch: The epoch (1-based) of the best macro accuracy.
        epochs: Epochs run (early stopping may end a run before ``max_epochs``).
        history: Validation macro accuracy after each epoch.
        test_macro_accuracy: Macro accuracy on the test split with the best epoch's weights.
        test_top1_accuracy: Top-1 accuracy on the test split with the best epoch's weights.
    """

    seed: int
    macro_accuracy: float = 0.0
    top1_accuracy: float = 0.0
    best_epoch: int = 0
    epochs: int = 0
    history: list[float] = dataclasses.field(default_factory=list)
    test_macro_accuracy: float | None = None
    test_top1_accuracy: float | None = None


@dataclasses.dataclass
class PlanEvaluation:
    """The result of evaluating a plan.

    Attributes:
        fitness: Mean over seeds of the best validation macro accuracy (0 for an empty plan).
        top1_accuracy: Mean over seeds of the top-1 accuracy at each run's best epoch.
        runs: One :class:`SeedResult` per seed (none for an empty plan).
        trainable_parameters: Parameter elements the plan trains.
        total_parameters: Parameter elements of the model.
        seconds: Wall time of the evaluation.
        feature_cache: ``"hit"``, ``"stored"``, ``"refused"`` or ``"none"`` (no frozen prefix
            or no sequential view).
        models: The trained models (best epoch's weights), if asked for.
        frozen_blocks: Blocks none of whose parameters was trained.
        resumed_epoch: The epoch a checkpoint let the evaluation continue after (0: it trained
            from the start).
    """

    fitness: float
    top1_accuracy: float
    runs: list[SeedResult]
    trainable_parameters: int
    total_parameters: int
    seconds: float
    feature_cache: str = "none"
    models: list[nn.Module] = dataclasses.field(default_factory=list)
    frozen_blocks: tuple[str, ...] = ()
    resumed_epoch: int = 0

    @property
    def trainable_fraction(self) -> float:
        """Share of the parameters that the plan trains."""
        return self.trainable_parameters / max(self.total_parameters, 1)

    @property
    def epochs(self) -> list[int]:
        """Epochs run per seed."""
        return [run.epochs for run in self.runs]
