"""The fine-tuning objective: one Optuna trial = one plan evaluated under the paper's protocol.

The same objective runs under every sampler, so samplers can be compared fairly: it suggests the
``B + 2`` BioTune genes on the trial (arXiv:2508.15367, §II), decodes them into a
:class:`~biotune_optuna.plan.FineTunePlan`, trains it on the generation's data fold and returns the
mean best validation macro accuracy (maximise).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import socket
from typing import Any

import numpy as np
import optuna

from biotune_optuna.failures import FAIL_REASON_ATTR
from biotune_optuna.failures import failure_reason
from biotune_optuna.failures import release_memory
from biotune_optuna.failures import TrialFailed
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._checkpoints import TrainingCheckpoints
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._data import n_folds_for
from biotune_optuna.finetune._data import stratified_folds
from biotune_optuna.finetune._device import describe_device
from biotune_optuna.finetune._optuna_bridge import study_id
from biotune_optuna.finetune._optuna_bridge import trial_id
from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._registry import search_space as strategy_search_space
from biotune_optuna.finetune._registry import strategy_settings
from biotune_optuna.finetune._results import PlanEvaluation
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.finetune._strategies import build_strategy
from biotune_optuna.finetune._strategies import FineTuneStrategy
from biotune_optuna.finetune._strategies import PlanStrategy
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan
from biotune_optuna.plan import table_line
from biotune_optuna.samplers import check_study_sampler
from biotune_optuna.samplers import GASchedule
from biotune_optuna.trials import EpochCallback
from biotune_optuna.trials import EPOCHS_ATTR
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import FROZEN_BLOCKS_ATTR
from biotune_optuna.trials import prune_if_asked
from biotune_optuna.trials import RESUMED_FROM_ATTR
from biotune_optuna.trials import retried_trial_number
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import RungRecord
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR
from biotune_optuna.trials import TRAINED_BLOCKS_ATTR
from biotune_optuna.trials import WALL_TIME_ATTR


__all__ = ["FineTuneObjective"]

_logger = optuna.logging.get_logger(__name__)

#: Fitness of a plan that fine-tunes nothing (the worst macro accuracy; never trained).
WORST_FITNESS = 0.0


def _display_learning_rates(plan: FineTunePlan) -> str:
    """The trained blocks' learning rates to 3 significant digits, in one line."""
    return table_line([f"{r.block} {r.learning_rate:.3g}" for r in plan.rows() if not r.frozen])


