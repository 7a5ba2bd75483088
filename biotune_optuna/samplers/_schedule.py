"""The GA schedule ``(N, E)``: population size and elites, checked and defaulted here only.

The paper's schedule (Colan, Davila, Hasegawa, arXiv:2508.15367, §III-§IV) is ``N = 10``
members and ``E = 3`` elites: an initial population of ``N`` trials, then generations of
``N + E`` trials (``N - E`` offspring and two exploitation variants per elite), each generation
on the next data fold. Every layer that needs ``N`` and ``E`` (the sampler, a study spec, the
fold a trial of any sampler trains on) takes them from a :class:`GASchedule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from biotune_optuna.trials import fold_of_generation
from biotune_optuna.trials import retried_trial_number
from biotune_optuna.trials import stored_user_attrs


class ScheduleError(ValueError):
    """A schedule outside its range.

    Attributes:
        key: The offending setting (``"population_size"`` or ``"n_elites"``).
        detail: What it must be and what it was, e.g. ``">= 2, got 0"``.
    """

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"`{key}` must be {detail}.")
        self.key = key
        self.detail = detail


@dataclass(frozen=True)
class GASchedule:
    """BioTune's population size ``N`` and number of elites ``E`` (the paper's 10 and 3).

    Args:
        population_size: ``N``, an int >= 2.
        n_elites: ``E``, an int in ``[0, N)``.

    Raises:
        ScheduleError: Either is outside its range.
    """

    population_size: int = 10
    n_elites: int = 3

    def __post_init__(self) -> None:
        n, e = self.population_size, self.n_elites
        for key, value in (("population_size", n), ("n_elites", e)):
            if not isinstance(value, int):
                raise ScheduleError(key, f"an int, got {value!r}")
        if n < 2:
            raise ScheduleError("population_size", f">= 2, got {n}")
        if not 0 <= e < n:
            raise ScheduleError("n_elites", f">= 0 and below population_size ({n}), got {e}")

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

    def fold_of_trial(self, trial: optuna.trial.BaseTrial, *, n_folds: int) -> int:
        """The data fold of a trial: by its ``generation`` user attr, else by its number.

        A heartbeat retry stands in for the trial it retries: its number is that trial's
        (:func:`~biotune_optuna.trials.retried_trial_number`), so it trains on the same fold.
        Trials of other samplers (no ``generation``) are placed as a one-worker BioTune run
        with this schedule would place them.
        """
        generation = stored_user_attrs(trial).get("generation")
        if generation is None:
            generation = self.generation_of_trial_number(retried_trial_number(trial))
        return fold_of_generation(int(generation), n_folds)

    def fold_function(self, n_folds: int) -> Callable[[Any], int]:
        """``trial -> fold index`` over ``n_folds`` folds (:meth:`fold_of_trial`)."""
        return _FoldOfTrial(self, n_folds)


@dataclass(frozen=True)
class _FoldOfTrial:
    """A picklable ``trial -> fold`` function (objectives travel to worker processes)."""

    schedule: GASchedule
    n_folds: int

    def __call__(self, trial: optuna.trial.BaseTrial) -> int:
        return self.schedule.fold_of_trial(trial, n_folds=self.n_folds)
