"""Where a run's batches come from: cached frozen-prefix features, or images through the prefix.

Leading frozen blocks run without autograd, in eval mode, so without augmentation they map each
image to the same features in every epoch, seed and trial with the same frozen prefix. When the
split has a cache key, the prefix's output is computed once and kept in the bounded
:class:`~biotune_optuna.finetune._cache.FeatureCache`; later epochs, seeds and trials run only the
trainable suffix. Otherwise images are loaded batch by batch (straight from a
:class:`~biotune_optuna.finetune._data.TensorImages`, through a ``DataLoader`` else), augmented
when training asks for it, and run through the prefix each time.
"""

from __future__ import annotations

from collections.abc import Iterator
import math

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Subset

from biotune_optuna.finetune._augmentation import augment
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._data import TensorImages
from biotune_optuna.finetune._device import Placement
from biotune_optuna.finetune._pipeline import Pipeline
from biotune_optuna.finetune._protocol import TrainingProtocol
from biotune_optuna.finetune._splits import DataSplit


__all__ = ["Features", "image_batches"]

#: A batch of inputs and their labels, both on the device.
Batch = tuple[torch.Tensor, torch.Tensor]


def image_batches(
    split: DataSplit,
    batch_size: int,
    placement: Placement,
    *,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> Iterator[Batch]:
    """Batches of ``(images, labels)`` on the device, shuffled if a generator is given.

    Args:
        split: The examples.
        batch_size: Examples per batch (the last batch may be smaller).
        placement: Where the batches go.
        num_workers: Worker processes of the ``DataLoader`` (not used for
            :class:`~biotune_optuna.finetune._data.TensorImages`, which are sliced directly).
        generator: Draws the shuffle; ``None`` keeps the split's order.
    """
    order = torch.as_tensor(split.indices, dtype=torch.long)
    if generator is not None:
        order = order[torch.randperm(len(order), generator=generator)]
    if isinstance(split.dataset, TensorImages):
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            yield (
                placement.to_device(split.dataset.images[chosen]),
                split.dataset.labels[chosen].to(placement.device),
            )
        return
    loader = DataLoader(
        Subset(split.dataset, order.tolist()),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=placement.device.type == "cuda",
        persistent_workers=False,
    )
    for images, labels in loader:
        yield placement.to_device(images), torch.as_tensor(labels).to(placement.device)


class Features:
    """Where a run's batches come from: cached prefix features, or images through the prefix.

    Args:
        split: The examples.
        pipeline: The model pipeline whose prefix makes the features.
        placement: Where they are computed.
        protocol: The training protocol (its ``eval_batch_size`` and ``num_workers``).
        cache: The feature cache (``None``: no caching).
        prefix_blocks: How many leading blocks are the frozen prefix (part of the cache key).
        augmentation: The augmentation of training batches (anything but ``"none"`` turns
            the cache off).

    Attributes:
        labels: The split's labels on the device.
        status: ``"hit"``, ``"stored"``, ``"refused"`` or ``"none"``: what the cache did.
    """

    def __init__(
        self,
        split: DataSplit,
        pipeline: Pipeline,
        placement: Placement,
        protocol: TrainingProtocol,
        cache: FeatureCache | None,
        prefix_blocks: int,
        augmentation: str = "none",
    ) -> None:
        self.split = split
        self.pipeline = pipeline
        self.placement = placement
        self.protocol = protocol
        self.features: torch.Tensor | None = None
        self.labels = torch.as_tensor(split.labels, dtype=torch.long).to(placement.device)
        self.status = "none"
        self.augmentation = augmentation
        if placement.device.type == "cuda" and isinstance(split.dataset, TensorImages):
            images = split.dataset.images
            if not images.is_pinned():  # asynchronous host-to-device copies
                split.dataset.images = images.pin_memory()
        if not pipeline.prefix or cache is None or split.key is None or augmentation != "none":
            return
        key = (split.key, prefix_blocks, placement.device.type, placement.amp)
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
        """The prefix's output for the whole split, or ``None`` if the cache cannot hold it."""
        store: torch.Tensor | None = None
        position = 0
        for images, _ in image_batches(
            self.split,
            self.protocol.eval_batch_size,
            self.placement,
            num_workers=self.protocol.num_workers,
        ):
            with self.placement.autocast():
                out = self.pipeline.run_prefix(images)
            if store is None:
                shape = (len(self.split), *out.shape[1:])
                if not cache.reserve(math.prod(shape) * out.element_size()):
                    return None
                store = torch.empty(shape, dtype=out.dtype, device=self.placement.device)
            store[position : position + len(out)] = out
            position += len(out)
        return store

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[Batch]:
        """Batches of ``(prefix output, labels)``; shuffled and augmented if given a generator."""
        if self.features is None:
            for images, labels in image_batches(
                self.split,
                batch_size,
                self.placement,
                num_workers=self.protocol.num_workers,
                generator=generator,
            ):
                if generator is not None:
                    images = augment(images, self.augmentation, generator)
                with self.placement.autocast():
                    yield self.pipeline.run_prefix(images), labels
            return
        n = len(self.split)
        order = (
            torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        ).to(self.placement.device)
        for start in range(0, n, batch_size):
            chosen = order[start : start + batch_size]
            yield self.placement.to_device(self.features[chosen]), self.labels[chosen]
