"""What the sampler proposes for a trial: a genotype and its lineage (arXiv:2508.15367, §III)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._optuna_bridge import contains
from biotune_optuna.samplers._space import GeneSpace


@dataclass
class Proposal:
    """A trial's genotype (``None``: nothing to sample) and its place in the search.

    Attributes:
        genes: The genotype in the unit cube.
        lineage: The trial's lineage record (generation, role, slot, parents, ...).
        reference: A member whose genes the proposal copies: where a gene is unchanged, its
            exact parameter value is kept.
        reference_genes: The reference member's genotype.
    """

    genes: np.ndarray | None
    lineage: dict[str, Any]
    reference: Member | None = None
    reference_genes: np.ndarray | None = None


@dataclass
class Child:
    """A bred child: its genes, its two parents and its prototype (paper §III-B).

    Attributes:
        genes: The child's genotype (``None``: nothing to sample).
        parents: The two parents selected from the mating pool.
        prototype: The member the child adopts toward.
        sampled: Drawn from the surrogate's estimator, not bred.
    """

    genes: np.ndarray | None
    parents: tuple[Member, Member]
    prototype: Member
    sampled: bool = False


def to_params(space: GeneSpace, proposal: Proposal) -> dict[str, Any]:
    """The parameters of a proposal, keeping the reference's exact values of unchanged genes."""
    assert proposal.genes is not None
    params = space.decode(proposal.genes)
    reference, reference_genes = proposal.reference, proposal.reference_genes
    if reference is None or reference_genes is None:
        return params
    for i, (name, dist) in enumerate(zip(space.names, space.distributions)):
        if proposal.genes[i] == reference_genes[i] and name in reference.params:
            value = reference.params[name]
            if contains(dist, value):
                params[name] = value
    return params