def _suggest(
    trial: optuna.trial.BaseTrial, name: str, dist: optuna.distributions.BaseDistribution
) -> Any:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    assert isinstance(dist, optuna.distributions.FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


class FineTuneObjective:
    """Evaluate a BioTune fine-tuning plan per trial. Maximise the returned value.

    Per trial: suggest the genes (``importance:<block>`` for each block, ``freeze_threshold``),
    pick the data fold of the trial's generation, train the plan ``n_seeds`` times on that fold
    of the train split, validate on that fold of the val split, report every epoch
    (``trial.report``, so pruners work) and record the plan and its costs as user attrs.

    With ``strategy`` set to a baseline of :data:`biotune_optuna.finetune._registry.STRATEGIES`
    (full
    fine-tuning, LoRA, L2-SP…), a trial suggests that strategy's searched hyperparameters
    instead of genes and trains it the same way, recording the same user attrs, so that its
    trials sit next to BioTune's in optuna-dashboard.

    Args:
        backbone: The pretrained backbone with its new head and blocks.
        data: Train/val/test splits.
        protocol: The training protocol (default: the paper's).
        fold_of_trial: ``fold_of_trial(trial, n_folds)``, the data fold a trial trains on
            (Colan et al., arXiv:2508.15367, §III: one fold per generation); it places trials of
            other samplers (which carry no ``generation`` user attr) on the folds BioTune would
            use. Default: the paper's schedule's
            (:meth:`~biotune_optuna.samplers.GASchedule.fold_of_trial`).
        fold_seed: Seed of the stratified folds.
        cache: Feature cache; by default one of ``protocol.feature_cache_mb``, shared by the
            trials of this objective.
        on_plan: Called as ``on_plan(trial, plan)`` once a study trial's genes are decoded,
            before it trains (the studies write the plan as the trial's dashboard note).
        on_epoch: Called as ``on_epoch(trial, epoch, value)`` after every epoch (progress bars).
        strategy: ``"biotune"`` (the genes) or a baseline strategy's name.
        strategy_options: The baseline's given hyperparameters.
        search: The baseline's hyperparameters to search (default: the strategy's own).
        checkpoints: Where trials save their training after every epoch (``None``: nowhere).
            A trial whose worker dies keeps its checkpoint; its heartbeat retry (Optuna's
            :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`) continues after the last
            finished epoch, with the result the trial would have had, and costs only the epochs
            it had left (:meth:`checkpoint_key`; user attr ``resumed_from_epoch``). Off for
            strategies that change the model, what trains or the optimizer between epochs (LoRA,
            LP-FT, Auto-RGN).

    Pruners and checkpoints: under Optuna's asynchronous successive halving (or Hyperband) a
    trial that a rung promotes never stops; it goes on training in the same process, so each
    rung costs only its extra epochs without any checkpoint. Checkpoints are for the worker
    that dies.

    A trial whose training fails (a NaN or infinite loss, out of memory, any error while
    loading batches or training) records why in its ``fail_reason`` user attr and raises
    :class:`~biotune_optuna.failures.TrialFailed`; run the study with
    ``study.optimize(objective, catch=(TrialFailed,))`` and it goes on, the failed plan ranked
    last by BioTune.

    Raises:
        biotune_optuna.samplers.SamplerMismatchError: At the first trial of a study that is
            continued under another sampler than its own (e.g. ``optuna.load_study`` without
            ``sampler=``, which attaches TPE to a BioTune study).
        biotune_optuna.failures.TrialFailed: When a trial's training fails.
    """

    def __init__(
        self,
        backbone: Backbone,
        data: ClassificationData,
        protocol: TrainingProtocol | None = None,
        *,
        fold_of_trial: Callable[[optuna.trial.BaseTrial, int], int] | None = None,
        fold_seed: int = 0,
        cache: FeatureCache | None = None,
        on_plan: Callable[[optuna.trial.Trial, FineTunePlan], None] | None = None,
        on_epoch: EpochCallback | None = None,
        strategy: str = BIOTUNE,
        strategy_options: Mapping[str, Any] | None = None,
        search: Sequence[str] | None = None,
        checkpoints: TrainingCheckpoints | None = None,
    ) -> None:
        self.strategy = strategy
        self.strategy_options, self.search = strategy_settings(
            strategy, strategy_options or {}, search
        )
        if strategy != BIOTUNE:
            build_strategy(strategy, self.strategy_options)  # bad values fail here
        block = self.strategy_options.get("block")
        if block is not None and block not in backbone.blocks:
            raise ValueError(f"block: {block!r} is not one of {', '.join(backbone.blocks)}")
        self.backbone = backbone
        self.data = data
        self.protocol = protocol or TrainingProtocol()
        self.fold_of_trial = fold_of_trial or GASchedule().fold_of_trial
        self.on_plan = on_plan
        self.on_epoch = on_epoch
        self.checkpoints = checkpoints
        self._checked_studies: set[int] = set()
        outputs = backbone.model.get_submodule(backbone.head[0]).out_features
        if outputs != data.num_classes:
            raise ValueError(
                f"the backbone's head has {outputs} outputs but the data has "
                f"{data.num_classes} classes"
            )
        self.n_folds = n_folds_for(self.protocol.train_fraction)
        self._train_folds = stratified_folds(data.train_labels, self.n_folds, seed=fold_seed)
        self._val_folds = stratified_folds(data.val_labels, self.n_folds, seed=fold_seed)
        self.cache = (
            cache
            if cache is not None
            else FeatureCache(int(self.protocol.feature_cache_mb * 2**20))
        )

    @property
    def blocks(self) -> tuple[str, ...]:
        """The backbone's block names."""
        return self.backbone.blocks

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The genes, for ``BioTuneSampler(search_space=...)``; a baseline's searched
        hyperparameters."""
        if self.strategy == BIOTUNE:
            return dict(plan_search_space(self.blocks))
        return strategy_search_space(self.strategy, self.search, self.blocks)

    def fold_splits(self, fold: int) -> tuple[DataSplit, DataSplit]:
        """The train and val examples of data fold ``fold``."""
        train_index = self._train_folds[fold]
        val_index = self._val_folds[fold]
        token = id(self.data)
        return (
            DataSplit(
                self.data.train,
                train_index,
                self.data.train_labels[train_index],
                (token, "train", fold, self.n_folds),
            ),
            DataSplit(
                self.data.val,
                val_index,
                self.data.val_labels[val_index],
                (token, "val", fold, self.n_folds),
            ),
        )

    def fold_of(self, trial: optuna.trial.BaseTrial) -> int:
        """The fold of a trial (the ``fold_of_trial`` function over this objective's folds)."""
        return self.fold_of_trial(trial, self.n_folds)

    def evaluate(
        self,
        plan: FineTunePlan | FineTuneStrategy,
        fold: int = 0,
        *,
        report: Any = None,
        checkpoint_key: str | None = None,
        on_resume: Callable[[int], None] | None = None,
    ) -> PlanEvaluation:
        """Evaluate a plan (or a baseline strategy) on fold ``fold`` outside of any study.

        With ``checkpoint_key`` (and :attr:`checkpoints`), it saves its training under that key
        after every epoch and continues from a checkpoint saved there
        (:func:`~biotune_optuna.finetune._training.evaluate_plan`'s ``checkpoint``), calling
        ``on_resume`` with the epoch it continues after (0: from the start).
        """
        train, val = self.fold_splits(fold)
        checkpoint = None
        if self.checkpoints is not None and checkpoint_key is not None:
            checkpoint = (self.checkpoints, checkpoint_key)
        return evaluate_plan(
            self.backbone,
            plan,
            train,
            val,
            self.protocol,
            num_classes=self.data.num_classes,
            cache=self.cache,
            report=report,
            checkpoint=checkpoint,
            on_resume=on_resume,
        )

    def checkpoint_key(self, trial: optuna.trial.Trial, fold: int) -> str:
        """The key of a trial's checkpoint: its study, its trial and its fold.

        The trial is the one a heartbeat retry retries (:func:`retried_trial_number`), so the
        retry of a trial whose worker died finds that trial's checkpoint (and every retry of a
        chain the same one); for a continuation of a budget-aware study, the first trial of
        the plan's chain, whose paused training it continues; else the trial itself.
        """
        record = rung_record(trial)
        number = None if record is None else record.checkpoint
        number = retried_trial_number(trial) if number is None else number
        return f"{trial.study.study_name}/trial-{number}/fold-{fold}"

    def _warn_if_gone(
        self, trial: optuna.trial.Trial, record: RungRecord | None, key: str | None
    ) -> None:
        """A continuation whose checkpoint is gone (evicted, another host's disk) trains from
        the first epoch: say so."""
        if record is None or record.start == 0:
            return
        if self.checkpoints is None or key is None or not self.checkpoints.path(key).exists():
            _logger.warning(
                f"Trial {trial.number} continues trial {record.source}, whose checkpoint is "
                "gone: it trains from the first epoch."
            )

    def strategy_of(self, params: Mapping[str, Any]) -> FineTuneStrategy:
        """The strategy a trial's parameters give (a BioTune plan, or a baseline)."""
        if self.strategy == BIOTUNE:
            plan = FineTunePlan.from_params(params, self.blocks, base_lr=self.protocol.base_lr)
            return PlanStrategy.under(plan, self.protocol)
        settings = {**self.strategy_options, **{k: params[k] for k in self.search}}
        return build_strategy(self.strategy, settings, base_lr=self.protocol.base_lr)

    def __call__(self, trial: optuna.trial.Trial) -> float:
        live = isinstance(trial, optuna.Trial)  # not a FixedTrial
        if live and study_id(trial.study) not in self._checked_studies:
            check_study_sampler(trial.study)
            self._checked_studies.add(study_id(trial.study))
        if self.strategy == BIOTUNE:
            plan = suggest_plan(trial, self.blocks, base_lr=self.protocol.base_lr)
            if self.on_plan is not None and live:
                self.on_plan(trial, plan)
            strategy = PlanStrategy.under(plan, self.protocol)
            # First of the objective's attrs: a storage that keeps their order (journal) shows
            # it right after the sampler's (SQLite sorts them by name; see the README).
            trial.set_user_attr("plan", table_line([strategy.summary()]))
            trial.set_user_attr(FROZEN_BLOCKS_ATTR, table_line(plan.frozen))
            trial.set_user_attr(TRAINED_BLOCKS_ATTR, len(plan.selected))
            trial.set_user_attr("learning_rates", _display_learning_rates(plan))
        else:
            params = {k: _suggest(trial, k, d) for k, d in self.search_space.items()}
            strategy = self.strategy_of(params)
            trial.set_user_attr("plan", table_line([strategy.summary()]))
            trial.set_user_attr("strategy", self.strategy)
            trial.set_user_attr("strategy_settings", strategy.settings)
        # After the suggestions: BioTune writes the trial's generation when it is first asked
        # for parameters, and with several workers a generation can take trials that the
        # one-worker numbering would put in the next one (it overshoots).
        record = rung_record(trial) if live else None
        fold = self.fold_of(trial) if record is None or record.fold is None else record.fold
        trial.set_user_attr(FOLD_ATTR, fold)
        # Where it ran: with many workers and hosts on one storage, the wall times and any
        # failure (out of memory on one GPU, say) make sense only next to these.
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("device", describe_device(self.protocol.device))
        report = self._report_hook(trial, live)
        checkpoint_key = self.checkpoint_key(trial, fold) if live else None
        self._warn_if_gone(trial, record, checkpoint_key)
        resumed = [0]  # the epoch the training resumed after (a retry's or continuation's)

        def on_resume(epoch: int) -> None:
            resumed[0] = epoch
            if epoch:
                trial.set_user_attr(RESUMED_FROM_ATTR, epoch)

        reason = None
        try:
            result = self.evaluate(
                strategy, fold, report=report, checkpoint_key=checkpoint_key, on_resume=on_resume
            )
        except optuna.TrialPruned:  # stopped or paused: it trained the epochs since it resumed
            last = max(trial.storage.get_trial(trial_id(trial)).intermediate_values, default=0)
            trial.set_user_attr(EPOCHS_ATTR, float(max(last - resumed[0], 0)))
            raise
        except Exception as exc:  # diverged, out of memory, a broken batch: this trial only
            reason = failure_reason(exc)
        if reason is not None:
            # Outside the handler, so the traceback's frames (and their tensors) are gone.
            release_memory()
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            raise TrialFailed(reason)
        self._record(trial, result)
        return result.fitness

    def _report_hook(self, trial: optuna.trial.Trial, live: bool) -> Callable[[int, float], None]:
        """After each epoch: ``trial.report``, ``on_epoch``; :class:`optuna.TrialPruned` if pruned.

        A heartbeat retry may hold its first trial's values already
        (``RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)``); the epochs a
        checkpoint replays are then not reported twice.
        """
        reported: set[int] = set()
        if live and self.checkpoints is not None:
            reported = set(trial.storage.get_trial(trial_id(trial)).intermediate_values)

        def report(epoch: int, value: float) -> None:
            if epoch not in reported:
                trial.report(value, epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, epoch, value)
            prune_if_asked(trial, epoch, value, last=self.protocol.max_epochs)

        return report

    def _record(self, trial: optuna.trial.Trial, result: PlanEvaluation) -> None:
        attrs: dict[str, Any] = {
            FROZEN_BLOCKS_ATTR: table_line(result.frozen_blocks),
            TRAINED_BLOCKS_ATTR: len(self.blocks) - len(result.frozen_blocks),
            "trainable_parameters": result.trainable_parameters,
            TRAINABLE_FRACTION_ATTR: round(result.trainable_fraction, 6),
            WALL_TIME_ATTR: round(result.seconds, 3),
            "macro_accuracy": result.fitness,  # the trial's value, exactly
            "top1_accuracy": round(result.top1_accuracy, 4),
        }
        if result.runs:
            # What this trial trained itself (a retry or continuation resumed after an epoch);
            # summed by benchmarks: unrounded.
            attrs[EPOCHS_ATTR] = float(np.mean(result.epochs)) - result.resumed_epoch
            attrs["epochs_per_seed"] = result.epochs
            attrs["macro_accuracy_per_seed"] = [round(r.macro_accuracy, 4) for r in result.runs]
            attrs["feature_cache"] = result.feature_cache
            if result.resumed_epoch:
                attrs[RESUMED_FROM_ATTR] = result.resumed_epoch
        else:
            attrs[EPOCHS_ATTR] = 0.0
            attrs["skipped"] = "fine-tunes nothing: worst fitness, not trained"
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
