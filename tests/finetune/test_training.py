"""The training protocol: fitness, early stopping, reports, failures, the template untouched."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from biotune_optuna.finetune import evaluate_plan
from biotune_optuna.finetune._data import ClassificationData
from tests.finetune.conftest import tiny_backbone
from tests.finetune.conftest import tiny_plan
from tests.finetune.conftest import TINY_PROTOCOL as PROTOCOL
from tests.finetune.conftest import whole_splits


def test_empty_plan_scores_worst_without_training(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    train, val, _ = whole_splits(small_digits)
    calls = []
    result = evaluate_plan(
        backbone,
        tiny_plan((0.1, 0.2, 0.3, 0.4)),
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
    train, val, test = whole_splits(small_digits)
    reports: list[tuple[int, float]] = []
    protocol = dataclasses.replace(PROTOCOL, max_epochs=4)
    result = evaluate_plan(
        backbone,
        tiny_plan((0.9, 0.9, 0.9, 0.9)),
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
    train, val, _ = whole_splits(small_digits)
    protocol = dataclasses.replace(PROTOCOL, max_epochs=30, patience=1, n_seeds=1, base_lr=1e-9)
    result = evaluate_plan(
        tiny_backbone(), tiny_plan((0.9, 0.9, 0.9, 0.9)), train, val, protocol, num_classes=10
    )
    run = result.runs[0]
    # With a learning rate of ~0 nothing improves after epoch 1: stop after 1 stale epoch.
    assert run.epochs < 30
    assert run.epochs - run.best_epoch == 1


def test_non_finite_loss_raises(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    with torch.no_grad():
        backbone.model[2][2].weight.fill_(float("nan"))
    train, val, _ = whole_splits(small_digits)
    with pytest.raises(FloatingPointError, match="non-finite"):
        evaluate_plan(
            backbone, tiny_plan((0.9, 0.9, 0.9, 0.9)), train, val, PROTOCOL, num_classes=10
        )


def test_report_can_stop_the_evaluation(small_digits: ClassificationData) -> None:
    class Stop(Exception):
        pass

    def report(epoch: int, value: float) -> None:
        raise Stop(epoch)

    train, val, _ = whole_splits(small_digits)
    with pytest.raises(Stop):
        evaluate_plan(
            tiny_backbone(),
            tiny_plan((0.9,) * 4),
            train,
            val,
            PROTOCOL,
            num_classes=10,
            report=report,
        )
