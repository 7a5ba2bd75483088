"""The model as the engine runs it: normalisation, a frozen prefix, a trainable suffix; its loss.

Images arrive in ``[0, 1]`` and are normalised on the device by the backbone's mean and std.
When the backbone has a sequential view of its blocks, the leading frozen blocks (the prefix)
run without autograd, in eval mode, and only the rest (the suffix) trains; otherwise the whole
model is the suffix. The loss is cross-entropy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


__all__ = ["Normalize", "Pipeline", "classification_loss"]


class Normalize(nn.Module):
    """``(x − mean) / std`` per channel.

    Args:
        mean: The per-channel mean.
        std: The per-channel standard deviation.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Pipeline:
    """The model as ``normalise → frozen prefix → trainable suffix`` for one plan.

    Args:
        stages: The model's sequential view, ``(block index, module)`` in order, or ``None``
            when it has none (then the whole model is the suffix).
        model: The model.
        prefix_blocks: How many leading blocks are the frozen prefix.
        normalize: The normalisation that comes first.
    """

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
        """Normalised images through the frozen prefix, without autograd."""
        with torch.no_grad():
            x = self.normalize(x)
            for module in self.prefix:
                x = module(x)
        return x

    def run_suffix(self, x: torch.Tensor) -> Any:
        """The prefix's output through the trainable suffix: the model's output."""
        for module in self.suffix:
            x = module(x)
        return x


def classification_loss(output: Any, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; Inception's auxiliary logits add 0.4× their loss (torchvision's recipe)."""
    aux = getattr(output, "aux_logits", None)
    logits = getattr(output, "logits", output)
    loss = nn.functional.cross_entropy(logits.float(), labels)
    if aux is not None:
        loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), labels)
    return loss
