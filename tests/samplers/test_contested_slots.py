"""Two workers that read the study at the same moment and took one elite's slot."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna import BioTuneSampler
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.studies._synthetic import SyntheticFineTuning


def test_a_contested_exploitation_slot_is_left_to_the_other_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The soak found two trials of generation 2 in exploitation slot 2, with one genotype: a
    # pending trial that went to the previous generation made one of them skip a slot too many.
    landscape = SyntheticFineTuning(seed=0)
    study = optuna.create_study(
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0), direction="maximize"
    )
    study.optimize(landscape, n_trials=4)  # generation 0
    # Another worker: its own process, its own sampler, the same storage.
    other = optuna.load_study(
        study_name=study.study_name,
        storage=study._storage,
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
    )
    second, first = other.ask(), study.ask()
    other.sampler.infer_relative_search_space(other, second._cached_frozen_trial)
    # The other worker read the study before the first trial wrote its place (its view is
    # Optuna's, kept for the whole trial); it then takes the same slot.
    landscape.score({n: first.suggest_float(n, 0, 1) for n in landscape.param_names})
    lineage = study._storage.get_trial(first._trial_id).system_attrs[LINEAGE_KEY]
    assert lineage["role"] == "exploit"
    taken = lineage["slot"]
    monkeypatch.setattr(StudyIndex, "next_slot", lambda self, generation, skip=0: taken)
    landscape.score({n: second.suggest_float(n, 0, 1) for n in landscape.param_names})
    moved = study._storage.get_trial(second._trial_id)
    assert moved.system_attrs[LINEAGE_KEY]["role"] in ("offspring", "immigrant")
    assert moved.system_attrs[LINEAGE_KEY]["slot"] >= 5  # beyond the schedule: N + E = 5
    assert moved.user_attrs["role"] == moved.system_attrs[LINEAGE_KEY]["role"]
    kept = study._storage.get_trial(first._trial_id)
    assert moved.params != kept.params
    study.tell(first, 0.5)
    other.tell(second, 0.5)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
