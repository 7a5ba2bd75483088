"""The BioTune sampler: the paper's genetic algorithm over fine-tuning genes, as an Optuna sampler.

:class:`BioTuneSampler` is the paper's preset (Colan, Davila, Hasegawa, arXiv:2508.15367, §III):
linear rank selection, blend crossover, parent-prototype adoption, extinction-scaled mutation,
elites re-evaluated and exploited, immigrants; :class:`BioTunePlusSampler` switches on the
improvements (no repeated configurations, adaptive exploitation, TPE-ranked candidates). The
operators are injected (:mod:`biotune_optuna.samplers._operators`); every decision is written to
the study's storage, so a study continues in a new process exactly where it stopped.

The class is wiring, as Optuna's NSGA-II sampler is: its roles are collaborators with explicit
inputs, each in its own private module of this package: where a new trial goes (``_placement``),
elite exploitation and breeding (``_offspring``), populations (``_populations``), genotypes
(``_genotypes``), repeat avoidance (``_repeats``) and reading storage (``_study_reader``); the
GA schedule is ``_schedule``.
"""

from __future__ import annotations

from collections.abc import Sequence
import threading
from typing import Any
from typing import TYPE_CHECKING

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseGASampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.samplers import _keys
from biotune_optuna.samplers import _seeding
from biotune_optuna.samplers import _warm_start
from biotune_optuna.samplers._budget import generation_size
from biotune_optuna.samplers._budget import PAPER_N_ELITES
from biotune_optuna.samplers._budget import PAPER_POPULATION_SIZE
from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.samplers._configurations import DUPLICATE_TOLERANCE
from biotune_optuna.samplers._genotypes import Genotypes
from biotune_optuna.samplers._offspring import Offspring
from biotune_optuna.samplers._offspring import PLUS_OPTIONS_OFF
from biotune_optuna.samplers._operators import BaseAdoption
from biotune_optuna.samplers._operators import BaseCrossover
from biotune_optuna.samplers._operators import BaseExploitation
from biotune_optuna.samplers._operators import BaseMutation
from biotune_optuna.samplers._operators import BaseSelection
from biotune_optuna.samplers._operators import BlendCrossover
from biotune_optuna.samplers._operators import EliteExploitation
from biotune_optuna.samplers._operators import ExtinctionMutation
from biotune_optuna.samplers._operators import LinearRankSelection
from biotune_optuna.samplers._operators import ParentPrototypeAdoption
from biotune_optuna.samplers._placement import Placement
from biotune_optuna.samplers._populations import Populations
from biotune_optuna.samplers._proposal import to_params
from biotune_optuna.samplers._repeats import RepeatAvoidance
from biotune_optuna.samplers._schedule import GASchedule
from biotune_optuna.samplers._study_reader import frozen_trials
from biotune_optuna.samplers._study_reader import has_lineage
from biotune_optuna.samplers._study_reader import StudyReader


