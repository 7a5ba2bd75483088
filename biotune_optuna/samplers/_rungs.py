"""Budget-aware BioTune: rungs of epochs, paused plans, and promotions that continue them.

The paper (Colan, Davila, Hasegawa, arXiv:2508.15367, §III) trains every plan to the end of its
protocol. In a budget-aware study (``[pruner] name = "rungs"``) each new plan the genetic
algorithm proposes trains only until the first rung of epochs and *pauses* there (a PRUNED trial
whose checkpoint is kept). As in asynchronous successive halving (Li et al., "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020), whenever a worker asks for a trial a
paused plan is *promoted* first if it is in the top ``1 / reduction_factor`` of the plans measured
at its rung, highest rung first: the new trial is a *continuation* that loads the paused trial's
checkpoint and trains on the same data fold until the next rung, spending only the epochs in
between (freeze-thaw style, rather than from scratch). Only when nothing is promotable does the
GA breed a new plan, so no worker waits for a generation to fill.

What a trial should do is written to its :data:`~biotune_optuna.trials.RUNG_KEY` system attr
(:class:`~biotune_optuna.trials.RungRecord`); :class:`RungPruner` stops a trial at its ``until``
epoch (never at the protocol's last one), and the objective keeps the checkpoint of a trial so
paused (:class:`~biotune_optuna.trials.TrialPaused`). The GA ranks a plan by its chain's furthest
rung and the value there, so any two plans are compared at the same budget
(:class:`~biotune_optuna.samplers._lineage.Member`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import retried_trial_number
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import RungRecord


if TYPE_CHECKING:
    from optuna.study import Study


__all__ = ["RungPruner", "epoch_rungs", "find_promotion", "rung_pruner_of"]


def epoch_rungs(
    max_epochs: int, *, reduction_factor: int = 3, min_epochs: int | None = None
) -> tuple[int, ...]:
    """The rungs of a protocol of ``max_epochs`` epochs, ascending, the last being ``max_epochs``.

    Rung ``k`` below the top is ``round(max_epochs / reduction_factor ** k)``, down to
    ``min_epochs``. The default, two rungs below the top but at least 2 epochs
    (``max(2, round(max_epochs / reduction_factor**2))``), was chosen on the dev plan table
    (``benchmarks/results/fidelity_rungs_dev.md``): a first epoch says little of a plan (its
    value ranks plans at Spearman 0.43 against their eighth there, the third at 0.72). So 8
    epochs by 3 give ``(3, 8)``, 30 epochs ``(3, 10, 30)``; 3 epochs or fewer, no rung below.
    """
    if max_epochs < 1 or reduction_factor < 2:
        raise ValueError(
            f"need max_epochs >= 1 and reduction_factor >= 2, got {max_epochs}, {reduction_factor}"
        )
    if min_epochs is None:
        min_epochs = max(2, round(max_epochs / reduction_factor**2))
    rungs, k = {max_epochs}, 1
    while (epochs := round(max_epochs / reduction_factor**k)) >= max(min_epochs, 1):
        rungs.add(epochs)
        k += 1
    return tuple(sorted(rungs))


class RungPruner(optuna.pruners.BasePruner):
    """Stop each trial at the rung its budget-aware sampler asked for (the ``rungs`` pruner).

    A trial whose :class:`~biotune_optuna.trials.RungRecord` says ``until = r`` is stopped once
    it reported epoch ``r`` (the objective raises
    :class:`~biotune_optuna.trials.TrialPaused` and keeps its checkpoint); a trial without a
    record is never stopped. Which trials continue, and how far, is the sampler's choice
    (:class:`~biotune_optuna.samplers.BioTunePlusSampler` reads :attr:`rungs` from here).

    Args:
        max_resource: The protocol's epochs (a spec fills it in from its protocol).
        reduction_factor: ``η``: a rung's plans promote their best ``1/η``; rungs are ``η``
            times apart.
        min_resource: The first rung (default: two rungs below the top; see
            :func:`epoch_rungs`).
    """

    def __init__(
        self, *, max_resource: int, reduction_factor: int = 3, min_resource: int | None = None
    ) -> None:
        self.rungs = epoch_rungs(
            max_resource, reduction_factor=reduction_factor, min_epochs=min_resource
        )
        self.reduction_factor = reduction_factor

    @property
    def max_epochs(self) -> int:
        return self.rungs[-1]

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        record = rung_record(trial)
        step = trial.last_step
        if record is None or step is None:
            return False
        return record.until < self.max_epochs and step >= record.until

    def __repr__(self) -> str:
        return f"RungPruner(rungs={self.rungs}, reduction_factor={self.reduction_factor})"


def rung_pruner_of(study: Study) -> RungPruner | None:
    """The study's :class:`RungPruner`, if it is budget-aware."""
    pruner = getattr(study, "pruner", None)
    return pruner if isinstance(pruner, RungPruner) else None


