"""Training-time augmentation: repeatable from its generator, flips and crops as named."""

from __future__ import annotations

import torch

from biotune_optuna.finetune._augmentation import augment


def test_augmentation_is_repeatable() -> None:
    images = torch.rand(8, 3, 16, 16)
    a = augment(images, "crop_flip", torch.Generator().manual_seed(3))
    b = augment(images, "crop_flip", torch.Generator().manual_seed(3))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, images)
    flipped = augment(images, "flip", torch.Generator().manual_seed(0))
    assert all(torch.equal(f, x) or torch.equal(f, x.flip(-1)) for f, x in zip(flipped, images))
