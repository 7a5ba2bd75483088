"""Where a new trial goes: its generation, its slot, and so its role in the search.

A generation of Colan, Davila, Hasegawa, arXiv:2508.15367, §III is a fixed schedule of slots:
(re-evaluated elites,) ``V`` exploitation variants per elite, then offspring. A trial takes the
lowest free slot of the open generation; a generation stays open until as many of its slots as
it has members hold a finished trial, so parallel workers take further slots of it and it never
stalls. Slots are derived from storage, so a resumed study continues the same generation.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial

from biotune_optuna.samplers import _keys
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers._genotypes import Genotypes
from biotune_optuna.samplers._genotypes import random_genotype
from biotune_optuna.samplers._lineage import RETRY_HISTORY_KEY
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._offspring import Offspring
from biotune_optuna.samplers._populations import Populations
from biotune_optuna.samplers._proposal import Proposal
from biotune_optuna.samplers._repeats import RepeatAvoidance
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._study_reader import StudyReader


if TYPE_CHECKING:
    from optuna.study import Study


@dataclass(kw_only=True, eq=False)
class Placement:
    """Assigns each new trial its generation and slot and makes the slot's proposal.

    Args:
        n_elites: ``E``.
        exploitation_variants: Exploitation trials per elite ``V``.
        reevaluate_elites: Whether each generation first re-evaluates its elites.
        generation_size: Trials of a generation after the initial population.
        streams: The sampler's random streams.
        genotypes: Encodes members and draws random genotypes.
        populations: Each generation's population.
        offspring: Makes exploitation and offspring genotypes.
        repeats: Moves a proposal off a configuration the study holds.
        reader: Reads the study afresh and writes lineages.
    """

    n_elites: int
    exploitation_variants: int
    reevaluate_elites: bool
    generation_size: int
    streams: _seeding.Streams
    genotypes: Genotypes
    populations: Populations
    offspring: Offspring
    repeats: RepeatAvoidance
    reader: StudyReader

    def assign(
        self, index: StudyIndex, *, enqueued: bool, pending: int = 0
    ) -> tuple[int, int | None]:
        """Generation and slot of a new trial (an enqueued trial after generation 0: none).

        A generation stays open until as many of its slots as it has members hold a finished
        trial; trials asked meanwhile (parallel workers) take further slots of it. The
        generation therefore overshoots by at most the number of workers, and never stalls.
        """
        generation = index.max_generation
        if self.populations.is_closed(index, generation):
            generation += 1
        if enqueued and generation > 0:
            return generation, None
        return generation, index.next_slot(generation, skip=pending)

    def propose(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, space: GeneSpace | None
    ) -> Proposal:
        """The proposal of a new trial, in the slot it takes now."""
        if space is not None and len(space) == 0:
            space = None  # nothing to propose (e.g. the first trial); the lineage still counts
        enqueued = "fixed_params" in trial.system_attrs
        # Trials created before this one whose slots are not visible yet (parallel workers).
        pending = index.pending_before(trial.number)
        generation, slot = self.assign(index, enqueued=enqueued, pending=pending)
        return self.proposal_at(study, trial, index, space, generation, slot)

    def proposal_at(
        self,
        study: Study,
        trial: FrozenTrial,
        index: StudyIndex,
        space: GeneSpace | None,
        generation: int,
        slot: int | None,
    ) -> Proposal:
        """The proposal for ``slot`` of ``generation``: its role, lineage and genotype."""
        # Streams are keyed by the trial's place in the search, not its number: a dead trial
        # and its retry shift the numbers of every later trial, not their positions.
        position = index.place(trial)
        lineage: dict[str, Any] = {"generation": generation, "slot": slot, "parents": []}
        if generation == 0 or slot is None:
            lineage["role"] = _keys.ROLE_INIT if generation == 0 else _keys.ROLE_IMMIGRANT
            genes = None
            enforce = "fixed_params" not in trial.system_attrs
            warm = index.warm_plans or []
            if space is not None and generation == 0 and enforce and (slot or 0) < len(warm):
                # A warm start: the slot's prior plan (the rest of generation 0 is random).
                lineage["warm_start"] = slot or 0
                genes = space.encode(warm[slot or 0]["params"], _unreachable)
            elif space is not None:
                rng = self.streams.rng(_seeding.INIT, generation, slot or 0, position)
                genes = random_genotype(rng, space, enforce_rules=enforce)
            return Proposal(genes, lineage)
        n_reeval = self.n_elites if self.reevaluate_elites else 0
        n_exploit = self.n_elites * self.exploitation_variants
        previous = self.populations.population(study, index, generation - 1)
        n_elites = min(self.n_elites, len(previous))
        if slot < n_reeval and slot < n_elites:
            elite = self.populations.members(study, index, generation - 1)[slot]
            lineage.update(role=_keys.ROLE_ELITE, parents=[elite.number], elite=slot)
            genes = self.genotypes.genes(index, elite, space) if space is not None else None
            return Proposal(genes, lineage, reference=elite, reference_genes=genes)
        # (Above and below: a pending trial, another worker between creating its trial and
        # writing its lineage, takes one of the lowest free slots, which this trial skipped;
        # so under parallel workers the slots, hence the roles, stay those of the schedule.)
        k, variant = divmod(slot - n_reeval, self.exploitation_variants)
        if 0 <= slot - n_reeval < n_exploit and k < n_elites:
            elite = self.populations.members(study, index, generation - 1)[k]
            lineage.update(role=_keys.ROLE_EXPLOIT, parents=[elite.number], elite=k)
            return self.offspring.exploit(index, elite, generation, k, variant, space, lineage)
        return self.offspring.breed(study, index, position, generation, slot, space, lineage)

    def redrawn(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, space: GeneSpace
    ) -> Proposal | None:
        """A heartbeat retry's proposal: that of its slot, derived again (``None``: the retry
        keeps what it has).

        An attempt killed while it suggested its genes stored only some of them; the retry
        keeps those, and the others would come from the independent streams, so the search
        would leave an uninterrupted run's path. The proposal is derived again from the
        lineage's generation and slot and the first attempt's place in the search: what a
        single worker's retry sees is what its first attempt saw (the dead trial has left the
        search), so it is the same genotype. If it does not give the same lineage (other
        workers changed the generation meanwhile), the retry keeps what it has instead.
        """
        lineage = trial.system_attrs.get(_keys.LINEAGE_KEY)
        if (
            not isinstance(lineage, dict)
            or not trial.system_attrs.get(RETRY_HISTORY_KEY)
            or len(space) == 0
            or all(name in trial.params for name in space.names)
        ):
            return None
        generation, slot = int(lineage["generation"]), lineage.get("slot")
        proposal = self.proposal_at(study, trial, index, space, generation, slot)
        proposal = self.repeats.avoid(study, trial, index, space, proposal)
        if proposal.genes is None or json.loads(json.dumps(proposal.lineage)) != lineage:
            return None
        return proposal

    def settle_contested(
        self, study: Study, trial: FrozenTrial, space: GeneSpace, proposal: Proposal
    ) -> Proposal:
        """Under parallel workers: an elite's or an exploitation's slot that another trial
        took meanwhile (both read storage before either wrote) is left to it, and this trial
        breeds in a slot beyond the schedule instead; both would propose the same genotype.

        Either trial that sees the other moves, so one of them always does (both may: then the
        slot is free again for the next trial).
        """
        lineage = proposal.lineage
        if lineage["role"] not in (_keys.ROLE_ELITE, _keys.ROLE_EXPLOIT):
            return proposal
        generation, slot = int(lineage["generation"]), int(lineage["slot"])
        index = self.reader.sync(study, check_settings=False, fresh=True)
        if not index.slot_taken_by_another(trial.number, generation, slot):
            return proposal
        claimed = [
            int(lin["slot"])
            for lin in index.unfinished_lineages
            if lin["generation"] == generation and lin.get("slot") is not None
        ]
        last = max([self.generation_size - 1, *claimed, *index.finished_slots[generation]])
        moved = {"generation": generation, "slot": last + 1, "parents": []}
        position = index.place(trial)
        proposal = self.offspring.breed(study, index, position, generation, last + 1, space, moved)
        proposal = self.repeats.avoid(study, trial, index, space, proposal)
        self.reader.write_lineage(study, trial, index, proposal.lineage)
        return proposal


def _unreachable() -> Any:
    raise AssertionError("a prior plan has every gene of the space it was checked in")
