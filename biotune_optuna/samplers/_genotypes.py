"""Genotypes: trials' parameters encoded as genes in the unit cube, and random genotypes.

The paper's genotype (Colan, Davila, Hasegawa, arXiv:2508.15367, §III-A) is one importance per
block, a threshold and the learning rate; a block is trained when its importance exceeds the
threshold. Any other search space is encoded generically by
:class:`~biotune_optuna.samplers._space.GeneSpace`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers._keys import ROLE_EXPLOIT
from biotune_optuna.samplers._keys import ROLE_OFFSPRING
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._space import GeneSpace


_MAX_RESAMPLES = 1000


class Genotypes:
    """Encodes members' parameters (cached per study index) and draws random genotypes.

    Args:
        streams: The sampler's random streams (an encoding that needs a random fill, e.g. a
            gene the trial lacks, draws from the member's own stream).
    """

    def __init__(self, *, streams: _seeding.Streams) -> None:
        self._streams = streams
        self._spaces: dict[tuple[tuple[str, int], ...], GeneSpace] = {}

    def space(self, search_space: dict[str, BaseDistribution]) -> GeneSpace:
        """The gene space of ``search_space``, built once per set of distribution objects."""
        # Keyed by the identity of the distribution objects (the inferred space hands out the
        # same ones every ask); the cached GeneSpace holds them, so an id is never reused.
        key = tuple((name, id(dist)) for name, dist in search_space.items())
        space = self._spaces.get(key)
        if space is None:
            if len(self._spaces) > 256:
                self._spaces.clear()
            space = GeneSpace(search_space)
            self._spaces[key] = space
        return space

    def genes(self, index: StudyIndex, member: Member, space: GeneSpace) -> np.ndarray:
        """The genotype of a finished member in ``space``."""
        cache = index.genes_cache.setdefault(space.key, {})
        genes = cache.get(member.number)
        if genes is None:
            genes = space.encode(
                member.params,
                lambda: self._streams.rng(_seeding.ENCODE, index.position(member.number)),
            )
            cache[member.number] = genes
        return genes

    def velocity(self, index: StudyIndex, member: Member, space: GeneSpace) -> np.ndarray:
        """How far a bred or exploited member moved from its parents' mean (the momentum step
        of the paper's figure); zero for other members and categorical genes."""
        parents = [
            index.members[p] for p in member.lineage.get("parents", []) if p in index.members
        ]
        if not parents or member.role not in (ROLE_OFFSPRING, ROLE_EXPLOIT):
            return np.zeros(len(space))
        mean = np.mean([self.genes(index, p, space) for p in parents], axis=0)
        velocity = self.genes(index, member, space) - mean
        velocity[space.is_categorical] = 0.0
        return velocity

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_spaces"] = {}  # a cache, rebuilt on use
        return state


def random_genotype(
    rng: np.random.Generator, space: GeneSpace, *, enforce_rules: bool
) -> np.ndarray:
    """A uniform genotype; with BioTune genes and ``enforce_rules``, redrawn until it trains
    at least one block (paper §III-A)."""
    genes = space.random(rng)
    located = biotune_gene_indices(space.names) if enforce_rules else None
    if located is None:
        return genes
    importance, threshold = located
    for _ in range(_MAX_RESAMPLES):
        if (genes[importance] > genes[threshold]).any():
            break
        genes = space.random(rng)
    return genes


def exploitable(genes: np.ndarray, space: GeneSpace) -> np.ndarray:
    """The genes exploitation may move: the selected blocks' importances for BioTune genes
    (all of them if none is selected), else every numerical gene (paper §III-C)."""
    located = biotune_gene_indices(space.names)
    eligible = np.zeros(len(space), dtype=bool)
    if located is not None:
        importance, threshold = located
        eligible[importance] = genes[importance] > genes[threshold]
        if not eligible.any():
            eligible[importance] = True
        return eligible
    eligible[~space.is_categorical] = True
    return eligible


def selects_a_block(genes: np.ndarray, located: tuple[list[int], int] | None) -> bool:
    """Whether ``genes`` train at least one block (always true without BioTune genes)."""
    if located is None:
        return True
    importance, threshold = located
    return bool((genes[importance] > genes[threshold]).any())
