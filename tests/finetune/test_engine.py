"""The training protocol: fitness, early stopping, reports, the prefix cache, repeatability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from biotune_optuna import FineTunePlan
from biotune_optuna.finetune import ClassificationData
from biotune_optuna.finetune import DataSplit
from biotune_optuna.finetune import evaluate_plan
from biotune_optuna.finetune import FeatureCache
from biotune_optuna.finetune import macro_accuracy
from biotune_optuna.finetune import TrainingProtocol
from tests.finetune.conftest import tiny_backbone


PROTOCOL = TrainingProtocol(
    max_epochs=2, n_seeds=2, batch_size=32, image_size=16, base_lr=3e-3, patience=3
)


def _splits(data: ClassificationData, key: bool = True) -> tuple[DataSplit, DataSplit, DataSplit]:
    def split(dataset, labels, name):  # type: ignore[no-untyped-def]
        return DataSplit(dataset, np.arange(len(labels)), labels, ("t", name) if key else None)

    assert data.test is not None and data.test_labels is not None
    return (
        split(data.train, data.train_labels, "train"),
        split(data.val, data.val_labels, "val"),
        split(data.test, data.test_labels, "test"),
    )


def _plan(importances: tuple[float, ...], threshold: float = 0.5) -> FineTunePlan:
    return FineTunePlan(("0", "1", "2", "3"), importances, threshold, base_lr=3e-3)


def test_macro_accuracy_is_mean_per_class_recall() -> None:
    labels = torch.tensor([0] * 8 + [1] * 2)
    predictions = torch.zeros(10, dtype=torch.long)  # always class 0: top-1 0.8
    assert macro_accuracy(predictions, labels, 3) == pytest.approx(0.5)
    assert macro_accuracy(labels, labels, 3) == 1.0


def test_empty_plan_scores_worst_without_training(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    train, val, _ = _splits(small_digits)
    calls = []
    result = evaluate_plan(
        backbone,
        _plan((0.1, 0.2, 0.3, 0.4)),
        train,
        val,
        PROTOCOL,
        num_classes=10,
        report=lambda *a: calls.append(a),
    )
    assert result.fitness == 0.0 and result.runs == [] and calls == []
    assert result.trainable_parameters == 0
    # Unchanged, wherever evaluation moved it (the GPU when present).
    assert all(torch.equal(v.cpu(), before[k]) for k, v in backbone.model.state_dict().items())


def test_training_learns_reports_and_records(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    train, val, test = _splits(small_digits)
    reports: list[tuple[int, float]] = []
    protocol = dataclasses.replace(PROTOCOL, max_epochs=4)
    result = evaluate_plan(
        backbone,
        _plan((0.9, 0.9, 0.9, 0.9)),
        train,
        val,
        protocol,
        num_classes=10,
        test=test,
        report=lambda e, v: reports.append((e, v)),
    )
    assert [e for e, _ in reports] == [1, 2, 3, 4]
    assert [v for _, v in reports] == sorted(v for _, v in reports)  # best-so-far: monotone
    assert reports[-1][1] == pytest.approx(result.fitness)
    assert result.fitness > 0.3  # chance is 0.1
    assert [r.seed for r in result.runs] == [0, 1]
    for run in result.runs:
        assert run.macro_accuracy == max(run.history)
        assert run.history[run.best_epoch - 1] == run.macro_accuracy
        assert run.test_macro_accuracy is not None and run.test_macro_accuracy > 0.2
    assert result.trainable_fraction == 1.0
    # The backbone itself is never changed.
    assert all(p.requires_grad for p in backbone.model.parameters())


def test_early_stopping_patience(small_digits: ClassificationData) -> None:
    train, val, _ = _splits(small_digits)
    protocol = dataclasses.replace(PROTOCOL, max_epochs=30, patience=1, n_seeds=1, base_lr=1e-9)
    result = evaluate_plan(
        tiny_backbone(), _plan((0.9, 0.9, 0.9, 0.9)), train, val, protocol, num_classes=10
    )
    run = result.runs[0]
    # With a learning rate of ~0 nothing improves after epoch 1: stop after 1 stale epoch.
    assert run.epochs < 30
    assert run.epochs - run.best_epoch == 1


def test_repeatable_and_cache_changes_nothing_but_speed(small_digits: ClassificationData) -> None:
    plan = _plan((0.1, 0.2, 0.9, 0.7), threshold=0.5)  # blocks 0, 1 frozen: a 2-block prefix
    assert plan.frozen_prefix == 2
    results = {}
    for name, (key, cache) in {
        "cached": (True, FeatureCache(2**30)),
        "cached again": (True, None),
        "no cache": (False, None),
        "over budget": (True, FeatureCache(1000)),
    }.items():
        if name == "cached again":
            cache = results["cached"][1]
        train, val, _ = _splits(small_digits, key=key)
        result = evaluate_plan(
            tiny_backbone(), plan, train, val, PROTOCOL, num_classes=10, cache=cache
        )
        results[name] = (result, cache)
    assert results["cached"][0].feature_cache == "stored"
    assert results["cached again"][0].feature_cache == "hit"
    assert results["no cache"][0].feature_cache == "none"
    assert results["over budget"][0].feature_cache == "refused"
    assert len(results["over budget"][1]) == 0
    reference = [r.history for r in results["no cache"][0].runs]
    for name in ("cached", "cached again", "over budget"):
        histories = [r.history for r in results[name][0].runs]
        np.testing.assert_allclose(histories, reference, atol=1e-6, err_msg=name)


def test_cache_evicts_least_recently_used() -> None:
    cache = FeatureCache(3 * 400)
    for key in "abc":
        assert cache.put(key, torch.zeros(100))
    assert cache.get("a") is not None
    assert cache.put("d", torch.zeros(100))
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    assert not cache.put("huge", torch.zeros(1000))
    assert cache.nbytes <= cache.max_bytes


def test_non_finite_loss_raises(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    with torch.no_grad():
        backbone.model[2][2].weight.fill_(float("nan"))
    train, val, _ = _splits(small_digits)
    with pytest.raises(FloatingPointError, match="non-finite"):
        evaluate_plan(backbone, _plan((0.9, 0.9, 0.9, 0.9)), train, val, PROTOCOL, num_classes=10)


def test_report_can_stop_the_evaluation(small_digits: ClassificationData) -> None:
    class Stop(Exception):
        pass

    def report(epoch: int, value: float) -> None:
        raise Stop(epoch)

    train, val, _ = _splits(small_digits)
    with pytest.raises(Stop):
        evaluate_plan(
            tiny_backbone(), _plan((0.9,) * 4), train, val, PROTOCOL, num_classes=10, report=report
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"base_lr": -1.0}, "base_lr"),
    ],
)
def test_protocol_validation(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingProtocol(**change)


def test_paper_defaults() -> None:
    p = TrainingProtocol()
    assert (p.base_lr, p.optimizer, p.t_max, p.max_epochs, p.patience) == (
        1e-3,
        "adam",
        100,
        30,
        3,
    )
    assert (p.batch_size, p.image_size, p.n_seeds, p.train_fraction) == (96, 224, 3, 0.5)
    assert not p.always_train_head and not p.mask_only


def test_augmentation_is_repeatable_and_turns_the_cache_off(
    small_digits: ClassificationData,
) -> None:
    from biotune_optuna.finetune._augmentation import augment

    images = torch.rand(8, 3, 16, 16)
    a = augment(images, "crop_flip", torch.Generator().manual_seed(3))
    b = augment(images, "crop_flip", torch.Generator().manual_seed(3))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, images)
    flipped = augment(images, "flip", torch.Generator().manual_seed(0))
    assert all(torch.equal(f, x) or torch.equal(f, x.flip(-1)) for f, x in zip(flipped, images))

    protocol = dataclasses.replace(PROTOCOL, augmentation="crop_flip", n_seeds=1)
    train, val, _ = _splits(small_digits)
    plan = _plan((0.1, 0.2, 0.9, 0.7))
    cache = FeatureCache(2**30)
    first = evaluate_plan(tiny_backbone(), plan, train, val, protocol, num_classes=10, cache=cache)
    again = evaluate_plan(tiny_backbone(), plan, train, val, protocol, num_classes=10, cache=cache)
    assert first.feature_cache == "none" and len(cache) == 1  # only val features are cached
    assert first.runs[0].history == again.runs[0].history
    with pytest.raises(ValueError, match="augmentation"):
        TrainingProtocol(augmentation="mixup")
