"""How one plan is trained and scored: the paper's protocol as data (imports without torch).

Kept apart from the engine so that study specs can be validated without importing torch.
"""

from __future__ import annotations

import dataclasses
import math
import re


__all__ = ["DEVICE_FORMS", "TrainingProtocol", "device_form_problem", "device_problem"]

_OPTIMIZERS = ("adam", "adamw", "sgd")
_AUGMENTATIONS = ("none", "flip", "crop_flip")
#: The device strings a protocol takes: the training devices in the form ``torch.device``
#: parses (a type, then optionally ``:<index>`` without leading zeros), plus ``"auto"``.
DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:<index>", "mps", "xpu", "xpu:<index>")
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:(0|[1-9][0-9]{0,3}))?")
#: Bounds of the float fields, (low, high, low excluded); every one must be finite (a NaN
#: weight decay trains NaN weights, a cache of 1e310 MB is an infinite number of bytes).
_FLOATS = {
    "base_lr": (0.0, math.inf, True),
    "weight_decay": (0.0, math.inf, False),
    "train_fraction": (0.0, 1.0, True),
    "feature_cache_mb": (0.0, float(2**40), False),
}


def device_form_problem(device: object) -> str | None:
    """Why ``device`` is not a device string of :data:`DEVICE_FORMS` (``None``: it is one).

    Only the form is checked, without torch (a spec is checked so); whether this machine has
    the device, :func:`device_problem`.
    """
    if isinstance(device, str) and _DEVICE.fullmatch(device):
        return None
    forms = ", ".join(repr(f) for f in DEVICE_FORMS)
    return f"must be {forms}, got {device!r}"


def device_problem(device: object) -> str | None:
    """Why ``device`` cannot train on this machine (``None``: it can).

    Its form first (:func:`device_form_problem`), then, for a device other than ``"auto"``
    and ``"cpu"``, torch says whether the backend is available and has a device of that
    index, so that a missing GPU is refused before a study is created rather than failing
    every trial. Torch is imported only for such a device.
    """
    problem = device_form_problem(device)
    if problem is not None or device in ("auto", "cpu"):
        return problem
    import torch

    assert isinstance(device, str)
    kind, _, index = device.partition(":")
    backend = getattr(torch, kind, None)
    available = getattr(backend, "is_available", None)
    if backend is None or available is None or not available():
        return f"{device!r} was asked for, but this machine has no {kind} device"
    count = getattr(backend, "device_count", lambda: 1)()
    if index and int(index) >= count:
        return (
            f"{device!r} was asked for, but this machine has {count} {kind} "
            f"device{'s' if count != 1 else ''} ({kind}:0 to {kind}:{count - 1})"
        )
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingProtocol:
    """How one plan is trained and scored. The defaults are the paper's (arXiv:2508.15367, §III).

    Attributes:
        base_lr: Base learning rate that the importance genes scale (paper: 1e-3).
        optimizer: ``"adam"`` (paper), ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        weight_decay: Weight decay of the optimizer (paper: 0).
        t_max: Period of the cosine learning-rate schedule, stepped once per epoch (paper: 100).
        max_epochs: Epochs at most per run (paper: 30).
        patience: Stop a run after this many epochs without a better validation accuracy
            (paper: 3).
        batch_size: Training batch size (paper: 96).
        eval_batch_size: Batch size for validation and feature extraction.
        image_size: Side of the square input images (paper: 224).
        n_seeds: Training runs per evaluation, averaged (paper: 3).
        seed: Seed of the first run; run ``i`` uses ``seed + i``.
        train_fraction: Fraction of the train and val splits one generation sees; the splits are
            cut into ``ceil(1 / train_fraction)`` stratified folds (paper: 0.5 → 2 folds).
        always_train_head: Train the last block even when the plan freezes it (paper: off).
        mask_only: Ablation of the authors' code: apply the mask, one learning rate for all.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
            (:data:`DEVICE_FORMS`); a device this machine lacks is refused before a study opens.
        amp: bf16 autocast on CUDA.
        channels_last: channels_last memory format on CUDA.
        num_workers: ``DataLoader`` workers for datasets not held in memory.
        feature_cache_mb: Memory budget of the frozen-prefix feature cache (0 disables it), at
            most ``2**40``.
        augmentation: Training-time augmentation: ``"none"`` (paper), ``"flip"`` (random
            horizontal flips) or ``"crop_flip"`` (random crops after 1/8 reflection padding, then
            flips). With augmentation the frozen prefix sees new inputs each epoch, so nothing
            is cached.
    """

    base_lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    t_max: int = 100
    max_epochs: int = 30
    patience: int = 3
    batch_size: int = 96
    eval_batch_size: int = 256
    image_size: int = 224
    n_seeds: int = 3
    seed: int = 0
    train_fraction: float = 0.5
    always_train_head: bool = False
    mask_only: bool = False
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    num_workers: int = 0
    feature_cache_mb: float = 2048.0
    augmentation: str = "none"

    def __post_init__(self) -> None:
        positive_ints = ("t_max", "max_epochs", "patience", "batch_size", "eval_batch_size")
        for name in (*positive_ints, "image_size", "n_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
                raise ValueError(f"protocol.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"protocol.seed must be an integer >= 0, got {self.seed!r}")
        for name, (low, high, above) in _FLOATS.items():
            value = getattr(self, name)
            if not (
                isinstance(value, int | float)
                and math.isfinite(value)
                and (value > low if above else value >= low)
                and value <= high
            ):
                bounds = (
                    f"{'(' if above else '['}{low:g}, {high:.13g}{']' if high < math.inf else ')'}"
                )
                raise ValueError(f"protocol.{name} must be finite, in {bounds}, got {value!r}")
        problem = device_form_problem(self.device)
        if problem is not None:
            raise ValueError(f"protocol.device {problem}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"protocol.optimizer must be one of {', '.join(_OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if self.augmentation not in _AUGMENTATIONS:
            raise ValueError(
                f"protocol.augmentation must be one of {', '.join(_AUGMENTATIONS)}, "
                f"got {self.augmentation!r}"
            )
        if isinstance(self.num_workers, bool) or not 0 <= self.num_workers <= 1024:
            raise ValueError(f"protocol.num_workers must be in [0, 1024], got {self.num_workers}")

    @property
    def seeds(self) -> list[int]:
        """The seeds of the ``n_seeds`` runs."""
        return [self.seed + i for i in range(self.n_seeds)]
