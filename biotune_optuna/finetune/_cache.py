"""A memory-bounded cache of frozen-prefix features.

When a plan freezes the leading blocks of a backbone and nothing random happens before the first
trained block (frozen blocks in eval mode, no augmentation), those blocks map each image to the
same features in every epoch, every seed and every trial with the same frozen prefix. The engine
computes them once per data fold and prefix length and keeps them here; later epochs run only the
trainable suffix. The least recently used entries are evicted to stay within ``max_bytes``; a
prefix whose features would not fit is not cached (the engine then runs it without autograd
every time).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import torch


__all__ = ["FeatureCache"]


class FeatureCache:
    """Least-recently-used store of feature tensors under a byte budget.

    Args:
        max_bytes: The budget; 0 disables caching.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.refused = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return sum(t.element_size() * t.nelement() for t in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> torch.Tensor | None:
        """The tensor stored under ``key`` (marked as recently used), or ``None``."""
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` can be stored at all (after evicting everything)."""
        return 0 < nbytes <= self.max_bytes

    def reserve(self, nbytes: int) -> bool:
        """Evict old entries until ``nbytes`` more fit; ``False`` if they never can."""
        if not self.fits(nbytes):
            self.refused += 1
            return False
        while self._entries and self.nbytes + nbytes > self.max_bytes:
            self._entries.popitem(last=False)
        return True

    def put(self, key: Hashable, value: torch.Tensor) -> bool:
        """Store ``value`` under ``key``; ``False`` (nothing stored) if it exceeds the budget."""
        self._entries.pop(key, None)
        if not self.reserve(value.element_size() * value.nelement()):
            return False
        self._entries[key] = value
        return True

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
