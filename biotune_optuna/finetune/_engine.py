"""Training and scoring one fine-tuning plan under the paper's protocol (arXiv:2508.15367, §III).

One evaluation trains ``n_seeds`` fresh copies of the pretrained model (each with a newly
initialised head) on the same data, in lockstep epoch by epoch, with early stopping per seed. Its
fitness is the mean over seeds of the best validation **macro** accuracy (mean per-class recall).
After every epoch the running fitness is reported, so Optuna's pruners can stop a bad plan early.

Speed: leading frozen blocks run without autograd, in eval mode; when the backbone has a
sequential view their output is computed once per data fold and kept in a bounded
:class:`~biotune_optuna.finetune.FeatureCache`, so later epochs, seeds and trials with the same
frozen prefix run only the trainable suffix. On CUDA: bf16 autocast, channels_last, pinned memory.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterator
import copy
import dataclasses
import math
import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset
from torch.utils.data import Subset

from biotune_optuna.finetune._apply import set_train_mode
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._blocks import BlockLayout
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._data import TensorImages
from biotune_optuna.finetune.strategies import FineTuneStrategy
from biotune_optuna.finetune.strategies import PlanStrategy
from biotune_optuna.finetune.strategies import StrategyRun
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.protocol import TrainingProtocol


__all__ = [
    "DataSplit",
    "PlanEvaluation",
    "SeedResult",
    "TrainingProtocol",
    "describe_device",
    "evaluate_plan",
    "evaluate_strategy",
    "macro_accuracy",
    "resolve_device",
]


def augment(images: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Random flips (and crops) of a batch, drawn from ``generator`` so runs repeat exactly."""
    if kind == "none":
        return images
    n, _, height, width = images.shape
    if kind == "crop_flip":
        pad_h, pad_w = max(height // 8, 1), max(width // 8, 1)
        padded = nn.functional.pad(images, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
        top = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator).tolist()
        left = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator).tolist()
        images = torch.stack(
            [p[:, t : t + height, s : s + width] for p, t, s in zip(padded, top, left)]
        )
    flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """A part of a dataset: the examples at ``indices``.

    Attributes:
        dataset: The dataset.
        indices: Positions in ``dataset``.
        labels: Their labels, aligned with ``indices``.
        key: Identifies the part for the feature cache (``None``: never cached).
    """

    dataset: Dataset
    indices: np.ndarray
    labels: np.ndarray
    key: Hashable | None = None

    def __len__(self) -> int:
        return len(self.indices)


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

    @property
    def trainable_fraction(self) -> float:
        """Share of the parameters that the plan trains."""
        return self.trainable_parameters / max(self.total_parameters, 1)

    @property
    def epochs(self) -> list[int]:
        """Epochs run per seed."""
        return [run.epochs for run in self.runs]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA if available, else the CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but CUDA is not available")
    return device


def describe_device(name: str) -> str:
    """Where a protocol's ``device`` trains here, in one line for a trial's ``device`` attr.

    ``"cpu (8 threads)"``, or the CUDA device with its model and, when set, the
    ``CUDA_VISIBLE_DEVICES`` that pinned this worker to a physical GPU, e.g.
    ``"cuda:0 NVIDIA H200 (CUDA_VISIBLE_DEVICES=3)"``. A device that is not available is
    described as asked for, with the reason.
    """
    try:
        device = resolve_device(name)
    except RuntimeError as exc:
        return f"{name} ({exc})"
    if device.type != "cuda":
        return f"{device.type} ({torch.get_num_threads()} threads)"
    index = torch.cuda.current_device() if device.index is None else device.index
    label = f"cuda:{index} {torch.cuda.get_device_name(index)}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{label} (CUDA_VISIBLE_DEVICES={visible})" if visible else label


def macro_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean per-class recall over the classes present in ``labels`` (balanced accuracy)."""
    labels = labels.long().cpu()
    predictions = predictions.long().cpu()
    support = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    present = support > 0
    return float((hits[present] / support[present]).mean()) if present.any() else 0.0


class _Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclasses.dataclass
class _Context:
    device: torch.device
    amp: bool
    channels_last: bool
    protocol: TrainingProtocol
    num_classes: int

    def autocast(self) -> Any:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _image_batches(
    split: DataSplit,
    batch_size: int,
    ctx: _Context,
    *,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``(images, labels)`` on the device, shuffled if a generator is given."""
    order = torch.as_tensor(split.indices, dtype=torch.long)
    if generator is not None:
        order = order[torch.randperm(len(order), generator=generator)]
    if isinstance(split.dataset, TensorImages):
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            yield (
                ctx.to_device(split.dataset.images[chosen]),
                split.dataset.labels[chosen].to(ctx.device),
            )
        return
    loader = DataLoader(
        Subset(split.dataset, order.tolist()),
        batch_size=batch_size,
        shuffle=False,
        num_workers=ctx.protocol.num_workers,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=False,
    )
    for images, labels in loader:
        yield ctx.to_device(images), torch.as_tensor(labels).to(ctx.device)


