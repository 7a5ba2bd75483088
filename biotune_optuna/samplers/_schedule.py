"""The GA schedule ``(N, E)``: population size and elites, checked and defaulted here only.

The paper's schedule (Colan, Davila, Hasegawa, arXiv:2508.15367, §III-§IV) is ``N = 10``
members and ``E = 3`` elites: an initial population of ``N`` trials, then generations of
``N + E`` trials (``N - E`` offspring and two exploitation variants per elite), each generation
on the next data fold. Every layer that needs ``N`` and ``E`` (the sampler, a study spec, the
fold a trial of any sampler trains on) takes them from a :class:`GASchedule`.
"""

from __future__ import annotations

from typing import NamedTuple

import optuna

from biotune_optuna.options import Option
from biotune_optuna.samplers._budget import PAPER_N_ELITES
from biotune_optuna.samplers._budget import PAPER_POPULATION_SIZE
from biotune_optuna.samplers._budget import trial_budget
from biotune_optuna.trials import fold_of_generation
from biotune_optuna.trials import GENERATION_ATTR
from biotune_optuna.trials import retried_trial_number
from biotune_optuna.trials import stored_user_attrs


#: The schedule as a spec's plain options, each checked alone (:class:`GASchedule` checks both).
SCHEDULE_OPTIONS = {"population_size": Option(int, 2), "n_elites": Option(int, 0)}


class _Fields(NamedTuple):
    population_size: int
    n_elites: int


class GASchedule(_Fields):
    """BioTune's population size ``N`` and number of elites ``E`` (the paper's 10 and 3).

    A tuple ``(N, E)`` whose values were checked when it was made:
    ``GASchedule(population_size, n_elites)`` raises :class:`ValueError` when either is outside
    its range (:meth:`problem`).

    Attributes:
        population_size: ``N``, an int >= 2.
        n_elites: ``E``, an int in ``[0, N)``.
    """

    __slots__ = ()

    def __new__(
        cls, population_size: int = PAPER_POPULATION_SIZE, n_elites: int = PAPER_N_ELITES
    ) -> GASchedule:
        problem = cls.problem(population_size, n_elites)
        if problem is not None:
            key, detail = problem
            raise ValueError(f"`{key}` must be {detail}.")
        return super().__new__(cls, population_size, n_elites)

    @staticmethod
    def problem(population_size: int, n_elites: int) -> tuple[str, str] | None:
        """The rule of a schedule: ``(setting, what it must be and was)`` when ``(N, E)``
        breaks it, e.g. ``("population_size", ">= 2, got 0")``; ``None``: a valid schedule."""
        for key, value in (("population_size", population_size), ("n_elites", n_elites)):
            if not isinstance(value, int):
                return key, f"an int, got {value!r}"
        if population_size < 2:
            return "population_size", f">= 2, got {population_size}"
        if not 0 <= n_elites < population_size:
            return (
                "n_elites",
                f">= 0 and below population_size ({population_size}), got {n_elites}",
            )
        return None

    def options(self) -> dict[str, int]:
        """The schedule as sampler options: ``{"population_size": N, "n_elites": E}``."""
        return self._asdict()

    def trial_budget(self, generations: int) -> int:
        """Trials of the initial population and ``generations`` generations (paper §IV)."""
        return trial_budget(
            generations, population_size=self.population_size, n_elites=self.n_elites
        )

    def generation_of_trial_number(self, number: int) -> int:
        """The generation trial ``number`` would belong to in a one-worker BioTune run.

        Used for trials that carry no ``generation`` user attr (other samplers), so that every
        sampler sees the same folds at the same trial numbers: trials ``0..N−1`` are generation
        0, then each generation takes ``N + E`` trials (the paper's budget formula).
        """
        if number < self.population_size:
            return 0
        per_generation = self.population_size + self.n_elites  # N + g(N + E), one g at a time
        return 1 + (number - self.population_size) // per_generation

    def fold_of_trial(self, trial: optuna.trial.BaseTrial, n_folds: int) -> int:
        """The data fold of a trial: by its ``generation`` user attr, else by its number.

        A heartbeat retry stands in for the trial it retries: its number is that trial's
        (:func:`~biotune_optuna.trials.retried_trial_number`), so it trains on the same fold.
        Trials of other samplers (no ``generation``) are placed as a one-worker BioTune run
        with this schedule would place them. This is the fold function the engine's objectives
        take (``fold_of_trial``).
        """
        generation = stored_user_attrs(trial).get(GENERATION_ATTR)
        if generation is None:
            generation = self.generation_of_trial_number(retried_trial_number(trial))
        return fold_of_generation(int(generation), n_folds)
