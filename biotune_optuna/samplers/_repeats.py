"""Repeat avoidance: never spend a trial on a configuration the study already holds.

An option of this toolkit (``avoid_duplicates``), not of the paper (Colan, Davila, Hasegawa,
arXiv:2508.15367): the paper's GA re-evaluates a repeated genotype. A proposal that repeats a
finished or running trial's configuration is perturbed with growing steps, else redrawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import FrozenTrial

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers import _keys
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers._configurations import ConfigurationSet
from biotune_optuna.samplers._genotypes import Genotypes
from biotune_optuna.samplers._genotypes import random_genotype
from biotune_optuna.samplers._genotypes import selects_a_block
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._operators._exploitation import mirrored_steps
from biotune_optuna.samplers._proposal import Proposal
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._study_reader import running_trials


if TYPE_CHECKING:
    from optuna.study import Study

#: Perturbations tried to move a proposal off a configuration the study holds, then redraws.
_MAX_PERTURBATIONS = 60
_MAX_REDRAWS = 40


@dataclass(kw_only=True, eq=False)
class RepeatAvoidance:
    """Moves proposals off the configurations a study holds.

    Args:
        enabled: Whether proposals are moved at all (``avoid_duplicates``).
        tolerance: Continuous genes closer than this (unit cube) are the same configuration.
        streams: The sampler's random streams.
        genotypes: Encodes finished members.
    """

    enabled: bool
    tolerance: float
    streams: _seeding.Streams
    genotypes: Genotypes

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"`duplicate_tolerance` must be in [0, 1), got {self.tolerance}.")

    def avoid(
        self,
        study: Study,
        trial: FrozenTrial,
        index: StudyIndex,
        space: GeneSpace,
        proposal: Proposal,
    ) -> Proposal:
        """Move a proposal that repeats a configuration the study holds: perturbed with growing
        steps, else redrawn; the number of tries is recorded in the lineage as
        ``repeat_avoided``."""
        if not self.enabled or proposal.genes is None or len(space) == 0:
            return proposal
        if proposal.lineage["role"] == _keys.ROLE_ELITE or "fixed_params" in trial.system_attrs:
            return proposal  # a deliberate re-evaluation, or the user's own parameters
        held = self.held(study, index, space)
        if not held(proposal.genes):
            return proposal
        rng = self.streams.rng(_seeding.UNIQUE, index.place(trial))
        genes, tries = _unrepeated(proposal.genes, held, rng, space)
        proposal.lineage["repeat_avoided"] = tries
        return Proposal(genes, proposal.lineage, proposal.reference, proposal.reference_genes)

    def held(
        self, study: Study, index: StudyIndex, space: GeneSpace
    ) -> Callable[[np.ndarray], bool]:
        """Whether a genotype repeats a finished member's or a running trial's configuration."""
        finished, added = index.configurations.setdefault(
            space.key, (ConfigurationSet(space, tolerance=self.tolerance), set())
        )
        for number, member in index.members.items():
            if number not in added and all(name in member.params for name in space.names):
                finished.add(self.genotypes.genes(index, member, space))
                added.add(number)
        running = ConfigurationSet(space, tolerance=self.tolerance)
        for trial in running_trials(study):
            if all(name in trial.params for name in space.names):
                running.add(space.encode(trial.params, _no_fill))

        def held(genes: np.ndarray) -> bool:
            return finished.contains(genes) or (len(running) > 0 and running.contains(genes))

        return held


def _unrepeated(
    genes: np.ndarray,
    held: Callable[[np.ndarray], bool],
    rng: np.random.Generator,
    space: GeneSpace,
) -> tuple[np.ndarray, int]:
    located = biotune_gene_indices(space.names)
    movable = np.ones(len(space), dtype=bool)
    for attempt in range(_MAX_PERTURBATIONS):
        step = min(1.0, 0.05 * 1.08**attempt)
        candidate = mirrored_steps(genes, movable, rng, space, step)[0]
        if selects_a_block(candidate, located) and not held(candidate):
            return candidate, attempt + 1
    for attempt in range(_MAX_REDRAWS):
        candidate = random_genotype(rng, space, enforce_rules=True)
        if not held(candidate):
            return candidate, _MAX_PERTURBATIONS + attempt + 1
    return genes, -1  # a small discrete space that the study has exhausted


def _no_fill() -> np.random.Generator:
    raise AssertionError("a trial's parameters cover the genes")
