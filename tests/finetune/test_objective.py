"""The objective under BioTune and other samplers: genes, folds, reports, user attrs."""

from __future__ import annotations

import dataclasses
import socket

import optuna
import pytest
import torch

from biotune_optuna import BioTuneSampler
from biotune_optuna.finetune import FineTuneObjective
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._device import describe_device
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.samplers import GASchedule
from biotune_optuna.trials import fold_of_generation
from tests.finetune.conftest import tiny_backbone


PROTOCOL = TrainingProtocol(max_epochs=1, n_seeds=1, batch_size=64, image_size=16, base_lr=3e-3)

NBSP = "\u00a0"


def _items(line: str) -> list[str]:
    """The items of a one-line user attr (``"none"`` when empty)."""
    return [] if line == "none" else line.split(f",{NBSP}")


def test_fold_rule() -> None:
    # The initial population and generation 1 both use fold 0, then the folds alternate.
    assert [fold_of_generation(g, 2) for g in range(6)] == [0, 0, 1, 0, 1, 0]
    assert [fold_of_generation(g, 3) for g in range(6)] == [0, 0, 1, 2, 0, 1]
    assert [fold_of_generation(g, 1) for g in range(3)] == [0, 0, 0]
    # Other samplers: the generation a one-worker BioTune run would be in (10, then 13 each).
    assert [GASchedule(10, 3).generation_of_trial_number(n) for n in (0, 9, 10, 22, 23, 139)] == [
        0,
        0,
        1,
        1,
        2,
        10,
    ]


def test_folds_are_disjoint_stratified_halves(small_digits: ClassificationData) -> None:
    objective = FineTuneObjective(tiny_backbone(), small_digits, PROTOCOL)
    assert objective.n_folds == 2
    (train0, val0), (train1, val1) = objective.fold_splits(0), objective.fold_splits(1)
    assert not set(train0.indices) & set(train1.indices)
    assert len(train0) + len(train1) == len(small_digits.train)
    assert len(val0) + len(val1) == len(small_digits.val)
    assert set(train0.labels) == set(small_digits.train_labels)


def test_biotune_study_of_the_objective(small_digits: ClassificationData) -> None:
    objective = FineTuneObjective(
        tiny_backbone(), small_digits, PROTOCOL, fold_of_trial=GASchedule(4, 1).fold_of_trial
    )
    sampler = BioTuneSampler(
        population_size=4, n_elites=1, search_space=objective.search_space, seed=0
    )
    study = optuna.create_study(
        direction="maximize", sampler=sampler, pruner=optuna.pruners.NopPruner()
    )
    study.optimize(objective, n_trials=sampler.trial_budget(2))
    trials = study.trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert set(trials[0].params) == set(objective.search_space)
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["fold"] == fold_of_generation(attrs["generation"], 2)
        assert 0 <= trial.value <= 1
        assert attrs["macro_accuracy"] == trial.value
        assert 0 < attrs["trainable_fraction"] <= 1
        assert attrs["epochs"] == 1 and attrs["wall_time_s"] >= 0
        # What people read in the trial table: one unbreakable line each (no-break spaces).
        assert all(" " not in attrs[k] for k in ("plan", "frozen_blocks", "learning_rates"))
        rates = dict(item.split(NBSP) for item in _items(attrs["learning_rates"]))
        assert set(rates) | set(_items(attrs["frozen_blocks"])) == set(objective.blocks)
        plan = FineTunePlan.from_params(trial.params, objective.blocks, base_lr=PROTOCOL.base_lr)
        assert attrs["plan"] == plan.summary().replace(" ", NBSP)
        assert _items(attrs["frozen_blocks"]) == list(plan.frozen)
        for block, lr in rates.items():  # for people: 3 significant digits
            assert lr == f"{plan.learning_rate(block):.3g}"
        assert attrs["top1_accuracy"] == round(attrs["top1_accuracy"], 4)
        assert trial.intermediate_values == {1: trial.value}
        assert attrs["host"] == socket.gethostname()
        assert attrs["device"] == describe_device("auto")
    assert {t.user_attrs["fold"] for t in trials} == {0, 1}
    assert study.best_value > 0.1  # chance level is 0.1 (one epoch of two batches)


