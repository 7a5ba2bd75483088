"""The paper's metric: macro accuracy is the mean per-class recall."""

from __future__ import annotations

import pytest
import torch

from biotune_optuna.finetune._metrics import macro_accuracy


def test_macro_accuracy_is_mean_per_class_recall() -> None:
    labels = torch.tensor([0] * 8 + [1] * 2)
    predictions = torch.zeros(10, dtype=torch.long)  # always class 0: top-1 0.8
    assert macro_accuracy(predictions, labels, 3) == pytest.approx(0.5)
    assert macro_accuracy(labels, labels, 3) == 1.0
