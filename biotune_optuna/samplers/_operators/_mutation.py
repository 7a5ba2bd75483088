"""Mutation: a child perturbed by its parents' inherited extinction (arXiv:2508.15367, §III)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from biotune_optuna.samplers._space import Genes
    from biotune_optuna.samplers._space import GeneSpace
    from biotune_optuna.samplers._space import Rng


def extinction(regrets: np.ndarray) -> np.ndarray:
    """Extinction value of each member of a population sorted best first.

    BioTune (Colan et al., arXiv:2508.15367, §III) in its minimisation form: with ``f_i`` the
    regret (non-negative loss, 0 is ideal) of rank ``i`` among ``N`` members, ``f_min`` and
    ``f_max`` the best and worst,
    ``ext_i = (f_i + f_min * (i / (N - 1) - 1)) / f_max``: 0 for the best, 1 for the worst, all 0
    when ``f_max == f_min``.

    Args:
        regrets: Finite, non-negative regrets sorted ascending (best first).

    Returns:
        Extinction values in ``[0, 1]``.
    """
    f = np.asarray(regrets, dtype=float)
    n = len(f)
    if n < 2:
        return np.zeros(n)
    f_min, f_max = float(f.min()), float(f.max())
    if f_max <= 0.0 or f_max == f_min:
        return np.zeros(n)
    i = np.arange(n)
    return np.clip((f + f_min * (i / (n - 1) - 1.0)) / f_max, 0.0, 1.0)


class BaseMutation(abc.ABC):
    """Perturbs a child genotype, given the extinction ``e`` inherited from its parents."""

    @abc.abstractmethod
    def mutate(self, genes: Genes, extinction: float, rng: Rng, space: GeneSpace) -> Genes:
        """Return the mutated genotype (numerical genes in ``[0, 1]``)."""
        raise NotImplementedError


class ExtinctionMutation(BaseMutation):
    """Extinction-scaled mutation of BioTune (Colan et al., arXiv:2508.15367, §III).

    With ``e`` the mean extinction of the two parents and ``n_g`` genes, each gene mutates with
    probability ``(1 / n_g) * (e * (n_g - 1) + 1)`` by adding ``e * U(-1, 1)``, then is clipped
    to ``[0, 1]``. Children of good parents (``e`` near 0) barely move; children of the worst
    mutate every gene by up to ±1. A categorical gene mutates with probability
    ``probability * e`` to a uniformly drawn choice.
    """

    @staticmethod
    def probability(extinction: float, n_genes: int) -> float:
        """Per-gene mutation probability for extinction ``e`` and ``n_genes`` genes."""
        return (extinction * (n_genes - 1) + 1.0) / n_genes

    def mutate(self, genes: Genes, extinction: float, rng: Rng, space: GeneSpace) -> Genes:
        n = len(genes)
        p = self.probability(extinction, n)
        hit = rng.random(n) < p
        step = extinction * rng.uniform(-1.0, 1.0, n)
        cat = space.is_categorical
        out = genes.copy()
        num = hit & ~cat
        out[num] = np.clip(genes[num] + step[num], 0.0, 1.0)
        if cat.any():
            redraw = cat & (rng.random(n) < p * extinction)
            out[redraw] = np.floor(rng.random(int(redraw.sum())) * space.n_choices[redraw])
        return out

    def __repr__(self) -> str:
        return "ExtinctionMutation()"
