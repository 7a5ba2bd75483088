"""A recorded plan table as a study's objective: real fine-tuning results, replayed.

:class:`TableObjective` is the fine-tuning objective with the training looked up instead of
run (``[objective] kind = "table"``). A trial suggests the same BioTune genes (arXiv:2508.15367,
§II) over the table's blocks, decodes them into a plan, takes it to its grid point
(:meth:`~biotune_optuna.studies._plan_table.PlanTable.code_of`), and is placed on the data fold
of its generation by the same rule as a live trial
(:func:`~biotune_optuna.trials.fold_of_generation`). Its value is what the engine gave that
plan on that fold: the recorded run's best validation macro accuracy (averaged over the
recorded seeds of the fold, as the engine averages ``n_seeds``). It reports the recorded
running value after every epoch, so every pruner works, and records the user attrs a live trial
records (``plan``, ``fold``, ``epochs``, ``wall_time_s``…), so compute counts the same way:
the epochs and seconds of a pruned trial are the ones it had run when it was stopped, and a
continuation of a budget-aware study (``[pruner] name = "rungs"``) pays only for the epochs
after the checkpoint it continues.
Imports without torch; a 140-trial study replays in about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Generator
from pathlib import Path

import optuna

from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan
from biotune_optuna.plan import table_line
from biotune_optuna.samplers import check_study_sampler
from biotune_optuna.samplers import GASchedule
from biotune_optuna.studies._optuna_bridge import study_id
from biotune_optuna.studies._plan_table import plan_of_code
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.trials import EpochCallback
from biotune_optuna.trials import EPOCHS_ATTR
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import FROZEN_BLOCKS_ATTR
from biotune_optuna.trials import prune_if_asked
from biotune_optuna.trials import RESUMED_FROM_ATTR
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR
from biotune_optuna.trials import TRAINED_BLOCKS_ATTR
from biotune_optuna.trials import WALL_TIME_ATTR


__all__ = ["TABLE_CODE_ATTR", "TableObjective"]

#: User attr of a replayed trial: the grid point its plan was taken to.
TABLE_CODE_ATTR = "table_code"


class TableObjective:
    """Replay a recorded :class:`~biotune_optuna.studies._plan_table.PlanTable` (maximise).

    Args:
        table: The table, or the path of its file.
        fold_of_trial: ``fold_of_trial(trial, n_folds)``, the fold a trial trains on, as the
            live objective takes it (default: the paper's schedule's
            :meth:`~biotune_optuna.samplers.GASchedule.fold_of_trial`).

    Attributes:
        on_epoch: Called as ``on_epoch(trial, epoch, value)`` after every epoch.
    """

    def __init__(
        self,
        table: PlanTable | str | Path,
        *,
        fold_of_trial: Callable[[optuna.trial.BaseTrial, int], int] | None = None,
    ) -> None:
        self.table = table if isinstance(table, PlanTable) else PlanTable.load(table)
        self.fold_of_trial = fold_of_trial or GASchedule().fold_of_trial
        self.on_epoch: EpochCallback | None = None
        self._checked_studies: set[int] = set()

    @property
    def blocks(self) -> tuple[str, ...]:
        """The table's blocks, in forward order."""
        return self.table.blocks

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The genes over the table's blocks, for ``BioTuneSampler(search_space=...)``."""
        return dict(plan_search_space(self.blocks))

    def fold_of(self, trial: optuna.trial.BaseTrial) -> int:
        """The fold of a trial, as a live one's (the ``fold_of_trial`` function)."""
        return self.fold_of_trial(trial, self.table.n_folds)

    def curve(self, code: str, fold: int) -> tuple[list[float], float]:
        """The running value after each epoch of plan ``code`` on ``fold`` (the mean over the
        fold's recorded seeds, as the engine averages its seeds) and its seconds per epoch."""
        runs = self.table.runs(code, fold=fold)
        if not runs:
            return [], 0.0
        curves = [run.running_best() for run in runs]
        values = [sum(epoch) / len(epoch) for epoch in zip(*curves)]
        seconds = sum(run.seconds for run in runs) / sum(len(run.val) for run in runs)
        return values, seconds * len(runs)

    def recorded_test(self, params: dict[str, float]) -> dict[str, object]:
        """What retraining the plan of ``params`` gives a user, read from the table: the
        test macro accuracy of each recorded run's best-validation weights (no training)."""
        plan = FineTunePlan.from_params(params, self.blocks, base_lr=self.table.base_lr)
        code = self.table.code_of(plan)
        runs = self.table.runs(code)
        return {
            "table_code": code,
            "runs": [{"fold": r.fold, "seed": r.seed, "test": r.test} for r in runs],
            "test_macro_accuracy_per_run": [r.test for r in runs],
        }

    def __call__(self, trial: optuna.trial.Trial) -> float:
        steps = self.steps(trial)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return float(done.value)

    def steps(self, trial: optuna.trial.Trial) -> Generator[float, None, float]:
        """The trial epoch by epoch: yields each epoch's recorded seconds before the epoch is
        reported (an event-driven simulation of many workers advances it one epoch at a time,
        at simulated times); returns the value, or raises :class:`optuna.TrialPruned`.

        A continuation of a budget-aware study (:func:`~biotune_optuna.trials.rung_record`)
        replays its source's run on the source's fold: the epochs its source trained are
        reported again at no cost, as a live continuation reports its checkpoint's.
        """
        live = isinstance(trial, optuna.Trial)
        if live and study_id(trial.study) not in self._checked_studies:
            check_study_sampler(trial.study)
            self._checked_studies.add(study_id(trial.study))
        plan = suggest_plan(trial, self.blocks, base_lr=self.table.base_lr)
        code = self.table.code_of(plan)
        record = rung_record(trial) if live else None
        start = record.start if record is not None else 0
        fold = record.fold if record is not None and record.fold is not None else None
        fold = self.fold_of(trial) if fold is None else fold
        self._describe(trial, plan, code, fold)
        values, seconds_per_epoch = self.curve(code, fold)
        if not values:
            self._record(trial, code, epochs=0, seconds=0.0)
            trial.set_user_attr("skipped", "fine-tunes nothing: worst fitness, not trained")
            return 0.0
        if start:
            trial.set_user_attr(RESUMED_FROM_ATTR, start)
        for epoch, value in enumerate(values, start=1):
            if epoch > start:
                yield seconds_per_epoch
            trial.report(value, epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, epoch, value)
            try:
                prune_if_asked(trial, epoch, value, last=len(values))
            except optuna.TrialPruned:
                spent = max(epoch - start, 0)
                self._record(trial, code, epochs=spent, seconds=spent * seconds_per_epoch)
                raise
        spent = len(values) - start
        self._record(trial, code, epochs=spent, seconds=spent * seconds_per_epoch)
        trial.set_user_attr("macro_accuracy", values[-1])
        return values[-1]

    def _describe(
        self, trial: optuna.trial.Trial, plan: FineTunePlan, code: str, fold: int
    ) -> None:
        """The attrs a live trial writes before it trains: what it trains, on which fold."""
        grid = plan_of_code(code, self.blocks, self.table.levels, base_lr=self.table.base_lr)
        trial.set_user_attr("plan", table_line([grid.summary()]))
        trial.set_user_attr(FROZEN_BLOCKS_ATTR, table_line(plan.frozen))
        trial.set_user_attr(TRAINED_BLOCKS_ATTR, len(plan.selected))
        trial.set_user_attr(TABLE_CODE_ATTR, code)
        trial.set_user_attr(FOLD_ATTR, fold)

    def _record(
        self, trial: optuna.trial.Trial, code: str, *, epochs: int, seconds: float
    ) -> None:
        """The costs a live trial records: epochs (per seed, as the engine's mean), seconds."""
        trial.set_user_attr(EPOCHS_ATTR, float(epochs))
        trial.set_user_attr(WALL_TIME_ATTR, round(seconds, 3))
        trial.set_user_attr(TRAINABLE_FRACTION_ATTR, round(self.table.trainable_fraction(code), 6))
