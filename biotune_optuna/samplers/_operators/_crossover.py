"""Crossover: two parent genotypes blended gene by gene into one child (arXiv:2508.15367, §III)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from biotune_optuna.samplers._space import Genes
    from biotune_optuna.samplers._space import GeneSpace
    from biotune_optuna.samplers._space import Rng


class BaseCrossover(abc.ABC):
    """Combines two parent genotypes into one child."""

    @abc.abstractmethod
    def crossover(self, parent1: Genes, parent2: Genes, rng: Rng, space: GeneSpace) -> Genes:
        """Return a child genotype (numerical genes in ``[0, 1]``)."""
        raise NotImplementedError


class BlendCrossover(BaseCrossover):
    """Per-gene blend crossover of BioTune (Colan et al., arXiv:2508.15367, §III).

    Each gene draws its own weight ``w_j ~ U(0, 1)`` and the child is
    ``w_j * p1_j + (1 - w_j) * p2_j``; it is always applied. A categorical gene takes the first
    parent's value with probability ``w_j``, else the second's.
    """

    def crossover(self, parent1: Genes, parent2: Genes, rng: Rng, space: GeneSpace) -> Genes:
        w = rng.random(len(parent1))
        child = w * parent1 + (1.0 - w) * parent2
        cat = space.is_categorical
        if cat.any():
            take_first = rng.random(len(parent1)) < w
            child[cat] = np.where(take_first[cat], parent1[cat], parent2[cat])
        return child

    def __repr__(self) -> str:
        return "BlendCrossover()"
