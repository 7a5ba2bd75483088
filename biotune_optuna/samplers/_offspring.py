"""How a generation's new genotypes are made: elite exploitation and breeding.

The two steps of a generation in Colan, Davila, Hasegawa, arXiv:2508.15367, §III: each elite is
exploited by variants that move one of its genes (§III-C), and the other slots breed children
from the mating pool by selection, crossover, mutation and adoption (§III-B); a pool of two
members or fewer takes a random immigrant. Optionally (``surrogate_candidates``), several
candidates compete for a slot and a surrogate picks one: TPE's density ratio
(:class:`~biotune_optuna.samplers._surrogate.CandidateRanker`) or a Gaussian process over the
plans (:class:`~biotune_optuna.samplers._plan_surrogate.PlanGP`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import TYPE_CHECKING

import numpy as np

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers import _keys
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers._genotypes import exploitable
from biotune_optuna.samplers._genotypes import Genotypes
from biotune_optuna.samplers._genotypes import random_genotype
from biotune_optuna.samplers._genotypes import selects_a_block
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._operators import BaseAdoption
from biotune_optuna.samplers._operators import BaseCrossover
from biotune_optuna.samplers._operators import BaseExploitation
from biotune_optuna.samplers._operators import BaseMutation
from biotune_optuna.samplers._operators import BaseSelection
from biotune_optuna.samplers._plan_surrogate import PlanGP
from biotune_optuna.samplers._populations import mating_pool
from biotune_optuna.samplers._populations import Populations
from biotune_optuna.samplers._proposal import Child
from biotune_optuna.samplers._proposal import Proposal
from biotune_optuna.samplers._repeats import RepeatAvoidance
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._surrogate import CandidateRanker


if TYPE_CHECKING:
    from optuna.study import Study


@dataclass(kw_only=True, eq=False)
class Offspring:
    """Makes the genotypes of a generation's exploitation and offspring slots.

    Raises:
        ValueError: ``momentum`` is negative or a candidate count is not an int >= 0.

    Args:
        selection: Chooses parents and prototype.
        crossover: Blends two parents.
        mutation: Mutates a child, scaled by its parents' extinction.
        adoption: Moves a child toward its parents' mean and its prototype.
        exploitation: Makes the variants of an elite.
        momentum: Coefficient of the step a child inherits from its parents.
        surrogate_candidates: Bred candidates per offspring slot (0 or 1: one child).
        sampled_candidates: Candidates drawn from the surrogate's estimator besides.
        surrogate: What ranks candidates: ``"tpe"`` (TPE's density ratio) or ``"gp"`` (a
            Gaussian process over the plans,
            :class:`~biotune_optuna.samplers._plan_surrogate.PlanGP`); candidates are drawn
            from TPE's estimator either way.
        exploitation_candidates: With a ranking surrogate, each exploitation variant is the
            best ranked of this many (0 or 1: the operator's one).
        surrogate_paused: In a budget-aware study the Gaussian process fits plans paused at
            a rung too (:class:`~biotune_optuna.samplers._plan_surrogate.PlanGP`'s ``rungs``).
        streams: The sampler's random streams.
        genotypes: Encodes members and draws random genotypes.
        populations: The previous population and the mating pool.
        repeats: Which configurations the study holds (a repeating candidate loses).
    """

    selection: BaseSelection
    crossover: BaseCrossover
    mutation: BaseMutation
    adoption: BaseAdoption
    exploitation: BaseExploitation
    momentum: float
    surrogate_candidates: int
    sampled_candidates: int
    surrogate: str
    exploitation_candidates: int
    surrogate_paused: bool
    streams: _seeding.Streams
    genotypes: Genotypes
    populations: Populations
    repeats: RepeatAvoidance

    def __post_init__(self) -> None:
        if self.momentum < 0:
            raise ValueError(f"`momentum` must be non-negative, got {self.momentum}.")
        for key, count in (
            ("surrogate_candidates", self.surrogate_candidates),
            ("sampled_candidates", self.sampled_candidates),
            ("exploitation_candidates", self.exploitation_candidates),
        ):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"`{key}` must be an int >= 0, got {count!r}.")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"`surrogate` must be one of {SURROGATES}, got {self.surrogate!r}.")

    def exploit(
        self,
        index: StudyIndex,
        elite: Member,
        generation: int,
        k: int,
        variant: int,
        space: GeneSpace | None,
        lineage: dict[str, Any],
    ) -> Proposal:
        """Variant ``variant`` of the exploitation of elite ``k`` in ``generation``."""
        adaptive = getattr(self.exploitation, "adaptive", False)
        if adaptive:
            lineage["step"] = self._exploitation_step(index, elite, generation)
        if space is None:
            return Proposal(None, lineage)
        elite_genes = self.genotypes.genes(index, elite, space)
        # Both variants of a pair share the gene and delta (or the direction and step).
        eligible = exploitable(elite_genes, space)

        def variants(c: int) -> list[np.ndarray]:
            keys = (_seeding.EXPLOIT, generation, k) + ((c,) if c else ())
            rng = self.streams.rng(*keys)
            if adaptive:
                return self.exploitation.variants(  # type: ignore[call-arg]
                    elite_genes, eligible, rng, space, step=lineage["step"]
                )
            return self.exploitation.variants(elite_genes, eligible, rng, space)

        genes = variants(0)[variant]
        if self.exploitation_candidates > 1:
            scorer = self._rankers(index, space)[1]
            if scorer.ready:
                pool = [genes] + [
                    variants(c)[variant] for c in range(1, self.exploitation_candidates)
                ]
                genes = pool[int(np.argmax(scorer.scores(pool)))]
        return Proposal(genes, lineage, elite, elite_genes)

    def _exploitation_step(self, index: StudyIndex, elite: Member, generation: int) -> float:
        """The adaptive step of ``elite`` in ``generation``, derived from stored steps.

        The last round that exploited this very member failed (it is still the elite): the
        step of that round, shrunk. Else, a variant that replaced its elite: its step, grown.
        Else a new elite: the initial step.
        """
        operator: Any = self.exploitation
        for g in range(generation - 1, -1, -1):
            for m in index.by_generation.get(g, []):
                exploited = m.lineage.get("parents") == [elite.number] and "step" in m.lineage
                if m.role == _keys.ROLE_EXPLOIT and exploited:
                    return operator.next_step(float(m.lineage["step"]), success=False)
        if elite.role == _keys.ROLE_EXPLOIT and "step" in elite.lineage:
            return operator.next_step(float(elite.lineage["step"]), success=True)
        return float(operator.initial_step)

    def breed(
        self,
        study: Study,
        index: StudyIndex,
        position: int,
        generation: int,
        slot: int,
        space: GeneSpace | None,
        lineage: dict[str, Any],
    ) -> Proposal:
        """The offspring (or, from a pool of two members or fewer, immigrant) of ``slot``."""
        versions, ext = self.populations.current(study, index, generation)
        pool = mating_pool(index, generation, versions)
        keys = (_seeding.OFFSPRING, generation, slot, position)
        rng = self.streams.rng(*keys)
        if len(pool) <= 2:
            lineage.update(role=_keys.ROLE_IMMIGRANT, pool=[m.number for m in pool])
            genes = random_genotype(rng, space, enforce_rules=True) if space else None
            return Proposal(genes, lineage)
        child = self._child(index, pool, ext, rng, space)
        if space is not None and self.surrogate_candidates > 1:
            child = self._best_candidate(study, index, pool, ext, space, child, keys)
            if child.sampled:
                lineage["candidate"] = "sampled"
        lineage.update(
            role=_keys.ROLE_OFFSPRING,
            parents=[child.parents[0].number, child.parents[1].number],
            prototype=child.prototype.number,
            pool=[m.number for m in pool],
        )
        return Proposal(child.genes, lineage)

    def _child(
        self,
        index: StudyIndex,
        pool: list[Member],
        ext: dict[int, float],
        rng: np.random.Generator,
        space: GeneSpace | None,
    ) -> Child:
        """One child of the mating pool: selection, crossover, mutation, adoption, momentum."""
        i1, i2, i3 = self.selection.select(len(pool), 3, rng)
        p1, p2, prototype = pool[i1], pool[i2], pool[i3]
        if space is None:
            return Child(None, (p1, p2), prototype)
        genes = self.genotypes.genes
        x1, x2 = genes(index, p1, space), genes(index, p2, space)
        child = self.crossover.crossover(x1, x2, rng, space)
        e = 0.5 * (ext.get(p1.number, 0.0) + ext.get(p2.number, 0.0))
        child = self.mutation.mutate(child, e, rng, space)
        child = self.adoption.adopt(child, x1, x2, genes(index, prototype, space), rng, space)
        if self.momentum > 0.0:
            velocity = self.genotypes.velocity
            step = 0.5 * (velocity(index, p1, space) + velocity(index, p2, space))
            numerical = ~space.is_categorical
            child[numerical] = np.clip(child[numerical] + self.momentum * step[numerical], 0, 1)
        return Child(child, (p1, p2), prototype)

    def _best_candidate(
        self,
        study: Study,
        index: StudyIndex,
        pool: list[Member],
        ext: dict[int, float],
        space: GeneSpace,
        first: Child,
        keys: tuple[int, ...],
    ) -> Child:
        """Of ``surrogate_candidates`` children (``first`` and more from their own streams),
        the one the surrogate over the finished trials ranks best; a child repeating a
        configuration the study holds is only taken when all do."""
        ranker, scorer = self._rankers(index, space)
        if not scorer.ready:
            return first
        children = [first] + [
            self._child(index, pool, ext, self.streams.rng(*keys, c), space)
            for c in range(1, self.surrogate_candidates)
        ]
        located = biotune_gene_indices(space.names)
        drawn = (
            ranker.sample(
                self.streams.rng(*keys, self.surrogate_candidates), self.sampled_candidates
            )
            if ranker is not None
            else []
        )
        children += [
            Child(genes, first.parents, first.prototype, sampled=True)
            for genes in drawn
            if selects_a_block(genes, located)
        ]
        if self.repeats.enabled:
            held = self.repeats.held(study, index, space)
            children = [c for c in children if not held(c.genes)] or children
        scores = scorer.scores([c.genes for c in children])
        return children[int(np.argmax(scores))]

    def _rankers(self, index: StudyIndex, space: GeneSpace) -> tuple[CandidateRanker | None, Any]:
        """TPE's ranker, which draws candidates (``None`` when none are drawn and the Gaussian
        process scores: it is not fitted then), and the surrogate that scores them."""
        if self.surrogate == "tpe":
            ranker = _ranker(index, space)
            return ranker, ranker
        ranker = _ranker(index, space) if self.sampled_candidates > 0 else None
        return ranker, _cached(index, ("gp", space.key), lambda: self._plan_gp(index, space))

    def _plan_gp(self, index: StudyIndex, space: GeneSpace) -> PlanGP:
        return PlanGP(
            list(index.members.values()),
            space,
            lambda m: self.genotypes.genes(index, m, space),
            hyperparameters=index.observation_rows.setdefault(("gp", space.key), {}),
            rungs=index.budget_aware and self.surrogate_paused,
        )


#: The surrogates that can rank candidates.
SURROGATES = ("tpe", "gp")
#: Options of :class:`~biotune_optuna.samplers.BioTunePlusSampler` that the paper's preset
#: leaves at these values (off).
PLUS_OPTIONS_OFF = {"surrogate": "tpe", "exploitation_candidates": 0, "surrogate_paused": False}


def _cached(index: StudyIndex, key: Any, build: Callable[[], Any]) -> Any:
    """The study's model under ``key``, rebuilt when members were added or updated."""
    seen = (len(index.members), max(index.members, default=-1), index.revision)
    cached = index.rankers.get(key)
    if cached is None or cached[0] != seen:
        cached = index.rankers[key] = (seen, build())
    return cached[1]


def _ranker(index: StudyIndex, space: GeneSpace) -> CandidateRanker:
    """The study's candidate ranker in ``space``, refitted when members were added."""

    def build() -> CandidateRanker:
        rows = index.observation_rows.setdefault(space.key, {})
        prior = [plan["params"] for plan in index.warm_plans or []]
        return CandidateRanker(list(index.members.values()), space, rows=rows, prior=prior)

    return _cached(index, space.key, build)