if TYPE_CHECKING:
    from optuna.study import Study


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
    BioTune genes (:data:`~biotune_optuna.plan.IMPORTANCE_PREFIX` and
    :data:`~biotune_optuna.plan.THRESHOLD_PARAM`), random genotypes are resampled until they
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
            (finished or running; when two are the same:
            :func:`~biotune_optuna.samplers._configurations.duplicate_trials`): a proposal
            that repeats one is perturbed, with growing steps, or redrawn (lineage:
            ``repeat_avoided``); off in the paper. An elite's re-evaluation is left alone.
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
        warm_start: Good plans of earlier studies, best first (a spec names studies or tables):
            the first ``N`` seed generation 0 and the surrogate; none in the paper (_warm_start).
        seed: Seed for the random streams.
    """

    def __init__(
        self,
        *,
        population_size: int = PAPER_POPULATION_SIZE,
        n_elites: int = PAPER_N_ELITES,
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
        warm_start: Sequence[dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        schedule = GASchedule(population_size=population_size, n_elites=n_elites)
        super().__init__(population_size=schedule.population_size)
        self._n_elites = schedule.n_elites
        self._exploitation = exploitation or EliteExploitation()
        self._reevaluate_elites = reevaluate_elites
        self._fixed_search_space = dict(search_space) if search_space is not None else None
        self._streams = _seeding.Streams(seed)
        self._warm_start = _warm_start.check_warm_start(
            warm_start, search_space, limit=population_size, tolerance=duplicate_tolerance
        )
        self._operators = {
            "selection": selection or LinearRankSelection(),
            "crossover": crossover or BlendCrossover(),
            "mutation": mutation or ExtinctionMutation(),
            "adoption": adoption or ParentPrototypeAdoption(),
            "exploitation": self._exploitation,
        }
        self._options = {
            "momentum": float(momentum),
            "mutate_first_generation": mutate_first_generation,
            "ideal_value": ideal_value,
            "avoid_duplicates": avoid_duplicates,
            "duplicate_tolerance": float(duplicate_tolerance),
            "surrogate_candidates": surrogate_candidates,
            "sampled_candidates": sampled_candidates,
            "rank_pruned_by_rung": bool(rank_pruned_by_rung),
        }
        self._wire()

    def _wire(self) -> None:
        """Build the collaborators, each from its explicit inputs (they cache, never own state)."""
        options, streams = self._options, self._streams
        self._lock = threading.RLock()
        rank_pruned = options["rank_pruned_by_rung"]
        self._reader = StudyReader(rank_pruned=rank_pruned, settings=self._settings())
        self._genotypes = Genotypes(streams=streams)
        self._populations = Populations(
            population_size=self._population_size,
            n_elites=self._n_elites,
            generation_size=self.generation_size,
            mutate_first_generation=options["mutate_first_generation"],
            ideal_value=options["ideal_value"],
        )
        self._repeats = RepeatAvoidance(
            enabled=options["avoid_duplicates"],
            tolerance=options["duplicate_tolerance"],
            streams=streams,
            genotypes=self._genotypes,
        )
        offspring = Offspring(
            **self._operators,
            momentum=options["momentum"],
            surrogate_candidates=options["surrogate_candidates"],
            sampled_candidates=options["sampled_candidates"],
            **{key: options.get(key, off) for key, off in PLUS_OPTIONS_OFF.items()},
            streams=streams,
            genotypes=self._genotypes,
            populations=self._populations,
            repeats=self._repeats,
        )
        self._placement = Placement(
            n_elites=self._n_elites,
            exploitation_variants=self._exploitation.n_variants,
            reevaluate_elites=self._reevaluate_elites,
            generation_size=self.generation_size,
            streams=streams,
            genotypes=self._genotypes,
            populations=self._populations,
            offspring=offspring,
            repeats=self._repeats,
            reader=self._reader,
        )

    def _settings(self) -> dict[str, dict[str, Any]]:
        """What a study stores of this sampler: its structure (checked on resume) and
        options (a change is warned about)."""
        structure = {
            "population_size": self.population_size,
            "n_elites": self._n_elites,
            "exploitation_trials_per_elite": self._exploitation.n_variants,
            "reevaluate_elites": self._reevaluate_elites,
        }
        operators = {key: repr(operator) for key, operator in self._operators.items()}
        return {"structure": structure, "options": {**operators, **self._options}}

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
        self._streams.reseed()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_reader", "_genotypes", "_populations", "_repeats", "_placement"):
            del state[key]  # rebuilt by _wire from the settings
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._wire()

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
                space = self._reader.sync(study, check_settings=False).intersection or {}
        return {name: dist for name, dist in sorted(space.items()) if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        space = self._genotypes.space(search_space)
        with self._lock:
            index = self._reader.sync(study, check_settings=True)
            _warm_start.load_warm_start(study, index, self._warm_start)
            if has_lineage(trial, index):
                # A heartbeat retry: it keeps its lineage, its parameters, and the genes of
                # its slot's proposal that its dead attempt had not drawn yet.
                proposal = self._placement.redrawn(study, trial, index, space)
                return {} if proposal is None else to_params(space, proposal)
            proposal = self._placement.propose(study, trial, index, space)
            proposal = self._repeats.avoid(study, trial, index, space, proposal)
            self._reader.write_lineage(study, trial, index, proposal.lineage)
            if index.others_unfinished(trial.number):
                proposal = self._placement.settle_contested(study, trial, space, proposal)
        if proposal.genes is None or len(space) == 0:
            return {}
        return to_params(space, proposal)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        with self._lock:
            position = self._reader.sync(study, check_settings=False).place(trial)
        rng = self._streams.rng(_seeding.INDEPENDENT, position, _seeding.stable_hash(param_name))
        space = self._genotypes.space({param_name: param_distribution})
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
            index = self._reader.sync(study, check_settings=False)
            if has_lineage(trial, index):
                return
            proposal = self._placement.propose(study, trial, index, space=None)
            self._reader.write_lineage(study, trial, index, proposal.lineage)

    # ----------------------------------------------------------------------------------------
    # BaseGASampler interface, answered from the lineage records.

    def get_trial_generation(self, study: Study, trial: FrozenTrial) -> int:
        with self._lock:
            index = self._reader.sync(study, check_settings=False)
            lineage = trial.system_attrs.get(_keys.LINEAGE_KEY) or index.written.get(trial.number)
            if lineage is not None:
                return int(lineage["generation"])
            return self._placement.assign(index, enqueued=False)[0]

    def get_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        with self._lock:
            index = self._reader.sync(study, check_settings=False)
            numbers = [m.number for m in index.by_generation.get(generation, [])]
        return frozen_trials(study, numbers)

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        if generation == 0:
            return []
        return self.select_parent(study, generation)

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """The population (best first) that generation ``generation`` starts from."""
        with self._lock:
            index = self._reader.sync(study, check_settings=False)
            numbers = self._populations.population(study, index, generation - 1)
        return frozen_trials(study, numbers)