class _Pipeline:
    """The model as ``normalise → frozen prefix → trainable suffix`` for one plan."""

    def __init__(
        self,
        stages: list[tuple[int, nn.Module]] | None,
        model: nn.Module,
        prefix_blocks: int,
        normalize: nn.Module,
    ) -> None:
        self.normalize = normalize
        if stages is None or prefix_blocks == 0:
            self.prefix: list[nn.Module] = []
            self.suffix: list[nn.Module] = [model]
        else:
            self.prefix = [m for b, m in stages if b < prefix_blocks]
            self.suffix = [m for b, m in stages if b >= prefix_blocks]

    def run_prefix(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = self.normalize(x)
            for module in self.prefix:
                x = module(x)
        return x

    def run_suffix(self, x: torch.Tensor) -> Any:
        for module in self.suffix:
            x = module(x)
        return x


def _loss(output: Any, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; Inception's auxiliary logits add 0.4× their loss (torchvision's recipe)."""
    aux = getattr(output, "aux_logits", None)
    logits = getattr(output, "logits", output)
    loss = nn.functional.cross_entropy(logits.float(), labels)
    if aux is not None:
        loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), labels)
    return loss


class _Features:
    """Where a run's batches come from: cached prefix features, or images through the prefix."""

    def __init__(
        self,
        split: DataSplit,
        pipeline: _Pipeline,
        ctx: _Context,
        cache: FeatureCache | None,
        prefix_blocks: int,
        augmentation: str = "none",
    ) -> None:
        self.split = split
        self.pipeline = pipeline
        self.ctx = ctx
        self.features: torch.Tensor | None = None
        self.labels = torch.as_tensor(split.labels, dtype=torch.long).to(ctx.device)
        self.status = "none"
        self.augmentation = augmentation
        if ctx.device.type == "cuda" and isinstance(split.dataset, TensorImages):
            images = split.dataset.images
            if not images.is_pinned():  # asynchronous host-to-device copies
                split.dataset.images = images.pin_memory()
        if not pipeline.prefix or cache is None or split.key is None or augmentation != "none":
            return
        key = (split.key, prefix_blocks, ctx.device.type, ctx.amp)
        self.features = cache.get(key)
        if self.features is not None:
            self.status = "hit"
            return
        self.features = self._extract(cache)
        if self.features is not None and cache.put(key, self.features):
            self.status = "stored"
        else:
            self.features, self.status = None, "refused"

    def _extract(self, cache: FeatureCache) -> torch.Tensor | None:
        store: torch.Tensor | None = None
        position = 0
        for images, _ in _image_batches(self.split, self.ctx.protocol.eval_batch_size, self.ctx):
            with self.ctx.autocast():
                out = self.pipeline.run_prefix(images)
            if store is None:
                shape = (len(self.split), *out.shape[1:])
                if not cache.reserve(math.prod(shape) * out.element_size()):
                    return None
                store = torch.empty(shape, dtype=out.dtype, device=self.ctx.device)
            store[position : position + len(out)] = out
            position += len(out)
        return store

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.features is None:
            for images, labels in _image_batches(
                self.split, batch_size, self.ctx, generator=generator
            ):
                if generator is not None:
                    images = augment(images, self.augmentation, generator)
                with self.ctx.autocast():
                    yield self.pipeline.run_prefix(images), labels
            return
        n = len(self.split)
        order = (
            torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        ).to(self.ctx.device)
        for start in range(0, n, batch_size):
            chosen = order[start : start + batch_size]
            yield self.ctx.to_device(self.features[chosen]), self.labels[chosen]


@dataclasses.dataclass
class _Run:
    result: SeedResult
    model: nn.Module
    pipeline: _Pipeline
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    strategy: StrategyRun
    eval_mask: tuple[bool, ...]
    stale: int = 0
    stopped: bool = False
    best_state: dict[str, torch.Tensor] | None = None


def _optimizer(groups: list[dict[str, Any]], protocol: TrainingProtocol) -> torch.optim.Optimizer:
    if protocol.optimizer == "adam":
        return torch.optim.Adam(groups, lr=protocol.base_lr, weight_decay=protocol.weight_decay)
    if protocol.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=protocol.base_lr, weight_decay=protocol.weight_decay)
    return torch.optim.SGD(
        groups, lr=protocol.base_lr, momentum=0.9, weight_decay=protocol.weight_decay
    )


