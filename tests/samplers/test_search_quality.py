"""BioTune's paper preset against random search on the cheap 7-gene objective."""

from __future__ import annotations

import optuna

from biotune_optuna import BioTuneSampler
from biotune_optuna.samplers import trial_budget
from biotune_optuna.studies._synthetic import SyntheticFineTuning


def _best(sampler: optuna.samplers.BaseSampler, objective: SyntheticFineTuning) -> float:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=trial_budget(10))
    return study.best_value


def test_paper_preset_beats_random_search_on_most_seeds() -> None:
    """The rule: over seeds 0..9 (landscape seed = sampler seed), BioTune's best value after the
    paper's 140 trials is above random search's in at least 7 of the 10 seeds.

    Everything is seeded, so the outcome is deterministic, not a flaky coin toss. The margin
    was measured when this test was written: BioTune won 9 of these 10 seeds.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    wins = 0
    for seed in range(10):
        objective = SyntheticFineTuning(seed=seed)
        biotune = _best(BioTuneSampler(seed=seed), objective)
        random = _best(optuna.samplers.RandomSampler(seed=seed), objective)
        wins += biotune > random
    assert wins >= 7, f"BioTune beat random search on {wins} of 10 seeds"
