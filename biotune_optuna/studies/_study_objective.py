"""What a study runs: the one interface of the fine-tuning objective and the synthetic one."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Protocol
from typing import runtime_checkable

import optuna


__all__ = ["EpochCallback", "StudyObjective"]

#: Called as ``on_epoch(trial, epoch, value)`` after every epoch of a trial (progress bars).
EpochCallback = Callable[[optuna.trial.Trial, int, float], None]


@runtime_checkable
class StudyObjective(Protocol):
    """An objective :func:`~biotune_optuna.studies.build_objective` builds for a spec.

    Both :class:`~biotune_optuna.finetune.FineTuneObjective` and
    :class:`~biotune_optuna.synthetic.SyntheticFineTuning` are one.

    Attributes:
        on_epoch: Called after every epoch of a trial, or ``None``; an objective without
            epochs (the synthetic landscape with one epoch) never calls it.
    """

    on_epoch: EpochCallback | None

    @property
    def blocks(self) -> Sequence[str]:
        """The backbone's block names, in forward order."""
        ...

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The parameters a trial suggests, for the sampler's ``search_space=``."""
        ...

    def __call__(self, trial: optuna.trial.Trial) -> float:
        """Evaluate a trial (maximised)."""
        ...