def _evaluate(pipeline: _Pipeline, source: _Features, ctx: _Context) -> tuple[float, float]:
    predictions = []
    with torch.no_grad():
        for inputs, _ in source.batches(ctx.protocol.eval_batch_size):
            with ctx.autocast():
                output = pipeline.run_suffix(inputs)
            predictions.append(getattr(output, "logits", output).argmax(1))
    predicted = torch.cat(predictions)
    labels = source.labels
    top1 = float((predicted == labels).double().mean())
    return macro_accuracy(predicted, labels, ctx.num_classes), top1


def evaluate_plan(
    backbone: Backbone,
    plan: FineTunePlan,
    train: DataSplit,
    val: DataSplit,
    protocol: TrainingProtocol,
    *,
    num_classes: int,
    test: DataSplit | None = None,
    cache: FeatureCache | None = None,
    report: Callable[[int, float], None] | None = None,
    keep_models: bool = False,
) -> PlanEvaluation:
    """Train ``plan`` on ``train`` for each seed and score it on ``val``.

    Args:
        backbone: The pretrained backbone (its model is copied, never changed).
        plan: The plan to apply.
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

    Returns:
        The :class:`PlanEvaluation`. An empty plan scores 0 at once, without training.
    """
    strategy = PlanStrategy(
        plan, always_train_head=protocol.always_train_head, mask_only=protocol.mask_only
    )
    return evaluate_strategy(
        backbone,
        strategy,
        train,
        val,
        protocol,
        num_classes=num_classes,
        test=test,
        cache=cache,
        report=report,
        keep_models=keep_models,
    )


def _eval_mask(model: nn.Module, layout: BlockLayout) -> tuple[bool, ...]:
    """Blocks that hold a frozen parameter: they stay in eval mode (BatchNorm statistics)."""
    return tuple(
        any(not p.requires_grad for p in layout.parameters(model, i)) for i in range(len(layout))
    )


