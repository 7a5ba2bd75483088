"""BioTune with this toolkit's search improvements (arXiv:2508.15367 plus options).

The paper's genetic algorithm (:class:`~biotune_optuna.samplers.BioTuneSampler`) with the options
that are off in the paper's preset switched on by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import TYPE_CHECKING

from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.samplers import _optuna_bridge as _bridge
from biotune_optuna.samplers._operators import AdaptiveExploitation
from biotune_optuna.samplers._rungs import find_promotion
from biotune_optuna.samplers._rungs import rung_pruner_of
from biotune_optuna.samplers._sampler import BioTuneSampler
from biotune_optuna.trials import RUNG_KEY
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import RungRecord


if TYPE_CHECKING:
    from optuna.study import Study


class BioTunePlusSampler(BioTuneSampler):
    """BioTune with the search improvements of this toolkit, each an option that can be off.

    The paper's genetic algorithm (Colan et al., arXiv:2508.15367; see :class:`BioTuneSampler`,
    whose defaults stay the paper's preset) with, switched on by default:

    * ``avoid_duplicates``: no trial is spent on a configuration the study already holds;
    * ``adaptive_exploitation``: elite exploitation by
      :class:`~biotune_optuna.samplers._operators.AdaptiveExploitation`, a step per elite
      adapted by the 1/5 success rule that
      moves one or more genes (the threshold and frozen blocks' importances too), its second
      variant reversing one block's freezing decision (``toggle_blocks``);
    * ``surrogate_candidates`` and ``sampled_candidates``: each offspring slot breeds this many
      children, adds as many more drawn from TPE's estimator of the best trials, and evaluates
      the one with the best expected improvement under a Gaussian process over the plans the
      genes stand for (``surrogate="gp"``);
    * ``mutate_first_generation``: the first generation's children mutate too.

    **Budget-aware** when the study's pruner is the ``rungs`` pruner
    (:class:`~biotune_optuna.samplers._rungs.RungPruner`, ``[pruner] name = "rungs"``): each new
    plan trains to the first rung of epochs and pauses; before breeding, the sampler promotes
    the best paused plans (the top ``1/η`` of their rung, highest rung first) by making the new
    trial a *continuation* that resumes the paused trial's checkpoint on its fold until the next
    rung; the GA ranks each plan by the furthest rung its chain reached and its value there, so
    parents and children are compared at equal budget (:mod:`~biotune_optuna.samplers._rungs`).

    Generations, roles, storage keys, resumption and parallel workers are those of
    :class:`BioTuneSampler`; a generation still takes ``N + E`` trials.

    Args:
        adaptive_exploitation: Exploit the elites with
            :class:`~biotune_optuna.samplers._operators.AdaptiveExploitation` unless
            ``exploitation`` is given: a step per elite,
            kept in the lineage, that grows by 1.5 after a round whose better variant replaced
            the elite and shrinks by ``1.5 ** (-1/4)`` after one that did not (the 1/5 success
            rule), along a sparse Gaussian direction over all genes (the threshold and frozen
            blocks' importances too) reflected at the bounds; ``False``: the paper's
            :class:`~biotune_optuna.samplers._operators.EliteExploitation` (paper §III), one
            eligible gene moved by ``0.25 * U(-1, 1)`` either way and clipped.
        toggle_blocks: With adaptive exploitation and BioTune genes, the second variant of each
            pair reverses one block's freezing decision, a step of the plan that small gene
            steps rarely take once a population agrees on which blocks to train (``False``:
            both variants are gene steps).
        avoid_duplicates: See :class:`BioTuneSampler`.
        surrogate_candidates: See :class:`BioTuneSampler` (24 here: TPE's ``n_ei_candidates``).
        sampled_candidates: See :class:`BioTuneSampler` (24 here).
        mutate_first_generation: See :class:`BioTuneSampler`.
        surrogate: What ranks the candidates: ``"gp"``, a Gaussian process over the plans the
            genes stand for (:class:`~biotune_optuna.samplers._plan_surrogate.PlanGP`: per
            block the trained mask and the log10 learning-rate multiplier, a mean per data fold,
            hyperparameters by restricted maximum likelihood), scoring each by its expected
            improvement over the best posterior mean evaluated; ``"tpe"``: TPE's density ratio
            (:class:`~biotune_optuna.samplers._surrogate.CandidateRanker`).
        exploitation_candidates: Each exploitation variant of an elite is the one the
            surrogate ranks best of this many drawn by the exploitation operator (each from its
            own stream; once 10 trials have finished); 0 or 1 (the default: on the dev table it
            did not help): the operator's single variant.
        surrogate_paused: In a budget-aware study, the Gaussian process also fits the plans
            paused at a rung, by their value there, with a mean per (fold, rung) (BOHB fits
            its model on the budget with enough observations; here every rung informs it),
            so that the surrogate ranks candidates long before many plans finished; ``False``:
            finished plans only.
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
        surrogate: str = "gp",
        exploitation_candidates: int = 0,
        surrogate_paused: bool = True,
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
        self._options.update(
            surrogate=surrogate,
            exploitation_candidates=exploitation_candidates,
            surrogate_paused=surrogate_paused,
        )
        self._wire()  # with the options above

    # ----------------------------------------------------------------------------------------
    # Budget-aware studies: promotions before breeding (see the class docstring and _rungs).

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        record = self._rung_of(study, trial)
        source = self._source_of(study, record)
        if source is None:
            return super().sample_relative(study, trial, search_space)
        return {name: source.params[name] for name in search_space if name in source.params}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        source = self._source_of(study, rung_record(trial))
        if source is not None and param_name in source.params:
            return source.params[param_name]
        return super().sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        record = rung_record(trial)
        if record is not None and record.source is not None:
            return  # a continuation: its plan's member is the chain's first trial
        super().after_trial(study, trial, state, values)

    def _rung_of(self, study: Study, trial: FrozenTrial) -> RungRecord | None:
        """The trial's rung record, written now if the study is budget-aware and it has none
        (a heartbeat retry keeps the record of the trial it retries)."""
        pruner = rung_pruner_of(study)
        if pruner is None:
            return None
        record = rung_record(trial)
        if record is not None:
            return record
        storage, trial_id = _bridge.storage_of(study), _bridge.trial_id_of(trial)
        with self._lock:
            record = find_promotion(study, pruner, _all_trials(study))
            record = record or RungRecord(until=pruner.rungs[0])
            storage.set_trial_system_attr(trial_id, RUNG_KEY, record.to_json())
            if record.source is not None and _promoted_before(study, trial.number, record):
                record = RungRecord(until=pruner.rungs[0])  # another worker promoted it too
                storage.set_trial_system_attr(trial_id, RUNG_KEY, record.to_json())
        trial.system_attrs[RUNG_KEY] = record.to_json()
        return record

    @staticmethod
    def _source_of(study: Study, record: RungRecord | None) -> FrozenTrial | None:
        """The paused trial a continuation continues (``None``: not a continuation)."""
        if record is None or record.source is None:
            return None
        storage = _bridge.storage_of(study)
        number = record.source
        return storage.get_trial(
            storage.get_trial_id_from_study_id_trial_number(_bridge.study_id_of(study), number)
        )


def _promoted_before(study: Study, number: int, record: RungRecord) -> bool:
    """Whether a trial other than ``number`` continues the same paused trial: two workers
    promoted it at once. Each then breeds instead (the plan stays promotable); since each
    checks after writing its own record, never do both continue it."""
    for other in _all_trials(study):
        if other.number != number:
            theirs = rung_record(other)
            if theirs is not None and theirs.source == record.source:
                return True
    return False


def _all_trials(study: Study) -> list[FrozenTrial]:
    """Every trial as stored now (other workers' too), not copied."""
    return _bridge.storage_of(study).get_all_trials(_bridge.study_id_of(study), deepcopy=False)
