"""BioTune with this toolkit's search improvements (arXiv:2508.15367 plus options).

The paper's genetic algorithm (:class:`~biotune_optuna.samplers.BioTuneSampler`) with the options
that are off in the paper's preset switched on by default.
"""

from __future__ import annotations

from typing import Any

from biotune_optuna.samplers._operators import AdaptiveExploitation
from biotune_optuna.samplers._sampler import BioTuneSampler


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
        self._options.update(surrogate=surrogate, exploitation_candidates=exploitation_candidates)
        self._wire()  # with the options above
