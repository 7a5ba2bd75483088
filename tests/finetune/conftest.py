"""Shared fixtures of the engine tests: tiny models and data, nothing downloaded."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from biotune_optuna.finetune import digits
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._blocks import block_layout
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._data import TensorImages
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.plan import FineTunePlan


def tiny_cnn(num_classes: int = 10) -> nn.Sequential:
    """Four blocks: two conv+BN stages, a pooled projection, the head."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
        nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(1), nn.Linear(64, 32), nn.ReLU()),
        nn.Linear(32, num_classes),
    )


class _SlowHead(nn.Linear):
    """A linear head that takes ``seconds`` per batch: a trial as long as a GPU's, to kill."""

    seconds = 0.2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return super().forward(x)


def slow_tiny_cnn(num_classes: int = 10) -> nn.Sequential:
    """:func:`tiny_cnn` whose head waits 0.2 s per batch (a second or two per trial)."""
    model = tiny_cnn(num_classes)
    model[3] = _SlowHead(32, num_classes)
    return model


def tiny_backbone(num_classes: int = 10, seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    model = tiny_cnn(num_classes).eval()
    return Backbone(model=model, layout=block_layout(model), head=("3",), name="tiny")


@pytest.fixture(scope="session")
def small_digits() -> ClassificationData:
    """256 digits at 16 px for training, 128 for validation, 128 for test."""
    full = digits(image_size=16, seed=0)

    def cut(dataset: TensorImages, labels: np.ndarray, n: int) -> tuple[TensorImages, np.ndarray]:
        return TensorImages(dataset.images[:n], labels[:n]), labels[:n]

    train, train_labels = cut(full.train, full.train_labels, 256)
    val, val_labels = cut(full.val, full.val_labels, 128)
    test, test_labels = cut(full.test, full.test_labels, 128)
    return ClassificationData(
        train, val, test, train_labels, val_labels, test_labels, full.classes, "digits@16px"
    )


#: A fast protocol for the tiny model: two seeds of two epochs at 16 px.
TINY_PROTOCOL = TrainingProtocol(
    max_epochs=2, n_seeds=2, batch_size=32, image_size=16, base_lr=3e-3, patience=3
)


def whole_splits(
    data: ClassificationData, key: bool = True
) -> tuple[DataSplit, DataSplit, DataSplit]:
    """The whole train, val and test splits; with cache keys if ``key``."""

    def split(dataset, labels, name):  # type: ignore[no-untyped-def]
        return DataSplit(dataset, np.arange(len(labels)), labels, ("t", name) if key else None)

    assert data.test is not None and data.test_labels is not None
    return (
        split(data.train, data.train_labels, "train"),
        split(data.val, data.val_labels, "val"),
        split(data.test, data.test_labels, "test"),
    )


def tiny_plan(importances: tuple[float, ...], threshold: float = 0.5) -> FineTunePlan:
    """A plan for :func:`tiny_backbone`'s four blocks."""
    return FineTunePlan(("0", "1", "2", "3"), importances, threshold, base_lr=3e-3)