def _count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def evaluate_strategy(
    backbone: Backbone,
    strategy: FineTuneStrategy,
    train: DataSplit,
    val: DataSplit,
    protocol: TrainingProtocol,
    *,
    num_classes: int,
    test: DataSplit | None = None,
    cache: FeatureCache | None = None,
    report: Callable[[int, float], None] | None = None,
    keep_models: bool = False,
) -> PlanEvaluation:
    """Train with a fine-tuning ``strategy`` for each seed and score it on ``val``.

    The protocol, data, seeds, early stopping and metric are those of :func:`evaluate_plan`
    (which is this function with BioTune's plan as the strategy); see it for the arguments.

    Returns:
        The :class:`PlanEvaluation`; ``trainable_parameters`` counts every parameter element
        the strategy trains in some epoch. A strategy that trains nothing scores 0 at once.
    """
    start = time.perf_counter()
    layout = backbone.layout
    template = backbone.model
    total = sum(p.numel() for p in template.parameters())

    device = resolve_device(protocol.device)
    cuda = device.type == "cuda"
    ctx = _Context(
        device=device,
        amp=protocol.amp and cuda,
        channels_last=protocol.channels_last and cuda,
        protocol=protocol,
        num_classes=num_classes,
    )
    memory_format = torch.channels_last if ctx.channels_last else torch.preserve_format
    template.to(device=device, memory_format=memory_format).eval()
    normalize = _Normalize(backbone.mean, backbone.std).to(device)

    prepared = []
    for seed in protocol.seeds:
        model, stages = copy.deepcopy((template, list(layout.stages or [])))
        torch.manual_seed(seed)
        backbone.reset_head(model)
        state = strategy.start(model, backbone, protocol)
        model.to(device=device, memory_format=memory_format)
        prepared.append((seed, model, stages, state))
    first = prepared[0][1]
    trainable = _count_trainable(first)
    if trainable == 0:
        return PlanEvaluation(
            0.0, 0.0, [], 0, total, time.perf_counter() - start, frozen_blocks=layout.names
        )

    mask = _eval_mask(first, layout)
    prefix_blocks = 0
    if not (strategy.modifies_model or strategy.changes_trainable):
        for i in range(len(layout)):
            if any(p.requires_grad for p in layout.parameters(first, i)):
                break
            prefix_blocks += 1
    sequential = None if strategy.modifies_model else (list(layout.stages or []) or None)
    shared = _Pipeline(sequential, template, prefix_blocks, normalize)
    train_source = _Features(train, shared, ctx, cache, prefix_blocks, protocol.augmentation)
    val_source = _Features(val, shared, ctx, cache, prefix_blocks)
    test_source = None if test is None else _Features(test, shared, ctx, None, prefix_blocks)

    runs: list[_Run] = []
    for seed, model, stages, state in prepared:
        optimizer = _optimizer(state.groups, protocol)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=protocol.t_max)
        stages = None if strategy.modifies_model else (stages or None)
        pipeline = _Pipeline(stages, model, prefix_blocks, normalize)
        runs.append(
            _Run(SeedResult(seed=seed), model, pipeline, optimizer, scheduler, state, mask)
        )

    for epoch in range(1, protocol.max_epochs + 1):
        for run in runs:
            if run.stopped:
                continue
            _train_epoch(run, train_source, ctx, layout, epoch)
            trainable = max(trainable, _count_trainable(run.model))
            set_train_mode(run.model, layout, run.eval_mask, training=False)
            macro, top1 = _evaluate(run.pipeline, val_source, ctx)
            result = run.result
            result.epochs = epoch
            result.history.append(macro)
            if macro > result.macro_accuracy or result.best_epoch == 0:
                result.macro_accuracy, result.top1_accuracy = macro, top1
                result.best_epoch, run.stale = epoch, 0
                if test is not None or keep_models:
                    run.best_state = copy.deepcopy(run.model.state_dict())
            else:
                run.stale += 1
                run.stopped = run.stale >= protocol.patience
        if report is not None:
            report(epoch, float(np.mean([r.result.macro_accuracy for r in runs])))
        if all(run.stopped for run in runs):
            break

    models = []
    for run in runs:
        if run.best_state is not None:
            run.model.load_state_dict(run.best_state)
            run.best_state = None
        set_train_mode(run.model, layout, run.eval_mask, training=False)
        if test_source is not None:
            macro, top1 = _evaluate(run.pipeline, test_source, ctx)
            run.result.test_macro_accuracy, run.result.test_top1_accuracy = macro, top1
        if keep_models:
            models.append(run.model)
    results = [run.result for run in runs]
    trained = [
        any(p.requires_grad for p in layout.parameters(first, i)) for i in range(len(layout))
    ]
    return PlanEvaluation(
        fitness=float(np.mean([r.macro_accuracy for r in results])),
        top1_accuracy=float(np.mean([r.top1_accuracy for r in results])),
        runs=results,
        trainable_parameters=trainable,
        total_parameters=total,
        seconds=time.perf_counter() - start,
        feature_cache=train_source.status,
        models=models,
        frozen_blocks=tuple(b for b, t in zip(layout.names, trained) if not t),
    )


def _epoch_seed(run: _Run, epoch: int) -> int:
    return run.result.seed * 100_003 + epoch


def _train_epoch(
    run: _Run, source: _Features, ctx: _Context, layout: BlockLayout, epoch: int
) -> None:
    seed = _epoch_seed(run, epoch)
    set_train_mode(run.model, layout, run.eval_mask, training=True)

    def loss_of(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with ctx.autocast():
            output = run.pipeline.run_suffix(inputs)
        return _loss(output, labels)

    def first_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # The batches this epoch will see first: the same shuffle as the epoch's own.
        return source.batches(ctx.protocol.batch_size, torch.Generator().manual_seed(seed))

    change = run.strategy.begin_epoch(epoch, first_batches, loss_of)
    if change is not None:
        run.optimizer = _optimizer(change.groups, ctx.protocol)
        run.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            run.optimizer, T_max=ctx.protocol.t_max
        )
        if change.restart:
            run.stale = 0
        run.eval_mask = _eval_mask(run.model, layout)
        set_train_mode(run.model, layout, run.eval_mask, training=True)
    torch.manual_seed(seed)  # dropout and friends: repeatable per run
    generator = torch.Generator().manual_seed(seed)
    # Summed on the device and checked once per epoch: a per-step check would make every CUDA
    # step wait for the GPU. A NaN or inf anywhere in the epoch makes the sum non-finite.
    total = torch.zeros((), device=ctx.device)
    for inputs, labels in source.batches(ctx.protocol.batch_size, generator):
        loss = loss_of(inputs, labels)
        penalty = run.strategy.penalty()
        if penalty is not None:
            loss = loss + penalty
        total += loss.detach()
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite training loss ({total.item()}) in epoch {epoch}")
    run.scheduler.step()
