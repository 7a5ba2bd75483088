"""Build a spec's objective: the fine-tuning objective (torch) or the synthetic landscape."""

from __future__ import annotations

from typing import Any

from biotune_optuna.finetune._protocol import device_problem
from biotune_optuna.studies._dashboard import save_plan_note
from biotune_optuna.studies._plan_table import TableError
from biotune_optuna.studies._replay import TableObjective
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from biotune_optuna.trials import StudyObjective


__all__ = ["build_objective", "describe_objective", "load_data"]


def describe_objective(spec: StudySpec) -> str:
    """The objective in a few words, e.g. ``efficientnet_lite0 -> digits @ 64 px, 2 epochs``."""
    if spec.table is not None:
        return f"plan table {spec.table.name} (recorded fine-tuning, replayed)"
    if spec.synthetic is not None:
        options = spec.synthetic
        epochs = f", {_count(options.epochs, 'epoch')}" if options.epochs > 1 else ""
        return f"synthetic landscape ({options.n_blocks} blocks, seed {options.seed}{epochs})"
    assert spec.model is not None and spec.data is not None
    p = spec.protocol
    limits = ", ".join(f"{split} ≤ {n}" for split, n in spec.data.limits.items())
    return (
        f"{spec.model.source} -> {spec.data.source}"
        + (f" ({limits})" if limits else "")
        + f" @ {p.image_size} px, ≤ {_count(p.max_epochs, 'epoch')} × {_count(p.n_seeds, 'seed')}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def load_data(spec: StudySpec) -> Any:
    """The spec's :class:`~biotune_optuna.finetune._data.ClassificationData` (never downloads
    unless ``[data] download = true``).

    Raises:
        SpecError: If the data cannot be loaded; names the ``[data]`` key at fault.
    """
    from biotune_optuna.finetune import digits
    from biotune_optuna.finetune._data import image_folder
    from biotune_optuna.finetune._data import torchvision_dataset
    from biotune_optuna.finetune._suite import suite_task

    data = spec.data
    assert data is not None
    common = {
        "image_size": spec.protocol.image_size,
        "val_fraction": data.val_fraction,
        "test_fraction": data.test_fraction,
        "seed": data.seed,
    }
    source = data.source
    try:
        if source == "digits":
            loaded = digits(**common)
        elif source == "folder":
            loaded = image_folder(data.root, **common)
        elif source.startswith("suite:"):
            loaded = suite_task(source.split(":", 1)[1], member=data.member, **common)
        else:
            name = source.split(":", 1)[1]
            loaded = torchvision_dataset(name, root=data.root, download=data.download, **common)
        return loaded.limit(
            max_train=data.max_train_images, max_val=data.max_val_images, seed=data.seed
        )
    except (ValueError, KeyError, OSError, RuntimeError, AttributeError) as exc:
        raise SpecError(f"{spec.source}: [data] source: {source!r}: {exc}") from None


def build_objective(spec: StudySpec) -> StudyObjective:
    """The spec's objective, ready for ``study.optimize``.

    Returns:
        A :class:`~biotune_optuna.finetune.FineTuneObjective` (``kind = "finetune"``) or a
        :class:`~biotune_optuna.studies._synthetic.SyntheticFineTuning`: both are a
        :class:`~biotune_optuna.trials.StudyObjective` (``blocks``, ``search_space``,
        ``on_epoch``).

    Raises:
        SpecError: If the device is not on this machine, or the model or the data cannot be
            loaded.
    """
    if spec.table is not None:
        try:
            return TableObjective(spec.table, fold_of_trial=spec.schedule.fold_of_trial)
        except TableError as exc:
            raise SpecError(f"{spec.source}: [objective] table: {exc}") from None
    if spec.synthetic is not None:
        options = spec.synthetic
        return SyntheticFineTuning(
            n_blocks=options.n_blocks, seed=options.seed, epochs=options.epochs
        )
    from biotune_optuna.finetune import FineTuneObjective
    from biotune_optuna.finetune import load_backbone

    problem = device_problem(spec.protocol.device)
    if problem is not None:
        raise SpecError(f"{spec.source}: [protocol] device: {problem}")
    data = load_data(spec)
    model = spec.model
    assert model is not None
    source = model.source
    try:
        backbone = load_backbone(
            source,
            num_classes=data.num_classes,
            weights=model.weights,
            blocks=model.blocks,
            head=model.head,
            state_dict=model.state_dict,
            mean=model.mean,
            std=model.std,
        )
    except (ValueError, KeyError, OSError, RuntimeError, AttributeError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the library wrote
        if message.startswith(("state_dict: ", "weights: ")):
            raise SpecError(f"{spec.source}: [model] {message}") from None
        raise SpecError(f"{spec.source}: [model] source: {source!r}: {message}") from None
    try:
        return FineTuneObjective(
            backbone,
            data,
            spec.protocol,
            fold_of_trial=spec.schedule.fold_of_trial,
            strategy=spec.strategy,
            strategy_options=spec.strategy_options,
            search=spec.strategy_search,
            on_plan=save_plan_note,
            checkpoints=_checkpoints(spec),
        )
    except ValueError as exc:  # e.g. a surgical block the model does not have
        key, _, problem = str(exc).partition(": ")
        section = "strategy" if key in spec.strategy_options else "model"
        raise SpecError(f"{spec.source}: [{section}] {key}: {problem}") from None


def _checkpoints(spec: StudySpec) -> Any:
    """The spec's training checkpoints (``[study] checkpoints``), or ``None``."""
    if spec.checkpoints is None:
        return None
    from biotune_optuna.finetune._checkpoints import TrainingCheckpoints

    return TrainingCheckpoints(spec.checkpoints, max_bytes=spec.checkpoint_mb * 2**20)
