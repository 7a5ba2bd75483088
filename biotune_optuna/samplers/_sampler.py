"""The BioTune sampler: the paper's genetic algorithm over fine-tuning genes, as an Optuna sampler.

:class:`BioTuneSampler` is the paper's preset (Colan, Davila, Hasegawa, arXiv:2508.15367, §III):
linear rank selection, blend crossover, parent-prototype adoption, extinction-scaled mutation,
elites re-evaluated and exploited, immigrants; :class:`BioTunePlusSampler` switches on the
improvements (no repeated configurations, adaptive exploitation, TPE-ranked candidates). The
operators are injected (:mod:`biotune_optuna.samplers.operators`); every decision is written to
the study's storage, so a study continues in a new process exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import json
import threading
from typing import Any
from typing import TYPE_CHECKING
import warnings

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseGASampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers import _keys
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers._budget import generation_size
from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.samplers._configurations import ConfigurationSet
from biotune_optuna.samplers._configurations import DUPLICATE_TOLERANCE
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._lineage import RETRY_HISTORY_KEY
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._storage_io import write_trial_attrs
from biotune_optuna.samplers._surrogate import CandidateRanker
from biotune_optuna.samplers.operators import AdaptiveExploitation
from biotune_optuna.samplers.operators import BaseAdoption
from biotune_optuna.samplers.operators import BaseCrossover
from biotune_optuna.samplers.operators import BaseExploitation
from biotune_optuna.samplers.operators import BaseMutation
from biotune_optuna.samplers.operators import BaseSelection
from biotune_optuna.samplers.operators import BlendCrossover
from biotune_optuna.samplers.operators import EliteExploitation
from biotune_optuna.samplers.operators import extinction
from biotune_optuna.samplers.operators import ExtinctionMutation
from biotune_optuna.samplers.operators import LinearRankSelection
from biotune_optuna.samplers.operators import ParentPrototypeAdoption
from biotune_optuna.samplers.operators._exploitation import mirrored_steps


if TYPE_CHECKING:
    from optuna.study import Study

_MAX_RESAMPLES = 1000
#: Perturbations tried to move a proposal off a configuration the study holds, then redraws.
_MAX_PERTURBATIONS = 60
_MAX_REDRAWS = 40


@dataclass
class _Proposal:
    genes: np.ndarray | None
    lineage: dict[str, Any]
    # A member whose genes the proposal copies: where a gene is unchanged, its exact value is kept.
    reference: Member | None = None
    reference_genes: np.ndarray | None = None


@dataclass
class _Child:
    genes: np.ndarray | None
    parents: tuple[Member, Member]
    prototype: Member
    sampled: bool = False  # drawn from the surrogate's estimator, not bred


class BioTuneSampler(BaseGASampler):
    """BioTune's evolutionary search as an Optuna sampler.

    Implements the genetic algorithm of J. Colan, A. Davila, Y. Hasegawa, "Transfer learning
    optimization based on evolutionary selective fine tuning", arXiv:2508.15367 (2025): an initial
    random population of ``N`` genotypes, then generations that each

    1. exploit the ``E`` elites: two trials per elite move one selected gene by ``±delta``,
       ``delta = radius * U(-1, 1)``; the better variant replaces the elite if it beats it;
    2. breed ``N - E`` children from the current population (the mating pool): two parents and a
       prototype by linear rank selection, blend crossover, extinction-scaled mutation, adoption
       toward the parents' mean and the prototype; a parent that a child beats leaves the pool;
       when the pool holds 2 members or fewer, a random immigrant is evaluated instead;
    3. keep the ``E`` elites and the new members, sorted, as the next population.

    One evaluation is one trial, so a generation takes ``N + E`` trials and the paper's 10/3/10
    setting 140 (:func:`~biotune_optuna.samplers.trial_budget`). The defaults are the paper's
    preset, including three quirks of the authors' code, each an option: momentum inert
    (``momentum=0``), the first generation unmutated (``mutate_first_generation=False``) and
    elites never re-evaluated (``reevaluate_elites=False``).

    The sampler is generic: it runs on any single-objective search space. Numerical genes live in
    ``[0, 1]`` (log and step aware), categorical genes take a parent's value. When the space holds
    BioTune genes (:data:`~biotune_optuna.samplers.IMPORTANCE_PREFIX` and
    :data:`~biotune_optuna.samplers.THRESHOLD_PARAM`), random genotypes are resampled until they
    select a block and exploitation only moves selected blocks.

    All state lives in the study's storage (see :mod:`biotune_optuna.samplers._keys`): each trial
    carries its generation, role, slot, parents and the mating pool it was bred from, and each
    finished generation's sorted population is stored once. A study reopened in another process
    with a new sampler continues the same generation; several processes can share one study.
    Randomness is derived from the seed and the trial's place in the search, so a seeded
    single-worker study proposes the same genotypes whether it ran straight through or was
    stopped and resumed. A FAILED trial keeps its slot with the worst fitness, a PRUNED one its
    rank at the rung where it stopped (``rank_pruned_by_rung``). Trials
    added with :meth:`~optuna.study.Study.enqueue_trial` join generation 0 (later ones join the
    current generation as immigrants).

    Args:
        population_size: Population size ``N`` (10 in the paper).
        n_elites: Number of elites ``E`` (3 in the paper).
        selection: Chooses parents and prototype; default :class:`LinearRankSelection`.
        crossover: Default :class:`BlendCrossover`.
        mutation: Default :class:`ExtinctionMutation`.
        adoption: Default :class:`ParentPrototypeAdoption`.
        exploitation: Default :class:`EliteExploitation` with radius 0.25.
        momentum: Coefficient of the step a child inherits (the mean, over its parents, of how
            far each parent moved from its own parents); 0, off, in the paper preset: the
            paper's figure shows it, the authors' code never applies it.
        mutate_first_generation: Compute extinction for the initial population too, so that
            the first generation's children mutate; off in the paper preset, as in the authors'
            code, which leaves it at 0 there.
        reevaluate_elites: Re-evaluate each elite at the start of every generation (e.g. on the
            generation's new data fold), its new fitness replacing the old; off in the paper.
        ideal_value: The objective's best possible value, from which extinction measures regret
            (the paper's ``1 - accuracy``). Default: 1 when maximising, 0 when minimising; if a
            value passes it, the population's best is used instead.
        avoid_duplicates: Never spend a trial on a configuration the study already holds
            (finished or running; :func:`~biotune_optuna.samplers.duplicate_trials` says when
            two are the same): a proposal that repeats one is perturbed, with growing steps,
            or redrawn, and its lineage records ``repeat_avoided``; off in the paper. An elite's
            re-evaluation is deliberate and left alone.
        duplicate_tolerance: With ``avoid_duplicates``, continuous genes closer than this (unit
            cube) are the same configuration.
        surrogate_candidates: Breed this many candidate children per offspring slot and
            evaluate the one that TPE's density ratio over the finished trials ranks best
            (:class:`~biotune_optuna.samplers._surrogate.CandidateRanker`, once 10 trials have
            finished); 0 or 1: one child, as in the paper.
        sampled_candidates: With ``surrogate_candidates``: this many more candidates drawn from
            the model's estimator of the best trials (as TPE draws its own), ranked with the
            bred children; 0: bred children only. The slot's parents stay those of its first
            bred child, and the lineage says ``"candidate": "sampled"``.
        rank_pruned_by_rung: Multi-fidelity (a pruner such as Optuna's
            :class:`~optuna.pruners.SuccessiveHalvingPruner` stopping plans at rungs of
            epochs): a PRUNED trial keeps its slot and is ranked by the last value it reported,
            below every plan that went past that step and among the plans stopped there by what
            it showed (a plan stopped early is never mistaken for a finished one); ``False``:
            the worst fitness, as for a FAILED trial. The paper never prunes, so its preset is
            unchanged either way.
        search_space: A fixed search space to sample jointly from the very first trial. Without
            it the space is inferred from completed trials, so the first trial's genes are drawn
            independently.
        seed: Seed for the random streams.
    """

    def __init__(
        self,
        *,
        population_size: int = 10,
        n_elites: int = 3,
        selection: BaseSelection | None = None,
        crossover: BaseCrossover | None = None,
        mutation: BaseMutation | None = None,
        adoption: BaseAdoption | None = None,
        exploitation: BaseExploitation | None = None,
        momentum: float = 0.0,
        mutate_first_generation: bool = False,
        reevaluate_elites: bool = False,
        ideal_value: float | None = None,
        avoid_duplicates: bool = False,
        duplicate_tolerance: float = DUPLICATE_TOLERANCE,
        surrogate_candidates: int = 0,
        sampled_candidates: int = 0,
        rank_pruned_by_rung: bool = True,
        search_space: dict[str, BaseDistribution] | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(population_size, int) or population_size < 2:
            raise ValueError(f"`population_size` must be an int >= 2, got {population_size!r}.")
        if not isinstance(n_elites, int) or not 0 <= n_elites < population_size:
            raise ValueError(
                f"`n_elites` must be an int in [0, population_size), got {n_elites!r}."
            )
        if momentum < 0:
            raise ValueError(f"`momentum` must be non-negative, got {momentum}.")
        if not 0.0 <= duplicate_tolerance < 1.0:
            raise ValueError(
                f"`duplicate_tolerance` must be in [0, 1), got {duplicate_tolerance}."
            )
        for key, count in (
            ("surrogate_candidates", surrogate_candidates),
            ("sampled_candidates", sampled_candidates),
        ):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"`{key}` must be an int >= 0, got {count!r}.")
        super().__init__(population_size=population_size)
        self._n_elites = n_elites
        self._selection = selection or LinearRankSelection()
        self._crossover = crossover or BlendCrossover()
        self._mutation = mutation or ExtinctionMutation()
        self._adoption = adoption or ParentPrototypeAdoption()
        self._exploitation = exploitation or EliteExploitation()
        self._momentum = float(momentum)
        self._mutate_first_generation = mutate_first_generation
        self._reevaluate_elites = reevaluate_elites
        self._ideal_value = ideal_value
        self._avoid_duplicates = avoid_duplicates
        self._duplicate_tolerance = float(duplicate_tolerance)
        self._surrogate_candidates = surrogate_candidates
        self._sampled_candidates = sampled_candidates
        self._rank_pruned = bool(rank_pruned_by_rung)
        self._fixed_search_space = dict(search_space) if search_space is not None else None
        self._seed = seed
        self._entropy = self._make_entropy(seed)
        self._init_runtime()

    # ----------------------------------------------------------------------------------------
    # Properties and helpers of the public API.

    @property
    def n_elites(self) -> int:
        """Number of elites ``E``."""
        return self._n_elites

    @property
    def generation_size(self) -> int:
        """Trials per generation after the initial population (``N + E`` in the paper preset)."""
        assert self.population_size is not None
        return generation_size(
            population_size=self.population_size,
            n_elites=self._n_elites,
            exploitation_trials_per_elite=self._exploitation.n_variants,
            reevaluate_elites=self._reevaluate_elites,
        )

    def trial_budget(self, generations: int) -> int:
        """Trials for the initial population and ``generations`` generations of this sampler."""
        assert self.population_size is not None
        return trial_budget(
            generations,
            population_size=self.population_size,
            n_elites=self._n_elites,
            exploitation_trials_per_elite=self._exploitation.n_variants,
            reevaluate_elites=self._reevaluate_elites,
        )

    def reseed_rng(self) -> None:
        # A seeded sampler derives every draw from the seed and the trial's place in the
        # search, so there is no stream to reseed; an unseeded one takes fresh entropy.
        if self._seed is None:
            self._entropy = self._make_entropy(None)

    @staticmethod
    def _make_entropy(seed: int | None) -> int:
        if seed is None:
            return int(np.random.SeedSequence().entropy) % (2**64)  # type: ignore[arg-type]
        return int(seed) % (2**64)

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._indexes: dict[tuple[int, int], tuple[Any, StudyIndex]] = {}
        self._spaces: dict[tuple[tuple[str, int], ...], GeneSpace] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_indexes", "_spaces"):
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # ----------------------------------------------------------------------------------------
    # BaseSampler interface.

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        if self._fixed_search_space is not None:
            space = self._fixed_search_space
        else:
            # The intersection of the distributions of COMPLETE trials, as Optuna's
            # IntersectionSearchSpace infers it, but kept incrementally in the index.
            with self._lock:
                space = self._sync(study, check_settings=False).intersection or {}
        return {name: dist for name, dist in sorted(space.items()) if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        space = self._gene_space(search_space)
        with self._lock:
            index = self._sync(study, check_settings=True)
            if self._has_lineage(trial, index):
                # A heartbeat retry: it keeps its lineage, its parameters, and the genes of
                # its slot's proposal that its dead attempt had not drawn yet.
                return self._redrawn(study, trial, index, space)
            proposal = self._propose(study, trial, index, space)
            proposal = self._avoid_repeat(study, trial, index, space, proposal)
            self._write_lineage(study, trial, index, proposal.lineage)
            if index.others_unfinished(trial.number):
                proposal = self._settle_contested(study, trial, space, proposal)
        if proposal.genes is None or len(space) == 0:
            return {}
        return _to_params(space, proposal)

    def _redrawn(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, space: GeneSpace
    ) -> dict[str, Any]:
        """A heartbeat retry's genotype: the proposal of its slot, derived again.

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
            return {}
        generation, slot = int(lineage["generation"]), lineage.get("slot")
        proposal = self._proposal_at(study, trial, index, space, generation, slot)
        proposal = self._avoid_repeat(study, trial, index, space, proposal)
        if proposal.genes is None or json.loads(json.dumps(proposal.lineage)) != lineage:
            return {}
        return _to_params(space, proposal)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        with self._lock:
            position = _place(self._sync(study, check_settings=False), trial)
        rng = _seeding.derived_rng(
            self._entropy, _seeding.INDEPENDENT, position, _seeding.stable_hash(param_name)
        )
        space = self._gene_space({param_name: param_distribution})
        return space.decode(space.random(rng))[param_name]

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # A trial that never asked for relative parameters (all of them enqueued, or none at
        # all) still takes its place in the search, so that it is counted like any other.
        if len(study.directions) > 1:
            return
        if _keys.LINEAGE_KEY in trial.system_attrs:
            return
        with self._lock:
            index = self._sync(study, check_settings=False)
            if self._has_lineage(trial, index):
                return
            proposal = self._propose(study, trial, index, space=None)
            self._write_lineage(study, trial, index, proposal.lineage)

    # ----------------------------------------------------------------------------------------
    # BaseGASampler interface, answered from the lineage records.

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        with self._lock:
            index = self._sync(study, check_settings=False)
            lineage = trial.system_attrs.get(_keys.LINEAGE_KEY) or index.written.get(trial.number)
            if lineage is not None:
                return int(lineage["generation"])
            return self._assign(index, trial.number, enqueued=False)[0]

    def get_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        with self._lock:
            index = self._sync(study, check_settings=False)
            numbers = [m.number for m in index.by_generation.get(generation, [])]
        return self._frozen(study, numbers)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        if generation == 0:
            return []
        return self.select_parent(study, generation)

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The population (best first) that generation ``generation`` starts from."""
        with self._lock:
            index = self._sync(study, check_settings=False)
            numbers = self._population(study, index, generation - 1)
        return self._frozen(study, numbers)

    # ----------------------------------------------------------------------------------------
    # Reading storage.

    def _sync(self, study: Study, *, check_settings: bool, fresh: bool = False) -> StudyIndex:
        key = (id(study._storage), study._study_id)
        entry = self._indexes.get(key)
        if entry is None:
            # The storage object is kept alive with the index, so its id is never reused.
            entry = (study._storage, StudyIndex(study.direction, rank_pruned=self._rank_pruned))
            self._indexes[key] = entry
        index = entry[1]
        if check_settings and not index.settings_checked:
            self._check_settings(study)
            index.settings_checked = True
        if fresh:  # past Optuna's view of the study, which it keeps for a whole trial
            index.update(study._storage.get_all_trials(study._study_id, deepcopy=False))
        else:
            index.update(study._get_trials(deepcopy=False, use_cache=True))
        return index

    @staticmethod
    def _has_lineage(trial: FrozenTrial, index: StudyIndex) -> bool:
        return _keys.LINEAGE_KEY in trial.system_attrs or trial.number in index.written

    @staticmethod
    def _frozen(study: Study, numbers: list[int]) -> list[FrozenTrial]:
        by_number = {t.number: t for t in study._get_trials(deepcopy=False, use_cache=True)}
        return [by_number[n] for n in numbers if n in by_number]

    def _settings(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "n_elites": self._n_elites,
            "exploitation_trials_per_elite": self._exploitation.n_variants,
            "reevaluate_elites": self._reevaluate_elites,
        }

    def _options(self) -> dict[str, Any]:
        return {
            "selection": repr(self._selection),
            "crossover": repr(self._crossover),
            "mutation": repr(self._mutation),
            "adoption": repr(self._adoption),
            "exploitation": repr(self._exploitation),
            "momentum": self._momentum,
            "mutate_first_generation": self._mutate_first_generation,
            "ideal_value": self._ideal_value,
            "avoid_duplicates": self._avoid_duplicates,
            "duplicate_tolerance": self._duplicate_tolerance,
            "surrogate_candidates": self._surrogate_candidates,
            "sampled_candidates": self._sampled_candidates,
            "rank_pruned_by_rung": self._rank_pruned,
        }

    def _check_settings(self, study: Study) -> None:
        stored = study._storage.get_study_system_attrs(study._study_id).get(_keys.SETTINGS_KEY)
        mine = {"structure": self._settings(), "options": self._options()}
        if stored is None:
            study._storage.set_study_system_attr(study._study_id, _keys.SETTINGS_KEY, mine)
            return
        changed = {
            k: (v, mine["structure"].get(k))
            for k, v in stored.get("structure", {}).items()
            if mine["structure"].get(k) != v
        }
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"BioTuneSampler settings differ from those study `{study.study_name}` was "
                f"started with ({what}); resume it with the same settings or start a new study."
            )
        options = {
            k: (v, mine["options"].get(k))
            for k, v in stored.get("options", {}).items()
            if mine["options"].get(k) != v
        }
        if options:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in options.items())
            warnings.warn(
                f"Study `{study.study_name}` continues with other BioTuneSampler options than it "
                f"was started with ({what}).",
                stacklevel=3,
            )

    # ----------------------------------------------------------------------------------------
    # Where a new trial goes.

    def _assign(
        self, index: StudyIndex, number: int, *, enqueued: bool, pending: int = 0
    ) -> tuple[int, int | None]:
        """Generation and slot of a new trial.

        A generation stays open until as many of its slots as it has members hold a finished
        trial; trials asked meanwhile (parallel workers) take further slots of it. The
        generation therefore overshoots by at most the number of workers, and never stalls.
        """
        generation = index.max_generation
        if self._is_closed(index, generation):
            generation += 1
        if enqueued and generation > 0:
            return generation, None
        return generation, index.next_slot(generation, skip=pending)

    def _propose(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, space: GeneSpace | None
    ) -> _Proposal:
        if space is not None and len(space) == 0:
            space = None  # nothing to propose (e.g. the first trial); the lineage still counts
        enqueued = "fixed_params" in trial.system_attrs
        # Trials created before this one whose slots are not visible yet (parallel workers).
        pending = index.pending_before(trial.number)
        generation, slot = self._assign(index, trial.number, enqueued=enqueued, pending=pending)
        return self._proposal_at(study, trial, index, space, generation, slot)

    def _proposal_at(
        self,
        study: Study,
        trial: FrozenTrial,
        index: StudyIndex,
        space: GeneSpace | None,
        generation: int,
        slot: int | None,
    ) -> _Proposal:
        """The proposal for ``slot`` of ``generation``: its role, lineage and genotype."""
        enqueued = "fixed_params" in trial.system_attrs
        # Streams are keyed by the trial's place in the search, not its number: a dead trial
        # and its retry shift the numbers of every later trial, not their positions.
        position = _place(index, trial)
        lineage: dict[str, Any] = {"generation": generation, "slot": slot, "parents": []}
        if generation == 0 or slot is None:
            lineage["role"] = _keys.ROLE_INIT if generation == 0 else _keys.ROLE_IMMIGRANT
            genes = None
            if space is not None:
                rng = _seeding.derived_rng(
                    self._entropy, _seeding.INIT, generation, slot or 0, position
                )
                genes = self._random_genotype(rng, space, enforce_rules=not enqueued)
            return _Proposal(genes, lineage)

        n_reeval = self._n_elites if self._reevaluate_elites else 0
        n_exploit = self._n_elites * self._exploitation.n_variants
        n_elites = min(self._n_elites, len(self._population(study, index, generation - 1)))
        assert slot is not None
        if slot < n_reeval and slot < n_elites:
            elite = self._population_members(study, index, generation - 1)[slot]
            lineage.update(role=_keys.ROLE_ELITE, parents=[elite.number], elite=slot)
            genes = self._genes(index, elite, space) if space is not None else None
            return _Proposal(genes, lineage, reference=elite, reference_genes=genes)
        # (Above and below: a pending trial, another worker between creating its trial and
        # writing its lineage, takes one of the lowest free slots, which this trial skipped;
        # so under parallel workers the slots, hence the roles, stay those of the schedule.)
        k, variant = divmod(slot - n_reeval, self._exploitation.n_variants)
        if 0 <= slot - n_reeval < n_exploit and k < n_elites:
            elite = self._population_members(study, index, generation - 1)[k]
            lineage.update(role=_keys.ROLE_EXPLOIT, parents=[elite.number], elite=k)
            return self._exploit(index, elite, generation, k, variant, space, lineage)
        return self._breed(study, index, position, generation, slot, space, lineage)

    def _exploit(
        self,
        index: StudyIndex,
        elite: Member,
        generation: int,
        k: int,
        variant: int,
        space: GeneSpace | None,
        lineage: dict[str, Any],
    ) -> _Proposal:
        """Variant ``variant`` of the exploitation of elite ``k`` in ``generation``."""
        adaptive = getattr(self._exploitation, "adaptive", False)
        if adaptive:
            lineage["step"] = self._exploitation_step(index, elite, generation)
        if space is None:
            return _Proposal(None, lineage)
        elite_genes = self._genes(index, elite, space)
        # Both variants of a pair share the gene and delta (or the direction and step).
        rng = _seeding.derived_rng(self._entropy, _seeding.EXPLOIT, generation, k)
        eligible = self._exploitable(elite_genes, space)
        if adaptive:
            variants = self._exploitation.variants(  # type: ignore[call-arg]
                elite_genes, eligible, rng, space, step=lineage["step"]
            )
        else:
            variants = self._exploitation.variants(elite_genes, eligible, rng, space)
        return _Proposal(variants[variant], lineage, elite, elite_genes)

    def _exploitation_step(self, index: StudyIndex, elite: Member, generation: int) -> float:
        """The adaptive step of ``elite`` in ``generation``, derived from stored steps.

        The last round that exploited this very member failed (it is still the elite): the
        step of that round, shrunk. Else, a variant that replaced its elite: its step, grown.
        Else a new elite: the initial step.
        """
        operator: Any = self._exploitation
        for g in range(generation - 1, -1, -1):
            for m in index.by_generation.get(g, []):
                exploited = m.lineage.get("parents") == [elite.number] and "step" in m.lineage
                if m.role == _keys.ROLE_EXPLOIT and exploited:
                    return operator.next_step(float(m.lineage["step"]), success=False)
        if elite.role == _keys.ROLE_EXPLOIT and "step" in elite.lineage:
            return operator.next_step(float(elite.lineage["step"]), success=True)
        return float(operator.initial_step)

    def _settle_contested(
        self, study: Study, trial: FrozenTrial, space: GeneSpace, proposal: _Proposal
    ) -> _Proposal:
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
        index = self._sync(study, check_settings=False, fresh=True)
        if not index.slot_taken_by_another(trial.number, generation, slot):
            return proposal
        claimed = [
            int(lin["slot"])
            for lin in index.unfinished_lineages
            if lin["generation"] == generation and lin.get("slot") is not None
        ]
        beyond = max([self.generation_size - 1, *claimed, *index.finished_slots[generation]]) + 1
        position = _place(index, trial)
        moved = {"generation": generation, "slot": beyond, "parents": []}
        proposal = self._breed(study, index, position, generation, beyond, space, moved)
        proposal = self._avoid_repeat(study, trial, index, space, proposal)
        self._write_lineage(study, trial, index, proposal.lineage)
        return proposal

    def _breed(
        self,
        study: Study,
        index: StudyIndex,
        position: int,
        generation: int,
        slot: int,
        space: GeneSpace | None,
        lineage: dict[str, Any],
    ) -> _Proposal:
        versions, ext = self._current_population(study, index, generation)
        pool = self._mating_pool(index, generation, versions)
        keys = (_seeding.OFFSPRING, generation, slot, position)
        rng = _seeding.derived_rng(self._entropy, *keys)
        if len(pool) <= 2:
            lineage.update(role=_keys.ROLE_IMMIGRANT, pool=[m.number for m in pool])
            genes = self._random_genotype(rng, space, enforce_rules=True) if space else None
            return _Proposal(genes, lineage)
        child = self._child(index, pool, ext, rng, space)
        if space is not None and self._surrogate_candidates > 1:
            child = self._best_candidate(study, index, pool, ext, space, child, keys)
            if child.sampled:
                lineage["candidate"] = "sampled"
        lineage.update(
            role=_keys.ROLE_OFFSPRING,
            parents=[child.parents[0].number, child.parents[1].number],
            prototype=child.prototype.number,
            pool=[m.number for m in pool],
        )
        return _Proposal(child.genes, lineage)

    def _child(
        self,
        index: StudyIndex,
        pool: list[Member],
        ext: dict[int, float],
        rng: np.random.Generator,
        space: GeneSpace | None,
    ) -> _Child:
        """One child of the mating pool: selection, crossover, mutation, adoption, momentum."""
        i1, i2, i3 = self._selection.select(len(pool), 3, rng)
        p1, p2, prototype = pool[i1], pool[i2], pool[i3]
        if space is None:
            return _Child(None, (p1, p2), prototype)
        x1, x2 = self._genes(index, p1, space), self._genes(index, p2, space)
        child = self._crossover.crossover(x1, x2, rng, space)
        e = 0.5 * (ext.get(p1.number, 0.0) + ext.get(p2.number, 0.0))
        child = self._mutation.mutate(child, e, rng, space)
        child = self._adoption.adopt(
            child, x1, x2, self._genes(index, prototype, space), rng, space
        )
        if self._momentum > 0.0:
            step = 0.5 * (self._velocity(index, p1, space) + self._velocity(index, p2, space))
            numerical = ~space.is_categorical
            child[numerical] = np.clip(child[numerical] + self._momentum * step[numerical], 0, 1)
        return _Child(child, (p1, p2), prototype)

    def _best_candidate(
        self,
        study: Study,
        index: StudyIndex,
        pool: list[Member],
        ext: dict[int, float],
        space: GeneSpace,
        first: _Child,
        keys: tuple[int, ...],
    ) -> _Child:
        """Of ``surrogate_candidates`` children (``first`` and more from their own streams),
        the one TPE's density ratio over the finished trials ranks best; a child repeating a
        configuration the study holds is only taken when all do."""
        ranker = self._ranker(index, space)
        if not ranker.ready:
            return first
        children = [first] + [
            self._child(index, pool, ext, _seeding.derived_rng(self._entropy, *keys, c), space)
            for c in range(1, self._surrogate_candidates)
        ]
        located = biotune_gene_indices(space.names)
        drawn = ranker.sample(
            _seeding.derived_rng(self._entropy, *keys, self._surrogate_candidates),
            self._sampled_candidates,
        )
        children += [
            _Child(genes, first.parents, first.prototype, sampled=True)
            for genes in drawn
            if _selects_a_block(genes, located)
        ]
        if self._avoid_duplicates:
            held = self._held_configurations(study, index, space)
            children = [c for c in children if not held(c.genes)] or children
        scores = ranker.scores([c.genes for c in children])
        return children[int(np.argmax(scores))]

    def _ranker(self, index: StudyIndex, space: GeneSpace) -> CandidateRanker:
        seen = (len(index.members), max(index.members, default=-1))
        cached = index.rankers.get(space.key)
        if cached is None or cached[0] != seen:
            cached = index.rankers[space.key] = (
                seen,
                CandidateRanker(
                    list(index.members.values()),
                    space,
                    rows=index.observation_rows.setdefault(space.key, {}),
                ),
            )
        return cached[1]

    # ----------------------------------------------------------------------------------------
    # No accidental re-evaluation.

    def _avoid_repeat(
        self,
        study: Study,
        trial: FrozenTrial,
        index: StudyIndex,
        space: GeneSpace,
        proposal: _Proposal,
    ) -> _Proposal:
        """Move a proposal that repeats a configuration the study holds (option
        ``avoid_duplicates``): perturbed with growing steps, else redrawn; the number of
        tries is recorded in the lineage as ``repeat_avoided``."""
        if not self._avoid_duplicates or proposal.genes is None or len(space) == 0:
            return proposal
        if proposal.lineage["role"] == _keys.ROLE_ELITE or "fixed_params" in trial.system_attrs:
            return proposal  # a deliberate re-evaluation, or the user's own parameters
        held = self._held_configurations(study, index, space)
        if not held(proposal.genes):
            return proposal
        rng = _seeding.derived_rng(self._entropy, _seeding.UNIQUE, _place(index, trial))
        genes, tries = self._unrepeated(proposal.genes, held, rng, space)
        proposal.lineage["repeat_avoided"] = tries
        return _Proposal(genes, proposal.lineage, proposal.reference, proposal.reference_genes)

    def _unrepeated(
        self,
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
            if _selects_a_block(candidate, located) and not held(candidate):
                return candidate, attempt + 1
        for attempt in range(_MAX_REDRAWS):
            candidate = self._random_genotype(rng, space, enforce_rules=True)
            if not held(candidate):
                return candidate, _MAX_PERTURBATIONS + attempt + 1
        return genes, -1  # a small discrete space that the study has exhausted

    def _held_configurations(
        self, study: Study, index: StudyIndex, space: GeneSpace
    ) -> Callable[[np.ndarray], bool]:
        """Whether a genotype repeats a finished member's or a running trial's configuration."""
        finished, added = index.configurations.setdefault(
            space.key, (ConfigurationSet(space, tolerance=self._duplicate_tolerance), set())
        )
        for number, member in index.members.items():
            if number not in added and all(name in member.params for name in space.names):
                finished.add(self._genes(index, member, space))
                added.add(number)
        running = ConfigurationSet(space, tolerance=self._duplicate_tolerance)
        for trial in study._get_trials(
            deepcopy=False, states=(TrialState.RUNNING,), use_cache=True
        ):
            if all(name in trial.params for name in space.names):
                running.add(space.encode(trial.params, _no_fill))

        def held(genes: np.ndarray) -> bool:
            return finished.contains(genes) or running.contains(genes)

        return held

    # ----------------------------------------------------------------------------------------
    # Populations, all derived from finished trials and the stored per-generation populations.

    def _population(self, study: Study, index: StudyIndex, generation: int) -> list[int]:
        """Trial numbers (best first) of the population that closed ``generation``.

        Computed once, by the first worker that needs it, and stored in the study so that every
        worker and every later process breeds from the same population.
        """
        memo = index.populations.get(generation)
        if memo is not None:
            return memo
        key = f"{_keys.POPULATION_KEY_PREFIX}{generation}"
        attrs = study._storage.get_study_system_attrs(study._study_id)
        stored = attrs.get(key)
        if stored is None:
            considered, stored = self._close_generation(study, index, generation, attrs)
            if not self._is_closed(index, generation):
                return stored  # a look at a running generation (public API): not stored
            study._storage.set_study_system_attr(
                study._study_id, f"{_keys.CONSIDERED_KEY_PREFIX}{generation}", considered
            )
            study._storage.set_study_system_attr(study._study_id, key, stored)
        index.populations[generation] = list(stored)
        return index.populations[generation]

    def _is_closed(self, index: StudyIndex, generation: int) -> bool:
        assert self.population_size is not None
        size = self.population_size if generation == 0 else self.generation_size
        if generation < index.max_generation:
            return True
        # Trials beyond the schedule's slots count: a slow or dead trial does not hold the
        # generation (a retry that finishes after it closed joins the next closing instead).
        return index.n_finished_slots(generation) >= size

    def _population_members(
        self, study: Study, index: StudyIndex, generation: int
    ) -> list[Member]:
        numbers = self._population(study, index, generation)
        return [index.members[n] for n in numbers if n in index.members]

    def _close_generation(
        self, study: Study, index: StudyIndex, generation: int, attrs: dict[str, Any]
    ) -> tuple[list[int], list[int]]:
        """The trials ranked to close ``generation`` and the population they give, best first.

        Ranked are the generation's newcomers (the elites' best versions, offspring,
        immigrants) and any earlier trial that finished after its own generation closed (a
        retry of a dead trial, under parallel workers): it competes here instead of being lost.
        """
        assert self.population_size is not None
        members = index.by_generation.get(generation, [])
        newcomers = [
            m
            for m in members
            if generation == 0 or m.role in (_keys.ROLE_OFFSPRING, _keys.ROLE_IMMIGRANT)
        ]
        if generation > 0:
            versions, _ = self._current_population(study, index, generation)
            newcomers = versions[: self._n_elites] + newcomers
        late = _late_members(index, generation, attrs)
        ranked = sorted(newcomers + late, key=_rank_key)
        considered = sorted({m.number for m in members} | {m.number for m in late})
        return considered, [m.number for m in ranked[: self.population_size]]

    def _current_population(
        self, study: Study, index: StudyIndex, generation: int
    ) -> tuple[list[Member], dict[int, float]]:
        """The previous population with each elite replaced by its best exploitation so far.

        Returns the members in the previous population's order (elites first) and the
        extinction of each, computed from the previous population's ranks; a replacing variant
        inherits its elite's extinction.
        """
        cached = index.parents_cache.get(generation)
        if cached is None:
            previous = self._population_members(study, index, generation - 1)
            if generation - 1 == 0 and not self._mutate_first_generation:
                ext_values = np.zeros(len(previous))
            else:
                ext_values = extinction(self._regrets(index, [m.loss for m in previous]))
            cached = index.parents_cache[generation] = (previous, ext_values)
        previous, ext_values = cached
        versions = list(previous)
        ext: dict[int, float] = {}
        this_generation = index.by_generation.get(generation, [])
        for k in range(min(self._n_elites, len(previous))):
            best = previous[k]
            for m in this_generation:  # re-evaluations first: their fitness replaces the old
                if m.role == _keys.ROLE_ELITE and m.lineage.get("elite") == k:
                    best = m
            for m in this_generation:
                exploits_elite = m.role == _keys.ROLE_EXPLOIT and m.lineage.get("elite") == k
                if exploits_elite and _rank_key(m) < _rank_key(best):
                    best = m
            versions[k] = best
        for member, value in zip(versions, ext_values):
            ext[member.number] = float(value)
        return versions, ext

    def _mating_pool(
        self, index: StudyIndex, generation: int, versions: list[Member]
    ) -> list[Member]:
        """The current population, best first, less every parent a finished child has beaten."""
        in_pool = {m.number: m for m in versions}
        beaten: set[int] = set()
        for child in index.by_generation.get(generation, []):
            if child.role != _keys.ROLE_OFFSPRING:
                continue
            for parent in child.lineage.get("parents", []):
                if parent in in_pool and _beats(child, in_pool[parent]):
                    beaten.add(parent)
        return sorted((m for m in versions if m.number not in beaten), key=_rank_key)

    def _regrets(self, index: StudyIndex, losses: Sequence[float]) -> np.ndarray:
        """Non-negative regrets of losses in rank order (best first), never decreasing; failed
        trials count as the worst."""
        losses_arr = np.asarray(losses, dtype=float)
        finite = np.isfinite(losses_arr)
        if not finite.any():
            return np.zeros(len(losses_arr))
        if self._ideal_value is not None:
            ideal = float(self._ideal_value)
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

    # ----------------------------------------------------------------------------------------
    # Genotypes.

    def _gene_space(self, search_space: dict[str, BaseDistribution]) -> GeneSpace:
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

    def _genes(self, index: StudyIndex, member: Member, space: GeneSpace) -> np.ndarray:
        cache = index.genes_cache.setdefault(space.key, {})
        genes = cache.get(member.number)
        if genes is None:
            genes = space.encode(
                member.params,
                lambda: _seeding.derived_rng(
                    self._entropy, _seeding.ENCODE, index.position(member.number)
                ),
            )
            cache[member.number] = genes
        return genes

    def _velocity(self, index: StudyIndex, member: Member, space: GeneSpace) -> np.ndarray:
        parents = [
            index.members[p] for p in member.lineage.get("parents", []) if p in index.members
        ]
        if not parents or member.role not in (_keys.ROLE_OFFSPRING, _keys.ROLE_EXPLOIT):
            return np.zeros(len(space))
        mean = np.mean([self._genes(index, p, space) for p in parents], axis=0)
        velocity = self._genes(index, member, space) - mean
        velocity[space.is_categorical] = 0.0
        return velocity

    def _random_genotype(
        self, rng: np.random.Generator, space: GeneSpace, *, enforce_rules: bool
    ) -> np.ndarray:
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

    @staticmethod
    def _exploitable(genes: np.ndarray, space: GeneSpace) -> np.ndarray:
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

    # ----------------------------------------------------------------------------------------
    # Writing storage.

    def _write_lineage(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, lineage: dict[str, Any]
    ) -> None:
        write_trial_attrs(
            study._storage,
            trial._trial_id,
            system_attrs={_keys.LINEAGE_KEY: lineage},
            user_attrs={
                _keys.GENERATION_USER_ATTR: lineage["generation"],
                _keys.ROLE_USER_ATTR: lineage["role"],
                _keys.PARENTS_USER_ATTR: lineage["parents"],
            },
        )
        index.note_written(trial.number, lineage)


def _place(index: StudyIndex, trial: FrozenTrial) -> int:
    """The place in the search of ``trial``'s first attempt (a heartbeat retry's is that of
    the trial it retries), which keys its random streams: every attempt draws the same."""
    history = trial.system_attrs.get(RETRY_HISTORY_KEY)
    first = history[0] if isinstance(history, list) and history else trial.number
    return index.position(int(first))


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


def _selects_a_block(genes: np.ndarray, located: tuple[list[int], int] | None) -> bool:
    if located is None:
        return True
    importance, threshold = located
    return bool((genes[importance] > genes[threshold]).any())


def _no_fill() -> np.random.Generator:
    raise AssertionError("a trial's parameters cover the genes")


def _beats(child: Member, parent: Member) -> bool:
    """Whether a child did better than its parent: ranked above it (the paper's: a lower loss),
    age aside."""
    return child.rank[:2] < parent.rank[:2]


def _rank_key(member: Member) -> tuple[float, float, int]:
    return member.rank


def _to_params(space: GeneSpace, proposal: _Proposal) -> dict[str, Any]:
    assert proposal.genes is not None
    params = space.decode(proposal.genes)
    reference, reference_genes = proposal.reference, proposal.reference_genes
    if reference is None or reference_genes is None:
        return params
    for i, (name, dist) in enumerate(zip(space.names, space.distributions)):
        if proposal.genes[i] == reference_genes[i] and name in reference.params:
            value = reference.params[name]
            if _inside(dist, value):
                params[name] = value
    return params


def _inside(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


class BioTunePlusSampler(BioTuneSampler):
    """BioTune with the search improvements of this toolkit, each an option that can be off.

    The paper's genetic algorithm (Colan et al., arXiv:2508.15367; see :class:`BioTuneSampler`,
    whose defaults stay the paper's preset) with, switched on by default:

    * ``avoid_duplicates``: no trial is spent on a configuration the study already holds;
    * ``adaptive_exploitation``: elite exploitation by :class:`~biotune_optuna.samplers.
      operators.AdaptiveExploitation`, a step per elite adapted by the 1/5 success rule that
      moves one or more genes (the threshold and frozen blocks' importances too), its second
      variant reversing one block's freezing decision (``toggle_blocks``);
    * ``surrogate_candidates`` and ``sampled_candidates``: each offspring slot breeds this many
      children, adds as many more drawn from TPE's estimator of the best trials, and evaluates
      the one TPE's density ratio over the finished trials ranks best;
    * ``mutate_first_generation``: the first generation's children mutate too.

    Generations, roles, storage keys, resumption and parallel workers are those of
    :class:`BioTuneSampler`; a generation still takes ``N + E`` trials.

    Args:
        adaptive_exploitation: Exploit the elites with :class:`~biotune_optuna.samplers.
            operators.AdaptiveExploitation` unless ``exploitation`` is given: a step per elite,
            kept in the lineage, that grows by 1.5 after a round whose better variant replaced
            the elite and shrinks by ``1.5 ** (-1/4)`` after one that did not (the 1/5 success
            rule), along a sparse Gaussian direction over all genes (the threshold and frozen
            blocks' importances too) reflected at the bounds; ``False``: the paper's
            :class:`~biotune_optuna.samplers.operators.EliteExploitation` (paper §III), one
            eligible gene moved by ``0.25 * U(-1, 1)`` either way and clipped.
        toggle_blocks: With adaptive exploitation and BioTune genes, the second variant of each
            pair reverses one block's freezing decision, a step of the plan that small gene
            steps rarely take once a population agrees on which blocks to train (``False``:
            both variants are gene steps).
        avoid_duplicates: See :class:`BioTuneSampler`.
        surrogate_candidates: See :class:`BioTuneSampler` (24 here: TPE's ``n_ei_candidates``).
        sampled_candidates: See :class:`BioTuneSampler` (24 here).
        mutate_first_generation: See :class:`BioTuneSampler`.
        **kwargs: Every other keyword argument of :class:`BioTuneSampler`.
    """

    def __init__(
        self,
        *,
        adaptive_exploitation: bool = True,
        toggle_blocks: bool = True,
        avoid_duplicates: bool = True,
        surrogate_candidates: int = 24,
        sampled_candidates: int = 24,
        mutate_first_generation: bool = True,
        **kwargs: Any,
    ) -> None:
        if adaptive_exploitation and kwargs.get("exploitation") is None:
            kwargs["exploitation"] = AdaptiveExploitation(toggle_blocks=toggle_blocks)
        super().__init__(
            avoid_duplicates=avoid_duplicates,
            surrogate_candidates=surrogate_candidates,
            sampled_candidates=sampled_candidates,
            mutate_first_generation=mutate_first_generation,
            **kwargs,
        )
