"""The paper's metric: macro accuracy, the mean per-class recall (arXiv:2508.15367, §III).

A plan's fitness is the mean over seeds of the best validation macro accuracy, so classes count
alike however unbalanced the data. Top-1 accuracy is recorded beside it.
"""

from __future__ import annotations

import torch


__all__ = ["macro_accuracy"]


def macro_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean per-class recall over the classes present in ``labels`` (balanced accuracy)."""
    labels = labels.long().cpu()
    predictions = predictions.long().cpu()
    support = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    present = support > 0
    return float((hits[present] / support[present]).mean()) if present.any() else 0.0
