"""Training-time augmentation of image batches: random flips, and random crops with flips.

The paper trains without augmentation (arXiv:2508.15367, §III), the protocol's default
``"none"``; ``"flip"`` and ``"crop_flip"`` are options. Every random draw comes from the
generator given, seeded per run and epoch, so runs repeat exactly. Augmented images differ from
epoch to epoch, so a run that augments never uses the frozen-prefix feature cache.
"""

from __future__ import annotations

import torch
from torch import nn


__all__ = ["augment"]


def augment(images: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Random flips (and crops) of a batch, drawn from ``generator`` so runs repeat exactly.

    Args:
        images: A batch, shape ``(n, channels, height, width)``.
        kind: ``"none"`` (the batch as given), ``"flip"`` (each image flipped left-right with
            probability 1/2) or ``"crop_flip"`` (each image cropped back to its size from a
            reflection-padded copy, padded by an eighth of each side, then flipped as ``"flip"``).
        generator: The source of every random draw.

    Returns:
        The augmented batch, the shape of ``images``.
    """
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
