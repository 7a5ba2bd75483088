"""The training protocol: fitness, early stopping, reports, failures, the template untouched."""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from typing import TYPE_CHECKING

import pytest
import torch

from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._training import evaluate_plan
from tests.finetune.conftest import tiny_backbone
from tests.finetune.conftest import tiny_plan
from tests.finetune.conftest import TINY_PROTOCOL as PROTOCOL
from tests.finetune.conftest import whole_splits


if TYPE_CHECKING:
    from biotune_optuna.finetune import TrainingProtocol
    from biotune_optuna.finetune._backbones import Backbone
    from biotune_optuna.finetune._results import PlanEvaluation


def _evaluate(
    data: ClassificationData,
    importances: tuple[float, ...],
    *,
    backbone: Backbone | None = None,
    protocol: TrainingProtocol = PROTOCOL,
    with_test: bool = False,
    report: Callable[[int, float], None] | None = None,
) -> PlanEvaluation:
    """:func:`evaluate_plan` of ``tiny_plan(importances)`` on the whole train and val splits
    of ``data`` (and its test split ``with_test``), on a fresh tiny backbone by default."""
    train, val, test = whole_splits(data)
    return evaluate_plan(
        tiny_backbone() if backbone is None else backbone,
        tiny_plan(importances),
        train,
        val,
        protocol,
        num_classes=10,
        test=test if with_test else None,
        report=report,
    )


def test_empty_plan_scores_worst_without_training(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    calls = []
    result = _evaluate(
        small_digits,
        (0.1, 0.2, 0.3, 0.4),
        backbone=backbone,
        report=lambda *a: calls.append(a),
    )
    assert result.fitness == 0.0 and result.runs == [] and calls == []
    assert result.trainable_parameters == 0
    # Unchanged, wherever evaluation moved it (the GPU when present).
    assert all(torch.equal(v.cpu(), before[k]) for k, v in backbone.model.state_dict().items())


def test_training_learns_reports_and_records(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    reports: list[tuple[int, float]] = []
    result = _evaluate(
        small_digits,
        (0.9, 0.9, 0.9, 0.9),
        backbone=backbone,
        protocol=dataclasses.replace(PROTOCOL, max_epochs=4),
        with_test=True,
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
    protocol = dataclasses.replace(PROTOCOL, max_epochs=30, patience=1, n_seeds=1, base_lr=1e-9)
    result = _evaluate(small_digits, (0.9, 0.9, 0.9, 0.9), protocol=protocol)
    run = result.runs[0]
    # With a learning rate of ~0 nothing improves after epoch 1: stop after 1 stale epoch.
    assert run.epochs < 30
    assert run.epochs - run.best_epoch == 1


def test_non_finite_loss_raises(small_digits: ClassificationData) -> None:
    backbone = tiny_backbone()
    with torch.no_grad():
        backbone.model[2][2].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        _evaluate(small_digits, (0.9, 0.9, 0.9, 0.9), backbone=backbone)


def test_report_can_stop_the_evaluation(small_digits: ClassificationData) -> None:
    class Stop(Exception):
        pass

    def report(epoch: int, value: float) -> None:
        raise Stop(epoch)

    with pytest.raises(Stop):
        _evaluate(small_digits, (0.9,) * 4, report=report)