@dataclass(frozen=True)
class _Chain:
    """A plan's trials: the first and its continuations, with what they reported."""

    head: int
    values: dict[int, float]  # step -> value (maximisation form), over the chain's trials
    paused: FrozenTrial | None  # the chain's last trial if it is paused and not continued
    checkpoint: int  # the number its checkpoints are saved under (a retried head: the first)


def _chains(trials: list[FrozenTrial], sign: float) -> dict[int, _Chain]:
    """Each chain of a budget-aware study, keyed by its head."""
    values: dict[int, dict[int, float]] = defaultdict(dict)
    last: dict[int, FrozenTrial] = {}
    continued: set[int] = set()
    checkpoint: dict[int, int] = {}
    for trial in trials:
        record = rung_record(trial)
        if record is None:
            continue
        head = trial.number if record.head is None else record.head
        if record.source is not None:
            continued.add(record.source)
        for step, value in trial.intermediate_values.items():
            if math.isfinite(value):
                values[head][step] = max(values[head].get(step, -math.inf), sign * value)
        if head not in last or trial.number > last[head].number:
            last[head] = trial
        if record.head is None:  # the chain's first trial
            checkpoint[head] = retried_trial_number(trial)
    chains = {}
    for head, trial in last.items():
        paused = trial.state == TrialState.PRUNED and trial.number not in continued
        if paused and trial.last_step != rung_record(trial).until:  # type: ignore[union-attr]
            paused = False  # stopped otherwise (a failure, a user's stop): not continued
        chains[head] = _Chain(
            head, values[head], trial if paused else None, checkpoint.get(head, head)
        )
    return chains


def find_promotion(
    study: Study, pruner: RungPruner, trials: list[FrozenTrial]
) -> RungRecord | None:
    """The continuation the next trial should be, or ``None`` (the GA proposes a new plan).

    Highest rung first, a paused plan is promotable when its value at its rung is among the best
    ``floor(n / η)`` of the ``n`` plans that reached that rung (running ones included); the best
    promotable one is continued to the next rung.
    """
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    chains = _chains(trials, sign)
    rungs = pruner.rungs
    for k in range(len(rungs) - 2, -1, -1):
        rung = rungs[k]
        measured = sorted(
            (c.values[rung] for c in chains.values() if rung in c.values), reverse=True
        )
        n_top = len(measured) // pruner.reduction_factor
        if n_top == 0:
            continue
        bar = measured[n_top - 1]
        candidates = [
            c
            for c in chains.values()
            if c.paused is not None
            and c.paused.last_step == rung
            and c.values.get(rung, -math.inf) >= bar
        ]
        if candidates:
            best = max(candidates, key=lambda c: (c.values[rung], -c.head))
            source = best.paused
            assert source is not None
            fold = source.user_attrs.get(FOLD_ATTR)
            return RungRecord(
                until=rungs[k + 1],
                source=source.number,
                head=best.head,
                start=rung,
                fold=fold if isinstance(fold, int) else None,
                checkpoint=best.checkpoint,
            )
    return None
