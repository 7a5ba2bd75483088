"""BioTune's budget: ``N + g(N + E)`` trials for ``g`` generations (arXiv:2508.15367)."""

from __future__ import annotations


#: The paper's schedule (arXiv:2508.15367, §IV): a population of ``N = 10``, ``E = 3`` elites.
#: The one place these defaults are written (:class:`~biotune_optuna.samplers.GASchedule`,
#: :class:`~biotune_optuna.samplers.BioTuneSampler` and :func:`trial_budget` take them from here).
PAPER_POPULATION_SIZE = 10
PAPER_N_ELITES = 3


def trial_budget(
    generations: int,
    *,
    population_size: int = PAPER_POPULATION_SIZE,
    n_elites: int = PAPER_N_ELITES,
    exploitation_trials_per_elite: int = 2,
    reevaluate_elites: bool = False,
) -> int:
    """Number of trials BioTune spends on an initial population and ``generations`` generations.

    Each generation evaluates ``exploitation_trials_per_elite`` variants of each of the
    ``n_elites`` elites and ``population_size - n_elites`` new members (offspring or immigrants),
    and, with ``reevaluate_elites``, the elites once more:
    ``N + G * (N - E + V * E [+ E])``. The paper's 10/3/10 setting gives
    ``10 + 10 * 13 = 140`` (Colan et al., arXiv:2508.15367, §IV).

    Args:
        generations: Number of generations after the initial population.
        population_size: Population size ``N``.
        n_elites: Number of elites ``E``.
        exploitation_trials_per_elite: Trials per elite per generation ``V`` (2: ``+delta``
            and ``-delta``).
        reevaluate_elites: Whether each generation re-evaluates its elites.

    Returns:
        The number of trials.
    """
    if generations < 0:
        raise ValueError(f"`generations` must be non-negative, got {generations}.")
    per_generation = generation_size(
        population_size=population_size,
        n_elites=n_elites,
        exploitation_trials_per_elite=exploitation_trials_per_elite,
        reevaluate_elites=reevaluate_elites,
    )
    return population_size + generations * per_generation


def generation_size(
    *,
    population_size: int,
    n_elites: int,
    exploitation_trials_per_elite: int,
    reevaluate_elites: bool,
) -> int:
    """Trials in each generation after the initial population (see :func:`trial_budget`)."""
    reevaluations = n_elites if reevaluate_elites else 0
    return population_size - n_elites + exploitation_trials_per_elite * n_elites + reevaluations