def test_other_samplers_use_the_trial_number_rule(small_digits: ClassificationData) -> None:
    objective = FineTuneObjective(
        tiny_backbone(), small_digits, PROTOCOL, fold_of_trial=GASchedule(2, 1).fold_of_trial
    )
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=6)
    # 2 initial trials (gen 0), then 3 per generation: gen 1 → fold 0, gen 2 → fold 1.
    assert [t.user_attrs["fold"] for t in study.trials] == [0, 0, 0, 0, 0, 1]


def test_empty_plan_trial_is_worst_and_not_trained(small_digits: ClassificationData) -> None:
    objective = FineTuneObjective(tiny_backbone(), small_digits, PROTOCOL)
    study = optuna.create_study(direction="maximize")
    params = {p: 0.1 for p in objective.search_space} | {"freeze_threshold": 0.9}
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.value == 0.0
    assert "skipped" in trial.user_attrs and trial.user_attrs["epochs"] == 0
    assert trial.intermediate_values == {}


def test_pruner_stops_a_trial(small_digits: ClassificationData) -> None:
    protocol = dataclasses.replace(PROTOCOL, max_epochs=3)
    objective = FineTuneObjective(tiny_backbone(), small_digits, protocol)
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),  # everything above 0 is "bad"
    )
    params = {p: 0.9 for p in objective.search_space} | {"freeze_threshold": 0.1}
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]


def test_no_trial_is_pruned_after_its_last_epoch(small_digits: ClassificationData) -> None:
    """A pruner that says "stop" after the last epoch would throw a trained trial away."""
    protocol = dataclasses.replace(PROTOCOL, max_epochs=1, patience=1)
    objective = FineTuneObjective(tiny_backbone(), small_digits, protocol)
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(upper=0.0)
    )
    params = {p: 0.9 for p in objective.search_space} | {"freeze_threshold": 0.1}
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_head_size_must_match_the_data(small_digits: ClassificationData) -> None:
    with pytest.raises(ValueError, match="3 outputs but the data has 10 classes"):
        FineTuneObjective(tiny_backbone(num_classes=3), small_digits, PROTOCOL)


def test_a_given_cache_is_used_even_when_empty(small_digits: ClassificationData) -> None:
    from biotune_optuna.finetune._cache import FeatureCache

    cache = FeatureCache(0)
    assert FineTuneObjective(tiny_backbone(), small_digits, PROTOCOL, cache=cache).cache is cache


def test_the_device_is_described_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert describe_device("cpu") == f"cpu ({torch.get_num_threads()} threads)"
    if not torch.cuda.is_available():
        assert describe_device("auto") == describe_device("cpu")
        assert describe_device("cuda:1").startswith("cuda:1 (device 'cuda:1' was asked for, but")
        return
    # With a GPU: the model, and the CUDA_VISIBLE_DEVICES that pinned this worker, if any.
    name = torch.cuda.get_device_name(0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert describe_device("auto") == f"cuda:0 {name} (CUDA_VISIBLE_DEVICES=7)"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert describe_device("cuda:0") == f"cuda:0 {name}"


def test_a_trial_that_overshoots_its_generation_trains_on_that_generations_fold(
    small_digits: ClassificationData,
) -> None:
    # With several workers, a trial asked while its generation's last trials still run joins
    # that generation (BioTune overshoots it): its fold is the generation's, not the one the
    # one-worker numbering would give. N=2, E=1: generation 1 is trials 2..4 on fold 0, and
    # trial 5 would be generation 2 (fold 1) in a one-worker run.
    objective = FineTuneObjective(
        tiny_backbone(), small_digits, PROTOCOL, fold_of_trial=GASchedule(2, 1).fold_of_trial
    )
    sampler = BioTuneSampler(
        population_size=2, n_elites=1, search_space=objective.search_space, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=4)
    running = study.ask()  # trial 4, still running on another worker
    trial = study.ask()  # trial 5
    study.tell(trial, objective(trial))
    attrs = study.trials[trial.number].user_attrs
    assert (running.number, trial.number, attrs["generation"]) == (4, 5, 1)
    assert attrs["fold"] == fold_of_generation(1, objective.n_folds) == 0
