"""Populations: the sorted population that closes each generation, and the mating pool.

A generation (Colan, Davila, Hasegawa, arXiv:2508.15367, §III) closes when as many of its slots
as it has members hold a finished trial; its population is the ``E`` elites' best versions and
the newcomers, sorted, ``N`` kept. Populations are derived from finished trials and stored once
per generation, so every worker and every later process breeds from the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TYPE_CHECKING

import numpy as np

from biotune_optuna.samplers import _keys
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._operators import extinction
from biotune_optuna.samplers._study_reader import set_study_attr
from biotune_optuna.samplers._study_reader import study_attrs


if TYPE_CHECKING:
    from optuna.study import Study


@dataclass(kw_only=True, eq=False)
class Populations:
    """Each generation's population, its elites' best versions and the mating pool.

    Args:
        population_size: ``N``.
        n_elites: ``E``.
        generation_size: Trials of a generation after the initial population.
        mutate_first_generation: Compute extinction for the initial population too.
        ideal_value: The objective's best possible value (``None``: 1 when maximising, 0 when
            minimising), from which extinction measures regret.
    """

    population_size: int
    n_elites: int
    generation_size: int
    mutate_first_generation: bool
    ideal_value: float | None

    def population(self, study: Study, index: StudyIndex, generation: int) -> list[int]:
        """Trial numbers (best first) of the population that closed ``generation``.

        Computed once, by the first worker that needs it, and stored in the study so that every
        worker and every later process breeds from the same population.
        """
        memo = index.populations.get(generation)
        if memo is not None:
            return memo
        key = f"{_keys.POPULATION_KEY_PREFIX}{generation}"
        attrs = study_attrs(study)
        stored = attrs.get(key)
        if stored is None:
            considered, stored = self._close_generation(study, index, generation, attrs)
            if not self.is_closed(index, generation):
                return stored  # a look at a running generation (public API): not stored
            set_study_attr(study, f"{_keys.CONSIDERED_KEY_PREFIX}{generation}", considered)
            set_study_attr(study, key, stored)
        index.populations[generation] = list(stored)
        return index.populations[generation]

    def is_closed(self, index: StudyIndex, generation: int) -> bool:
        """Whether ``generation`` is closed: enough of its slots hold a finished trial."""
        size = self.population_size if generation == 0 else self.generation_size
        if generation < index.max_generation:
            return True
        # Trials beyond the schedule's slots count: a slow or dead trial does not hold the
        # generation (a retry that finishes after it closed joins the next closing instead).
        return index.n_finished_slots(generation) >= size

    def members(self, study: Study, index: StudyIndex, generation: int) -> list[Member]:
        """The members of the population that closed ``generation``, best first (as stored
        then, the same for every worker; a member whose plan a budget-aware study continued
        since carries its further rung)."""
        numbers = self.population(study, index, generation)
        return [index.members[n] for n in numbers if n in index.members]

    def _close_generation(
        self, study: Study, index: StudyIndex, generation: int, attrs: dict[str, Any]
    ) -> tuple[list[int], list[int]]:
        """The trials ranked to close ``generation`` and the population they give, best first.

        Ranked are the generation's newcomers (the elites' best versions, offspring,
        immigrants) and any earlier trial that finished after its own generation closed (a
        retry of a dead trial, under parallel workers): it competes here instead of being lost.
        """
        members = index.by_generation.get(generation, [])
        newcomers = [
            m
            for m in members
            if generation == 0 or m.role in (_keys.ROLE_OFFSPRING, _keys.ROLE_IMMIGRANT)
        ]
        if generation > 0:
            versions, _ = self.current(study, index, generation)
            newcomers = versions[: self.n_elites] + newcomers
        late = _late_members(index, generation, attrs)
        ranked = sorted(newcomers + late, key=rank_key)
        considered = sorted({m.number for m in members} | {m.number for m in late})
        return considered, [m.number for m in ranked[: self.population_size]]

    def current(
        self, study: Study, index: StudyIndex, generation: int
    ) -> tuple[list[Member], dict[int, float]]:
        """The previous population with each elite replaced by its best exploitation so far.

        Returns the members in the previous population's order (elites first) and the
        extinction of each (paper §III-B), computed from the previous population's ranks; a
        replacing variant inherits its elite's extinction.
        """
        cached = index.parents_cache.get(generation)
        if cached is None:
            members = self.members(study, index, generation - 1)
            if generation - 1 == 0 and not self.mutate_first_generation:
                ext_values = np.zeros(len(members))
            else:
                ext_values = extinction(self._regrets(index, [m.loss for m in members]))
            cached = index.parents_cache[generation] = (members, ext_values)
        members, ext_values = cached
        # Each member as it ranks now (a budget-aware study may have continued its plan).
        previous = [index.members.get(m.number, m) for m in members]
        versions = list(previous)
        this_generation = index.by_generation.get(generation, [])
        for k in range(min(self.n_elites, len(previous))):
            versions[k] = _best_version(previous[k], k, this_generation)
        ext = {member.number: float(value) for member, value in zip(versions, ext_values)}
        return versions, ext

    def _regrets(self, index: StudyIndex, losses: Sequence[float]) -> np.ndarray:
        """Non-negative regrets of losses in rank order (best first), never decreasing; failed
        trials count as the worst."""
        losses_arr = np.asarray(losses, dtype=float)
        finite = np.isfinite(losses_arr)
        if not finite.any():
            return np.zeros(len(losses_arr))
        if self.ideal_value is not None:
            ideal = float(self.ideal_value)
            ideal_loss = -ideal if index.maximize else ideal
        else:
            ideal_loss = -1.0 if index.maximize else 0.0
        regrets = losses_arr - ideal_loss
        regrets[~finite] = regrets[finite].max()
        if regrets.min() < 0:
            regrets -= regrets.min()
        # In rank order: a plan stopped at an earlier rung may have reported a lower loss there
        # than a finished plan ranked above it shows at its end; it is no better for that.
        return np.maximum.accumulate(regrets)


def _best_version(elite: Member, k: int, this_generation: list[Member]) -> Member:
    """Elite ``k``'s re-evaluation if any, replaced by a better exploitation of it."""
    best = elite
    for m in this_generation:  # re-evaluations first: their fitness replaces the old
        if m.role == _keys.ROLE_ELITE and m.lineage.get("elite") == k:
            best = m
    for m in this_generation:
        exploits_elite = m.role == _keys.ROLE_EXPLOIT and m.lineage.get("elite") == k
        if exploits_elite and rank_key(m) < rank_key(best):
            best = m
    return best


