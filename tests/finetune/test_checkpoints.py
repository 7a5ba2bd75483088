"""Training checkpoints: a killed evaluation continues where it stopped, with the same result."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
import struct
from typing import Any
import zipfile

import optuna
import pytest
import torch

from biotune_optuna.finetune import FineTuneObjective
from biotune_optuna.finetune import FineTuneStrategy
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._checkpoints import TrainingCheckpoints
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._results import PlanEvaluation
from biotune_optuna.finetune._strategies import build_strategy
from biotune_optuna.finetune._strategies import PlanStrategy
from biotune_optuna.finetune._training import evaluate_plan
from tests.finetune.conftest import tiny_backbone
from tests.finetune.conftest import tiny_plan
from tests.finetune.conftest import TINY_PROTOCOL
from tests.finetune.conftest import whole_splits


PROTOCOL = dataclasses.replace(TINY_PROTOCOL, max_epochs=4)
#: Block 0 frozen (a cached prefix), the others trained, BatchNorm of block 1 in train mode.
PLAN = tiny_plan((0.1, 0.9, 0.8, 0.9))
KEY = "study/trial-0/fold-0"


class _Killed(BaseException):
    """The worker dies: no ``except Exception`` sees it, as no code runs after a SIGKILL."""


class _CountingCheckpoints(TrainingCheckpoints):
    """Checkpoints that count their writes and check the budget after each."""

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.saved: list[str] = []

    def save(self, key: str, state: dict[str, Any]) -> bool:
        kept = super().save(key, state)
        self.saved.append(key)
        assert self.nbytes <= self.max_bytes
        return kept


def _kill_after(epoch: int, reports: list[tuple[int, float]]) -> Any:
    def report(e: int, value: float) -> None:
        reports.append((e, value))
        if e == epoch:
            raise _Killed

    return report


def _evaluate(
    strategy: Any,
    data: ClassificationData,
    protocol: TrainingProtocol = PROTOCOL,
    backbone: Backbone | None = None,
    **kwargs: Any,
) -> PlanEvaluation:
    # A fresh backbone and feature cache each time: as a new process would have them.
    train, val, test = whole_splits(data)
    cache = FeatureCache(2**26)
    return evaluate_plan(
        backbone or tiny_backbone(), strategy, train, val, protocol, num_classes=10, test=test,
        cache=cache, keep_models=True, **kwargs,
    )  # fmt: skip


def _assert_same(resumed: PlanEvaluation, uninterrupted: PlanEvaluation) -> None:
    assert resumed.fitness == uninterrupted.fitness
    assert resumed.top1_accuracy == uninterrupted.top1_accuracy
    assert resumed.runs == uninterrupted.runs  # histories, best epochs, test accuracies
    assert resumed.trainable_parameters == uninterrupted.trainable_parameters
    assert resumed.frozen_blocks == uninterrupted.frozen_blocks
    for model, reference in zip(resumed.models, uninterrupted.models, strict=True):
        state, expected = model.state_dict(), reference.state_dict()
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in state)


@pytest.mark.parametrize(
    "strategy, augmentation",
    [(PLAN, "none"), (build_strategy("full", base_lr=3e-3), "flip")],
    ids=["plan-with-cached-prefix", "full-with-augmentation"],
)
def test_a_killed_evaluation_continues_with_the_uninterrupted_result(
    small_digits: ClassificationData, tmp_path: Path, strategy: Any, augmentation: str
) -> None:
    protocol = dataclasses.replace(PROTOCOL, augmentation=augmentation)
    reports: list[tuple[int, float]] = []
    uninterrupted = _evaluate(strategy, small_digits, protocol, report=_kill_after(0, reports))
    assert [e for e, _ in reports] == [1, 2, 3, 4]

    store = TrainingCheckpoints(tmp_path)
    with pytest.raises(_Killed):
        _evaluate(
            strategy, small_digits, protocol, report=_kill_after(2, []), checkpoint=(store, KEY)
        )
    assert store.path(KEY).exists()  # left behind, as by a dead worker

    replayed: list[tuple[int, float]] = []
    resumed = _evaluate(
        strategy, small_digits, protocol, report=_kill_after(0, replayed), checkpoint=(store, KEY)
    )
    assert resumed.resumed_epoch == 2 and uninterrupted.resumed_epoch == 0
    assert replayed == reports  # the saved epochs are reported again, then the new ones
    _assert_same(resumed, uninterrupted)
    assert not store.path(KEY).exists()


def test_the_checkpoint_is_removed_when_the_evaluation_ends(
    small_digits: ClassificationData, tmp_path: Path
) -> None:
    store = _CountingCheckpoints(tmp_path)
    _evaluate(PLAN, small_digits, checkpoint=(store, KEY))
    assert store.saved == [KEY] * 3  # after epochs 1-3; the last one finishes it
    assert store.nbytes == 0

    def prune(epoch: int, value: float) -> None:
        if epoch == 2:
            raise optuna.TrialPruned

    with pytest.raises(optuna.TrialPruned):
        _evaluate(PLAN, small_digits, report=prune, checkpoint=(store, KEY))
    assert store.nbytes == 0 and list(tmp_path.iterdir()) == []


def test_a_checkpoint_of_another_evaluation_is_not_resumed(
    small_digits: ClassificationData, tmp_path: Path
) -> None:
    store = TrainingCheckpoints(tmp_path)
    with pytest.raises(_Killed):
        _evaluate(PLAN, small_digits, report=_kill_after(2, []), checkpoint=(store, KEY))
    other = tiny_plan((0.1, 0.9, 0.8, 0.95))
    assert _evaluate(other, small_digits, checkpoint=(store, KEY)).resumed_epoch == 0


def test_the_store_stays_within_its_budget(tmp_path: Path) -> None:
    state = {"weights": torch.zeros(10_000)}  # 40 kB and a little
    one = len(Path(_one_file(tmp_path / "probe", state)).read_bytes())
    store = TrainingCheckpoints(tmp_path / "store", max_bytes=int(2.5 * one))
    for age, key in enumerate(["a", "b", "c"]):
        assert store.save(key, state)
        past = 1_000_000.0 - 1_000 * (3 - age)  # written in this order, a second apart at least
        os.utime(store.path(key), (past, past))
        assert store.nbytes <= store.max_bytes
    assert [store.load(k) is not None for k in "abc"] == [False, True, True]  # a was oldest
    torch.testing.assert_close(store.load("c"), state)
    assert store.save("b", {"weights": torch.zeros(100)})  # its own older file is replaced
    assert store.load("c") is not None
    # A checkpoint that alone exceeds the budget is not kept, nor an older one of its key.
    assert not store.save("c", {"weights": torch.zeros(100_000)})
    assert store.load("c") is None and store.load("b") is not None
    store.remove("b")
    store.remove("b")  # nothing left: nothing happens
    assert store.nbytes == 0
    assert [p.name for p in (tmp_path / "store").iterdir()] == []


def _one_file(directory: Path, state: dict[str, Any]) -> Path:
    store = TrainingCheckpoints(directory)
    store.save("x", state)
    return store.path("x")


def test_an_unreadable_checkpoint_is_none(tmp_path: Path) -> None:
    store = TrainingCheckpoints(tmp_path)
    store.path("k").write_bytes(b"torn")
    assert store.load("k") is None
    assert store.load("missing") is None
    with pytest.raises(ValueError, match="max_bytes"):
        TrainingCheckpoints(tmp_path, max_bytes=-1)


@pytest.mark.parametrize(
    "name, resumable",
    [
        ("full", True),
        ("linear_probe", True),
        ("surgical", True),
        ("l2sp", True),
        ("l1sp", True),
        ("llrd", True),
        ("lp_ft", False),
        ("auto_rgn", False),
        ("lora", False),
    ],
)
def test_only_strategies_that_keep_model_and_optimizer_checkpoint(
    name: str, resumable: bool
) -> None:
    settings = {"block": "1"} if name == "surgical" else None
    assert build_strategy(name, settings).resumable is resumable
    assert PlanStrategy(PLAN).resumable


@pytest.mark.parametrize("name", ["lp_ft", "auto_rgn"])
def test_strategies_that_change_model_or_optimizer_do_not_checkpoint(
    small_digits: ClassificationData, tmp_path: Path, name: str
) -> None:
    store = _CountingCheckpoints(tmp_path)
    strategy: FineTuneStrategy = build_strategy(name, base_lr=3e-3)
    protocol = dataclasses.replace(PROTOCOL, max_epochs=3, n_seeds=1)
    result = _evaluate(strategy, small_digits, protocol, checkpoint=(store, KEY))
    assert store.saved == [] and result.resumed_epoch == 0 and result.epochs == [3]


OBJECTIVE_PROTOCOL = TrainingProtocol(
    max_epochs=4, n_seeds=1, batch_size=64, image_size=16, base_lr=3e-3, patience=4
)


def test_a_heartbeat_retry_continues_its_trial(
    small_digits: ClassificationData, tmp_path: Path
) -> None:
    store = TrainingCheckpoints(tmp_path)

    def die_after_epoch_2(trial: optuna.Trial, epoch: int, value: float) -> None:
        if epoch == 2 and trial.number == 0:
            raise _Killed

    objective = FineTuneObjective(
        tiny_backbone(), small_digits, OBJECTIVE_PROTOCOL, checkpoints=store,
        on_epoch=die_after_epoch_2,
    )  # fmt: skip
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), study_name="s"
    )
    killed = study.ask()
    with pytest.raises(_Killed):
        objective(killed)
    assert objective.checkpoint_key(killed, 0) == "s/trial-0/fold-0"
    # What fail_stale_trials does for the dead worker's trial: a retry, then the trial fails.
    optuna.storages.RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    study.tell(killed, state=optuna.trial.TrialState.FAIL)
    study.optimize(objective, n_trials=1)

    retry = study.trials[1]
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs["resumed_from_epoch"] == 2
    assert sorted(retry.intermediate_values) == [1, 2, 3, 4]
    plan = objective.strategy_of(retry.params)
    assert retry.value == objective.evaluate(plan, retry.user_attrs["fold"]).fitness
    assert store.nbytes == 0
    # A retry of the retry keeps the first trial's key.
    optuna.storages.RetryHeartbeatStaleTrialCallback()(study, retry)
    again = study.ask()
    assert again.number == 2
    assert objective.checkpoint_key(again, 1) == "s/trial-0/fold-1"
    assert objective.checkpoint_key(study.ask(), 0) == "s/trial-3/fold-0"


def _warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def _flip_tensor_bytes(path: Path, count: int = 64) -> None:
    """Flip ``count`` bytes in the middle of the largest tensor's data in a ``torch.save`` zip."""
    with zipfile.ZipFile(path) as archive:
        member = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26 :][:4])
    start = member.header_offset + 30 + name_length + extra_length + member.file_size // 2
    assert member.file_size >= 2 * count
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_discarded_with_one_warning(
    small_digits: ClassificationData, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uninterrupted = _evaluate(PLAN, small_digits)
    store = TrainingCheckpoints(tmp_path)
    with pytest.raises(_Killed):
        _evaluate(PLAN, small_digits, report=_kill_after(2, []), checkpoint=(store, KEY))
    _flip_tensor_bytes(store.path(KEY))  # torch.load reads it without complaint

    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            resumed = _evaluate(PLAN, small_digits, checkpoint=(store, KEY))
    finally:
        optuna.logging.disable_propagation()
    assert resumed.resumed_epoch == 0  # trained from scratch, not from altered weights
    _assert_same(resumed, uninterrupted)
    (warning,) = _warnings_of(caplog)
    assert "damaged" in warning and "CRC" in warning and "\n" not in warning


def test_an_intact_checkpoint_that_cannot_be_loaded_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only damage (failed CRCs, no zip archive) removes a checkpoint: a sound archive that
    ``torch.load`` refuses (another torch's, say) is ignored with a warning, and kept."""
    store = TrainingCheckpoints(tmp_path)
    with zipfile.ZipFile(store.path("k"), "w") as archive:
        archive.writestr("other/data.pkl", b"not torch's")
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            assert store.load("k") is None
    finally:
        optuna.logging.disable_propagation()
    assert store.path("k").is_file()
    (warning,) = _warnings_of(caplog)
    assert "cannot be read" in warning and "damaged" not in warning and "\n" not in warning


def test_a_killed_writers_temporary_file_is_removed_when_its_key_is_loaded(
    tmp_path: Path,
) -> None:
    store = TrainingCheckpoints(tmp_path)
    store.save(KEY, {"weights": torch.zeros(10)})
    other = store.path("other").with_suffix(".x.tmp")
    left = store.path(KEY).with_suffix(".k1ll3d.tmp")  # as tempfile.mkstemp names them
    for path in (left, other):
        path.write_bytes(b"half a checkpoint")
    assert store.load(KEY) is not None  # the trial resumed (or retried)
    assert not left.exists() and other.exists()  # another key's writer may be alive
    store.remove(KEY)
    assert store.load(KEY) is None and not left.exists()


@pytest.mark.parametrize("plan", [PLAN, tiny_plan((0.9, 0.1, 0.9, 0.9))], ids=["prefix", "middle"])
def test_a_checkpoint_of_a_backbone_not_pretrained_restores_its_frozen_weights(
    small_digits: ClassificationData, tmp_path: Path, plan: Any
) -> None:
    # A random backbone (not pretrained) that another process builds otherwise: seed 1, not 0.
    uninterrupted = _evaluate(plan, small_digits, backbone=tiny_backbone(seed=0))
    store = TrainingCheckpoints(tmp_path)
    with pytest.raises(_Killed):
        _evaluate(
            plan, small_digits, backbone=tiny_backbone(seed=0), report=_kill_after(2, []),
            checkpoint=(store, KEY),
        )  # fmt: skip
    other = tiny_backbone(seed=1)
    resumed = _evaluate(plan, small_digits, backbone=other, checkpoint=(store, KEY))
    assert resumed.resumed_epoch == 2
    _assert_same(resumed, uninterrupted)  # frozen block and trained ones as saved
    assert not torch.equal(other.model[0][0].weight, uninterrupted.models[0][0][0].weight)


def test_a_budget_aware_study_continues_paused_plans_from_their_checkpoints(
    small_digits: ClassificationData, tmp_path: Path
) -> None:
    from biotune_optuna.samplers import BioTunePlusSampler
    from biotune_optuna.samplers._rungs import RungPruner
    from biotune_optuna.trials import rung_record

    store = TrainingCheckpoints(tmp_path)
    objective = FineTuneObjective(
        tiny_backbone(), small_digits, OBJECTIVE_PROTOCOL, checkpoints=store
    )
    study = optuna.create_study(
        direction="maximize",
        study_name="s",
        sampler=BioTunePlusSampler(
            population_size=4, n_elites=1, seed=0, search_space=objective.search_space
        ),
        pruner=RungPruner(max_resource=4, reduction_factor=2),  # rungs at 1, 2, 4 epochs
    )
    study.optimize(objective, n_trials=12)
    trials = study.get_trials(deepcopy=False)
    continuations = [t for t in trials if rung_record(t).source is not None]
    assert continuations
    for trial in continuations:
        record = rung_record(trial)
        source = trials[record.source]
        assert trial.user_attrs["resumed_from_epoch"] == record.start == source.last_step
        assert trial.user_attrs["epochs"] == trial.last_step - record.start
        # The resumed training is the uninterrupted one: the same curve, the same value.
        plan = objective.strategy_of(trial.params)
        fresh = objective.evaluate(plan, record.fold)
        assert trial.intermediate_values[record.start] == source.intermediate_values[record.start]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert trial.value == fresh.fitness
    # Per plan (its last trial): a paused plan's checkpoint waits for a continuation, a
    # finished plan's is removed.
    for trial in trials:
        if any(rung_record(t).source == trial.number for t in trials):
            continue  # continued: its plan's last trial says
        record = rung_record(trial)
        head = trial.number if record.head is None else record.head
        key = f"s/trial-{head}/fold-{trial.user_attrs['fold']}"  # objective.checkpoint_key's
        paused = trial.state == optuna.trial.TrialState.PRUNED
        assert store.path(key).exists() == paused, trial.number
