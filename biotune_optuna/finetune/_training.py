"""Training and scoring one fine-tuning plan under the paper's protocol (arXiv:2508.15367, §III).

One evaluation trains ``n_seeds`` fresh copies of the pretrained model (each with a newly
initialised head) on the same data, in lockstep epoch by epoch, with early stopping per seed. Its
fitness is the mean over seeds of the best validation **macro** accuracy (mean per-class recall).
After every epoch the running fitness is reported, so Optuna's pruners can stop a bad plan early.
A baseline strategy (full fine-tuning, linear probe, LP-FT, …) is evaluated the same way.

Speed: leading frozen blocks run without autograd, in eval mode; when the backbone has a
sequential view their output is computed once per data fold and kept in a bounded
:class:`~biotune_optuna.finetune._cache.FeatureCache`, so later epochs, seeds and trials with the
same frozen prefix run only the trainable suffix. On CUDA: bf16 autocast, channels_last, pinned
memory.

Repeatability: each seed's head is initialised right after ``torch.manual_seed(seed)``, and each
epoch's shuffle, augmentation and dropout are drawn from seeds of the run's seed and the epoch.
So an evaluation can be saved after any epoch
(:class:`~biotune_optuna.finetune._checkpoints.TrainingCheckpoints`) and continued later, in
another process, with the same result as if it had never stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import copy
import dataclasses
import hashlib
import time

import numpy as np
import torch
from torch import nn

from biotune_optuna.finetune._apply import eval_mode_mask
from biotune_optuna.finetune._apply import set_train_mode
from biotune_optuna.finetune._apply import trained_blocks
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._blocks import BlockLayout
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._checkpoints import EvaluationCheckpoint
from biotune_optuna.finetune._checkpoints import TrainingCheckpoints
from biotune_optuna.finetune._device import Placement
from biotune_optuna.finetune._features import Features
from biotune_optuna.finetune._metrics import macro_accuracy
from biotune_optuna.finetune._optimizers import build_optimizer
from biotune_optuna.finetune._optimizers import build_scheduler
from biotune_optuna.finetune._pipeline import classification_loss
from biotune_optuna.finetune._pipeline import Normalize
from biotune_optuna.finetune._pipeline import Pipeline
from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._results import PlanEvaluation
from biotune_optuna.finetune._results import SeedResult
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.finetune._strategies import EpochChange
from biotune_optuna.finetune._strategies import FineTuneStrategy
from biotune_optuna.finetune._strategies import PlanStrategy
from biotune_optuna.finetune._strategies import StrategyRun
from biotune_optuna.plan import FineTunePlan


__all__ = ["evaluate_plan"]

#: A sequential view of a model: ``(block index, module)`` pairs in order.
Stages = list[tuple[int, nn.Module]]


def evaluate_plan(
    backbone: Backbone,
    plan_or_strategy: FineTunePlan | FineTuneStrategy,
    train: DataSplit,
    val: DataSplit,
    protocol: TrainingProtocol,
    *,
    num_classes: int,
    test: DataSplit | None = None,
    cache: FeatureCache | None = None,
    report: Callable[[int, float], None] | None = None,
    keep_models: bool = False,
    checkpoint: tuple[TrainingCheckpoints, str] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> PlanEvaluation:
    """Train a plan (or a baseline strategy) on ``train`` for each seed and score it on ``val``.

    Args:
        backbone: The pretrained backbone (its model is copied, never changed).
        plan_or_strategy: The BioTune plan to apply, trained as
            ``PlanStrategy.under(plan, protocol)``; or
            any :class:`~biotune_optuna.finetune.FineTuneStrategy` (e.g. a baseline).
        train: Training examples.
        val: Validation examples (early stopping and the fitness).
        protocol: The training protocol.
        num_classes: Number of classes (for the macro accuracy).
        test: If given, each seed's best-epoch weights are scored on it once.
        cache: The frozen-prefix feature cache to use (``None``: no caching).
        report: Called after every epoch with ``(epoch, running fitness)``; the running
            fitness is the mean over seeds of the best validation macro accuracy so far. It may
            raise (e.g. :class:`optuna.TrialPruned`) to stop the evaluation.
        keep_models: Return the trained models (best epoch's weights) in the result.
        checkpoint: ``(store, key)``: save the evaluation's state under ``key`` after every
            epoch, and if the store holds a checkpoint of the same evaluation (same strategy,
            protocol, data and ``test``/``keep_models`` choice) under ``key``, continue after
            its epoch: the result is the uninterrupted one, and only the epochs left are
            trained (the saved epochs' running fitness is reported again first). The
            checkpoint is removed when the evaluation ends, finished or stopped by an exception
            (``report``'s :class:`optuna.TrialPruned`, a training failure), but not when the
            process dies or is stopped (``KeyboardInterrupt``, ``SystemExit``), so a retry
            can continue. Off for strategies that are not
            :attr:`~biotune_optuna.finetune.FineTuneStrategy.resumable` (LoRA, LP-FT,
            Auto-RGN).
        on_resume: Called once, before training, with the epoch the training continues after
            (0: from the start; what a trial that resumed trained is counted from it).

    Returns:
        The :class:`~biotune_optuna.finetune._results.PlanEvaluation`; ``trainable_parameters``
        counts every parameter element trained in some epoch. An empty plan (or a strategy that
        trains nothing) scores 0 at once, without training.
    """
    start = time.perf_counter()
    strategy = _as_strategy(plan_or_strategy, protocol)
    setting = _Setting(backbone, strategy, protocol, Placement.for_protocol(protocol), num_classes)
    keep_best = test is not None or keep_models
    slot = _checkpoint_slot(checkpoint, setting, (train, val), keep_best)
    with slot or contextlib.nullcontext():
        return _evaluate(
            setting, train, val, test, cache, report, keep_models, slot, start, on_resume
        )


def _evaluate(
    setting: _Setting,
    train: DataSplit,
    val: DataSplit,
    test: DataSplit | None,
    cache: FeatureCache | None,
    report: Callable[[int, float], None] | None,
    keep_models: bool,
    slot: EvaluationCheckpoint | None,
    start: float,
    on_resume: Callable[[int], None] | None = None,
) -> PlanEvaluation:
    """:func:`evaluate_plan` once its setting is made (and its checkpoint, if any, opened)."""
    if slot is not None:
        setting, cache = _with_saved_frozen(setting, slot, cache)
    backbone, keep_best = setting.backbone, test is not None or keep_models
    total = sum(p.numel() for p in backbone.model.parameters())
    normalize = _place_template(setting)
    prepared = _prepare_models(setting)
    first = prepared[0].model
    trainable = _count_trainable(first)
    if trainable == 0:
        seconds = time.perf_counter() - start
        return PlanEvaluation(0.0, 0.0, [], 0, total, seconds, frozen_blocks=backbone.layout.names)

    eval_mask = eval_mode_mask(first, backbone.layout)
    prefix_blocks = _frozen_prefix(first, setting)
    sources = _Sources.build(setting, normalize, prefix_blocks, train, val, test, cache)
    runs = _start_runs(prepared, setting, prefix_blocks, normalize, eval_mask)
    resumed = 0 if slot is None else slot.resume(runs)
    if on_resume is not None:
        on_resume(resumed)
    trainable = max(
        trainable, _train_in_lockstep(runs, sources, setting, report, keep_best, slot, resumed)
    )
    models = _finish(runs, sources.test, setting, keep_models=keep_models)
    return _evaluation(
        runs,
        first,
        backbone.layout,
        trainable=trainable,
        total=total,
        models=models,
        feature_cache=sources.train.status,
        start=start,
        resumed_epoch=resumed,
    )


def _as_strategy(
    plan_or_strategy: FineTunePlan | FineTuneStrategy, protocol: TrainingProtocol
) -> FineTuneStrategy:
    """A strategy as given; a plan as BioTune's strategy under the protocol's head and lr rules."""
    if isinstance(plan_or_strategy, FineTuneStrategy):
        return plan_or_strategy
    return PlanStrategy.under(plan_or_strategy, protocol)


def _checkpoint_slot(
    checkpoint: tuple[TrainingCheckpoints, str] | None,
    setting: _Setting,
    splits: tuple[DataSplit, DataSplit],
    keep_best: bool,
) -> EvaluationCheckpoint | None:
    """The evaluation's checkpoint, or ``None`` if none is asked for or the strategy cannot."""
    if checkpoint is None or not setting.strategy.resumable:
        return None
    store, key = checkpoint
    backbone = setting.backbone
    described = (
        backbone.name,
        backbone.layout.names,
        setting.strategy.describe(),
        setting.protocol,
        setting.num_classes,
        keep_best,
    )
    digest = hashlib.sha256(repr(described).encode())
    for split in splits:
        digest.update(np.ascontiguousarray(split.indices).tobytes())
        digest.update(np.ascontiguousarray(split.labels).tobytes())
    return EvaluationCheckpoint(store, key, digest.hexdigest(), frozen=not backbone.pretrained)


def _with_saved_frozen(
    setting: _Setting, slot: EvaluationCheckpoint, cache: FeatureCache | None
) -> tuple[_Setting, FeatureCache | None]:
    """The setting and cache to continue the slot's checkpoint with: a template with the frozen
    weights the checkpoint saved, where they differ from this one's (a backbone that is not
    pretrained, built otherwise in another process), and then no cache (its features are of
    the other template); else the setting and cache as given."""
    backbone = setting.backbone
    heads = tuple(f"{path}." for path in backbone.head)  # re-initialised per seed anyway
    saved = {k: v for k, v in slot.frozen_weights().items() if not k.startswith(heads)}
    current = backbone.model.state_dict()
    if any(k not in current or current[k].shape != v.shape for k, v in saved.items()):
        return setting, cache  # not this model's weights: resume() finds they do not fit
    if all(torch.equal(current[k].cpu(), v) for k, v in saved.items()):
        return setting, cache
    # The layout's sequential view holds the model's modules: copied with it.
    template, layout = copy.deepcopy((backbone.model, backbone.layout))
    template.load_state_dict(saved, strict=False)
    frozen = dataclasses.replace(backbone, model=template, layout=layout)
    return dataclasses.replace(setting, backbone=frozen), None


@dataclasses.dataclass(frozen=True)
class _Setting:
    """What every run of one evaluation shares.

    Attributes:
        backbone: The pretrained backbone (the template every run copies).
        strategy: How each copy is fine-tuned.
        protocol: The training protocol.
        placement: Where the runs train.
        num_classes: Number of classes (for the macro accuracy).
    """

    backbone: Backbone
    strategy: FineTuneStrategy
    protocol: TrainingProtocol
    placement: Placement
    num_classes: int


@dataclasses.dataclass
class _PreparedModel:
    """One seed's fresh copy of the template, its head re-initialised and its strategy started."""

    seed: int
    model: nn.Module
    stages: Stages
    strategy_run: StrategyRun


@dataclasses.dataclass
class _Run:
    """One seed's training run: its model, optimizer, early-stopping state and result so far."""

    result: SeedResult
    model: nn.Module
    pipeline: Pipeline
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    strategy_run: StrategyRun
    eval_mask: tuple[bool, ...]
    stale: int = 0
    stopped: bool = False
    best_state: dict[str, torch.Tensor] | None = None

    def record(
        self, epoch: int, macro: float, top1: float, *, patience: int, keep_best: bool
    ) -> None:
        """Record an epoch's validation accuracies; keep the best, or count it towards stopping."""
        result = self.result
        result.epochs = epoch
        result.history.append(macro)
        if macro > result.macro_accuracy or result.best_epoch == 0:
            result.macro_accuracy, result.top1_accuracy = macro, top1
            result.best_epoch, self.stale = epoch, 0
            if keep_best:
                self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
            self.stopped = self.stale >= patience


@dataclasses.dataclass(frozen=True)
class _Sources:
    """The batches of the train, val and (if any) test splits, through the shared prefix."""

    train: Features
    val: Features
    test: Features | None

    @classmethod
    def build(
        cls,
        setting: _Setting,
        normalize: nn.Module,
        prefix_blocks: int,
        train: DataSplit,
        val: DataSplit,
        test: DataSplit | None,
        cache: FeatureCache | None,
    ) -> _Sources:
        """The sources; train and val features are cached, test features never."""
        layout, protocol, placement = setting.backbone.layout, setting.protocol, setting.placement
        stages = _sequential_view(list(layout.stages or []), setting.strategy)
        shared = Pipeline(stages, setting.backbone.model, prefix_blocks, normalize)

        def source(split: DataSplit, store: FeatureCache | None, augmentation: str) -> Features:
            return Features(split, shared, placement, protocol, store, prefix_blocks, augmentation)

        return cls(
            train=source(train, cache, protocol.augmentation),
            val=source(val, cache, "none"),
            test=None if test is None else source(test, None, "none"),
        )


def _count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _sequential_view(stages: Stages, strategy: FineTuneStrategy) -> Stages | None:
    """The stages to run a model by, or ``None`` (run it whole) if the strategy changes it."""
    return None if strategy.modifies_model else (stages or None)


def _place_template(setting: _Setting) -> Normalize:
    """Move the template to the device, in eval mode; return the normalisation there."""
    backbone, placement = setting.backbone, setting.placement
    backbone.model.to(device=placement.device, memory_format=placement.memory_format).eval()
    return Normalize(backbone.mean, backbone.std).to(placement.device)


def _prepare_models(setting: _Setting) -> list[_PreparedModel]:
    """Per seed: copy the template, seed and reset its head, start the strategy on it."""
    backbone, placement = setting.backbone, setting.placement
    prepared = []
    for seed in setting.protocol.seeds:
        model, stages = copy.deepcopy((backbone.model, list(backbone.layout.stages or [])))
        torch.manual_seed(seed)
        backbone.reset_head(model)
        strategy_run = setting.strategy.start(model, backbone, setting.protocol)
        model.to(device=placement.device, memory_format=placement.memory_format)
        prepared.append(_PreparedModel(seed, model, stages, strategy_run))
    return prepared


def _frozen_prefix(model: nn.Module, setting: _Setting) -> int:
    """How many leading blocks train nothing: the frozen prefix, whose output can be cached.

    A strategy that changes the model's modules, or what trains between epochs, has none (0).
    """
    strategy = setting.strategy
    if strategy.modifies_model or strategy.changes_trainable:
        return 0
    trained = trained_blocks(model, setting.backbone.layout)
    return next((i for i, t in enumerate(trained) if t), len(trained))


def _start_runs(
    prepared: list[_PreparedModel],
    setting: _Setting,
    prefix_blocks: int,
    normalize: nn.Module,
    eval_mask: tuple[bool, ...],
) -> list[_Run]:
    """A run per prepared model: its optimizer, schedule and pipeline."""
    runs = []
    for item in prepared:
        optimizer = build_optimizer(item.strategy_run.groups, setting.protocol)
        scheduler = build_scheduler(optimizer, setting.protocol)
        stages = _sequential_view(item.stages, setting.strategy)
        pipeline = Pipeline(stages, item.model, prefix_blocks, normalize)
        result = SeedResult(seed=item.seed)
        runs.append(
            _Run(result, item.model, pipeline, optimizer, scheduler, item.strategy_run, eval_mask)
        )
    return runs


def _train_in_lockstep(
    runs: list[_Run],
    sources: _Sources,
    setting: _Setting,
    report: Callable[[int, float], None] | None,
    keep_best: bool,
    slot: EvaluationCheckpoint | None = None,
    resumed: int = 0,
) -> int:
    """Train the runs epoch by epoch, each until it stops early; report the running fitness.

    Args:
        runs: The runs, as after epoch ``resumed``.
        sources: Their batches.
        setting: What they share.
        report: Called with ``(epoch, running fitness)`` after each epoch (also again for the
            epochs of a checkpoint, first).
        keep_best: Keep each run's best epoch's weights.
        slot: Where to save the runs after each epoch but the last (``None``: nowhere).
        resumed: The epoch the runs were restored after (0: they start afresh).

    Returns:
        The most parameter elements any run trained in an epoch.
    """
    layout, protocol = setting.backbone.layout, setting.protocol
    if report is not None and slot is not None:
        for epoch, fitness in enumerate(slot.reported[:resumed], start=1):
            report(epoch, fitness)
    trainable = 0
    for epoch in range(resumed + 1, protocol.max_epochs + 1):
        if all(run.stopped for run in runs):
            break
        for run in runs:
            if run.stopped:
                continue
            _train_epoch(run, sources.train, setting, epoch)
            trainable = max(trainable, _count_trainable(run.model))
            set_train_mode(run.model, layout, run.eval_mask, training=False)
            macro, top1 = _score(run.pipeline, sources.val, setting)
            run.record(epoch, macro, top1, patience=protocol.patience, keep_best=keep_best)
        fitness = float(np.mean([r.result.macro_accuracy for r in runs]))
        finished = epoch == protocol.max_epochs or all(run.stopped for run in runs)
        if slot is not None and not finished:
            slot.save(runs, epoch, fitness)  # before the report, which may never return
        if report is not None:
            report(epoch, fitness)
    return trainable


def _finish(
    runs: list[_Run], test: Features | None, setting: _Setting, *, keep_models: bool
) -> list[nn.Module]:
    """Restore each run's best weights, score them on ``test``; the models if ``keep_models``."""
    models = []
    for run in runs:
        if run.best_state is not None:
            run.model.load_state_dict(run.best_state)
            run.best_state = None
        set_train_mode(run.model, setting.backbone.layout, run.eval_mask, training=False)
        if test is not None:
            macro, top1 = _score(run.pipeline, test, setting)
            run.result.test_macro_accuracy, run.result.test_top1_accuracy = macro, top1
        if keep_models:
            models.append(run.model)
    return models


def _evaluation(
    runs: list[_Run],
    first: nn.Module,
    layout: BlockLayout,
    *,
    trainable: int,
    total: int,
    models: list[nn.Module],
    feature_cache: str,
    start: float,
    resumed_epoch: int = 0,
) -> PlanEvaluation:
    """The runs' results summed up, with the blocks ``first`` (the first seed's model) froze.

    Args:
        runs: The finished runs.
        first: The first seed's model, whose blocks without a trained parameter are reported.
        layout: The backbone's blocks.
        trainable: The most parameter elements trained in an epoch.
        total: The parameter elements of the model.
        models: The trained models to return.
        feature_cache: What the feature cache did for the train split.
        start: When the evaluation began (``time.perf_counter()``).
        resumed_epoch: The epoch a checkpoint let it continue after (0: none).
    """
    results = [run.result for run in runs]
    trained = trained_blocks(first, layout)
    return PlanEvaluation(
        fitness=float(np.mean([r.macro_accuracy for r in results])),
        top1_accuracy=float(np.mean([r.top1_accuracy for r in results])),
        runs=results,
        trainable_parameters=trainable,
        total_parameters=total,
        seconds=time.perf_counter() - start,
        feature_cache=feature_cache,
        models=models,
        frozen_blocks=tuple(b for b, t in zip(layout.names, trained) if not t),
        resumed_epoch=resumed_epoch,
    )


def _score(pipeline: Pipeline, source: Features, setting: _Setting) -> tuple[float, float]:
    """Macro and top-1 accuracy of the model on a split (the model in eval mode)."""
    predictions = []
    with torch.no_grad():
        for inputs, _ in source.batches(setting.protocol.eval_batch_size):
            with setting.placement.autocast():
                output = pipeline.run_suffix(inputs)
            predictions.append(getattr(output, "logits", output).argmax(1))
    predicted = torch.cat(predictions)
    labels = source.labels
    top1 = float((predicted == labels).double().mean())
    return macro_accuracy(predicted, labels, setting.num_classes), top1


def _epoch_seed(run: _Run, epoch: int) -> int:
    return run.result.seed * 100_003 + epoch


def _train_epoch(run: _Run, source: Features, setting: _Setting, epoch: int) -> None:
    """One epoch of one run: the strategy's epoch change, then a pass over shuffled batches.

    Raises:
        FloatingPointError: If the training loss was not finite in the epoch.
    """
    protocol, placement = setting.protocol, setting.placement
    seed = _epoch_seed(run, epoch)
    set_train_mode(run.model, setting.backbone.layout, run.eval_mask, training=True)

    def loss_of(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with placement.autocast():
            output = run.pipeline.run_suffix(inputs)
        return classification_loss(output, labels)

    def first_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The batches this epoch will see first: the same shuffle as the epoch's own.
        return source.batches(protocol.batch_size, torch.Generator().manual_seed(seed))

    change = run.strategy_run.begin_epoch(epoch, first_batches, loss_of)
    if change is not None:
        _change_course(run, change, setting)
    torch.manual_seed(seed)  # dropout and friends: repeatable per run
    generator = torch.Generator().manual_seed(seed)
    # Summed on the device and checked once per epoch: a per-step check would make every CUDA
    # step wait for the GPU. A NaN or inf anywhere in the epoch makes the sum non-finite.
    total = torch.zeros((), device=placement.device)
    for inputs, labels in source.batches(protocol.batch_size, generator):
        loss = loss_of(inputs, labels)
        penalty = run.strategy_run.penalty()
        if penalty is not None:
            loss = loss + penalty
        total += loss.detach()
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite training loss ({total.item()}) in epoch {epoch}")
    run.scheduler.step()


def _change_course(run: _Run, change: EpochChange, setting: _Setting) -> None:
    """Apply a strategy's epoch change: a new optimizer and schedule, maybe a patience restart."""
    layout = setting.backbone.layout
    run.optimizer = build_optimizer(change.groups, setting.protocol)
    run.scheduler = build_scheduler(run.optimizer, setting.protocol)
    if change.restart:
        run.stale = 0
    run.eval_mask = eval_mode_mask(run.model, layout)
    set_train_mode(run.model, layout, run.eval_mask, training=True)
