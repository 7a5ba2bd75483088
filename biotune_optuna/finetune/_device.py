"""Where an evaluation trains: the device, and how tensors are placed on it.

``"auto"`` picks CUDA when there is one. On CUDA the engine trains under bf16 autocast with
channels-last images and pinned host memory (when the protocol asks for them); on the CPU in
float32. :class:`Placement` carries those choices for one evaluation.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from biotune_optuna.finetune._protocol import TrainingProtocol


__all__ = ["Placement", "describe_device", "resolve_device"]


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


@dataclasses.dataclass(frozen=True)
class Placement:
    """The device an evaluation trains on, and its mixed precision and memory format.

    Attributes:
        device: The device.
        amp: Run forward passes under bf16 autocast (CUDA only).
        channels_last: Keep images and the model channels-last (CUDA only).
    """

    device: torch.device
    amp: bool
    channels_last: bool

    @classmethod
    def for_protocol(cls, protocol: TrainingProtocol) -> Placement:
        """The placement ``protocol`` asks for: bf16 and channels-last apply on CUDA only."""
        device = resolve_device(protocol.device)
        cuda = device.type == "cuda"
        return cls(
            device=device,
            amp=protocol.amp and cuda,
            channels_last=protocol.channels_last and cuda,
        )

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format models are moved to."""
        return torch.channels_last if self.channels_last else torch.preserve_format

    def autocast(self) -> Any:
        """The autocast context of forward passes (a no-op unless ``amp``)."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device (asynchronously), channels-last if it is a batch of images."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
