"""Selection: parents drawn from the mating pool by linear rank (arXiv:2508.15367, §III)."""

from __future__ import annotations

import abc

import numpy as np


class BaseSelection(abc.ABC):
    """Chooses members of a mating pool sorted best first."""

    @abc.abstractmethod
    def select(self, pool_size: int, n_select: int, rng: np.random.Generator) -> list[int]:
        """Draw ``n_select`` distinct ranks (0 = best) from a pool of ``pool_size`` members."""
        raise NotImplementedError


class LinearRankSelection(BaseSelection):
    """Linear rank selection of BioTune (Colan et al., arXiv:2508.15367, §III).

    A pool of ``n`` members sorted best first (rank ``k = 0`` is the best) gets the weights
    ``n + 2`` for ``k = 0``, ``n + 1 - k`` for ``1 <= k <= n - 2`` and ``1`` for ``k = n - 1``,
    normalised by their sum ``n (n + 3) / 2``; for ``n = 10``: ``12, 10, 9, ..., 3, 1`` over 65.
    Several members are drawn one after another without replacement, the weights of those left
    renormalised after each draw.
    """

    @staticmethod
    def weights(pool_size: int) -> np.ndarray:
        """Return the normalised selection probability of each rank of a pool of ``pool_size``."""
        if pool_size < 1:
            raise ValueError("`pool_size` must be at least 1.")
        if pool_size == 1:
            return np.ones(1)
        n = pool_size
        w = np.empty(n)
        w[0] = n + 2
        w[1 : n - 1] = n + 1 - np.arange(1, n - 1)
        w[n - 1] = 1
        return w / w.sum()

    def select(self, pool_size: int, n_select: int, rng: np.random.Generator) -> list[int]:
        if n_select > pool_size:
            raise ValueError(f"Cannot draw {n_select} distinct members of a pool of {pool_size}.")
        w = self.weights(pool_size).copy()
        chosen: list[int] = []
        for u in rng.random(n_select):
            cumulative = np.cumsum(w)
            k = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
            k = min(k, pool_size - 1)
            chosen.append(k)
            w[k] = 0.0
        return chosen

    def __repr__(self) -> str:
        return "LinearRankSelection()"