def mating_pool(index: StudyIndex, generation: int, versions: list[Member]) -> list[Member]:
    """The current population, best first, less every parent a finished child has beaten."""
    in_pool = {m.number: m for m in versions}
    beaten: set[int] = set()
    for child in index.by_generation.get(generation, []):
        if child.role != _keys.ROLE_OFFSPRING:
            continue
        for parent in child.lineage.get("parents", []):
            if parent in in_pool and _beats(child, in_pool[parent]):
                beaten.add(parent)
    return sorted((m for m in versions if m.number not in beaten), key=rank_key)


def _late_members(index: StudyIndex, generation: int, attrs: dict[str, Any]) -> list[Member]:
    """Finished members of generations before ``generation`` that no closing ranked.

    Only studies that record what each closing ranked can have them (older ones: none).
    """
    considered: set[int] = set()
    for earlier in range(generation):
        numbers = attrs.get(f"{_keys.CONSIDERED_KEY_PREFIX}{earlier}")
        if numbers is None:
            return []
        considered.update(numbers)
    return [
        m
        for m in index.members.values()
        if m.generation < generation and m.number not in considered and np.isfinite(m.loss)
    ]


def _beats(child: Member, parent: Member) -> bool:
    """Whether a child did better than its parent: ranked above it (the paper's: a lower loss),
    age aside."""
    return child.rank[:2] < parent.rank[:2]


def rank_key(member: Member) -> tuple[float, float, int]:
    """Sort key of a member, best first (see :attr:`Member.rank`)."""
    return member.rank
