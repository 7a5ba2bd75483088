"""Adoption: a child pulled toward its parents and a pool prototype (arXiv:2508.15367, §III)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from biotune_optuna.samplers._space import Genes
    from biotune_optuna.samplers._space import GeneSpace
    from biotune_optuna.samplers._space import Rng


class BaseAdoption(abc.ABC):
    """Pulls a child toward its parents and a prototype drawn from the mating pool."""

    @abc.abstractmethod
    def adopt(
        self, child: Genes, p1: Genes, p2: Genes, prototype: Genes, rng: Rng, space: GeneSpace
    ) -> Genes:
        """Return the adopted child (numerical genes in ``[0, 1]``).

        Args:
            child: The child after crossover and mutation.
            p1: Its first parent.
            p2: Its second parent.
            prototype: A member drawn from the mating pool.
            rng: Random generator of the child's slot.
            space: The genotype's search space.
        """
        raise NotImplementedError


class ParentPrototypeAdoption(BaseAdoption):
    """Adoption step of BioTune (Colan et al., arXiv:2508.15367, §III).

    With scalars ``a, b, c ~ U(0, 1)``:
    ``child += c * a * (mean(p1, p2) - child) + (1 - c) * b * (prototype - child)``, clipped to
    ``[0, 1]``. A categorical gene takes a random parent's value with probability ``c * a``, else
    the prototype's with probability ``(1 - c) * b``.
    """

    def adopt(
        self, child: Genes, p1: Genes, p2: Genes, prototype: Genes, rng: Rng, space: GeneSpace
    ) -> Genes:
        a, b, c = rng.random(3)
        mean = 0.5 * (p1 + p2)
        out = np.clip(child + c * a * (mean - child) + (1 - c) * b * (prototype - child), 0, 1)
        cat = space.is_categorical
        if cat.any():
            n = len(child)
            u = rng.random(n)
            from_parent = np.where(rng.random(n) < 0.5, p1, p2)
            value = np.where(
                u < c * a, from_parent, np.where(u < c * a + (1 - c) * b, prototype, child)
            )
            out[cat] = value[cat]
        return out

    def __repr__(self) -> str:
        return "ParentPrototypeAdoption()"
