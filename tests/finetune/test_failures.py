"""A trial that diverges, runs out of memory or hits a broken batch fails alone.

The trial is FAILED with its reason in the ``fail_reason`` user attr, the study goes on, and
BioTune gives the failed plan the worst fitness.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
from optuna.trial import TrialState
import pytest
import torch

from biotune_optuna import BioTuneSampler
from biotune_optuna.failures import failure_reason
from biotune_optuna.failures import TrialFailed
from biotune_optuna.finetune import _objective
from biotune_optuna.finetune import FineTuneObjective
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.samplers import GASchedule
from biotune_optuna.samplers._keys import POPULATION_KEY_PREFIX
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies._session import TooManyFailures
from tests.finetune.conftest import tiny_backbone


PROTOCOL = TrainingProtocol(image_size=16, max_epochs=1, n_seeds=1, batch_size=64, seed=0)


def objective(
    data: ClassificationData, protocol: TrainingProtocol = PROTOCOL
) -> FineTuneObjective:
    return FineTuneObjective(
        tiny_backbone(), data, protocol, fold_of_trial=GASchedule(3, 1).fold_of_trial
    )


def study() -> optuna.Study:
    # No pruner: a one-epoch trial at chance level (seen with bf16 on CUDA) would be pruned.
    return optuna.create_study(
        sampler=BioTuneSampler(population_size=3, n_elites=1, seed=0),
        direction="maximize",
        pruner=optuna.pruners.NopPruner(),
    )


def failing_on(numbers: set[int], error: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the training of the ``k``-th evaluated trial raise ``error`` for ``k`` in
    ``numbers`` (one worker: the trial numbers)."""
    real = _objective.evaluate_plan
    calls = {"count": -1}

    def evaluate_plan(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["count"] += 1
        if calls["count"] in numbers:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(_objective, "evaluate_plan", evaluate_plan)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out of"),
        (OSError("image file is truncated (3 bytes not processed)"), "error: OSError"),
        (RuntimeError("DataLoader worker (pid 123) is killed by signal"), "error: RuntimeError"),
    ],
    ids=["oom", "broken-image", "dataloader"],
)
def test_a_failing_trial_is_failed_with_its_reason_and_the_study_goes_on(
    small_digits: ClassificationData,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    kind: str,
) -> None:
    failing_on({1}, error, monkeypatch)
    s = study()
    ran = run_to_budget(s, objective(small_digits), budget=7)
    trials = s.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert ran == len(trials) == 8 and len(failed) == 1  # one more trial in its place
    reason = failed[0].user_attrs["fail_reason"]
    assert reason.startswith(kind) and "\n" not in reason, reason
    assert {"host", "device"} <= set(failed[0].user_attrs)  # where it failed
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 7
    # BioTune: the failed plan holds its slot with the worst fitness. Generation 0 is trials
    # 0..2; the failed trial 1 is ranked last in the population that closed it.
    population = s._storage.get_study_system_attrs(s._study_id)[f"{POPULATION_KEY_PREFIX}0"]
    assert population[-1] == failed[0].number == 1


def test_a_diverging_plan_fails_as_diverged(small_digits: ClassificationData) -> None:
    exploding = TrainingProtocol(
        image_size=16, max_epochs=1, n_seeds=1, batch_size=64, seed=0, base_lr=1e12
    )
    trial = optuna.trial.FixedTrial(
        {"importance:0": 0.9, "importance:1": 0.9, "importance:2": 0.9, "importance:3": 0.9}
        | {"freeze_threshold": 0.1}
    )
    with pytest.raises(TrialFailed, match=r"^diverged: FloatingPointError: non-finite"):
        objective(small_digits, exploding)(trial)
    assert trial.user_attrs["fail_reason"].startswith("diverged")


def test_setup_errors_are_not_trial_failures(small_digits: ClassificationData) -> None:
    """A study continued under another sampler stops the run instead of failing every trial."""
    s = optuna.create_study(direction="maximize")  # TPE
    s.set_user_attr("sampler", "biotune")
    with pytest.raises(Exception, match="was run with the 'biotune' sampler"):
        run_to_budget(s, objective(small_digits), budget=2)


def test_failures_in_a_row_stop_the_run_and_keep_the_study(
    small_digits: ClassificationData, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_on(set(range(100)), RuntimeError("CUDA error: an illegal memory access"), monkeypatch)
    s = study()
    with pytest.raises(TooManyFailures, match=r"^3 trials in a row failed, the last with: error"):
        run_to_budget(s, objective(small_digits), budget=5, max_failures_in_a_row=3)
    assert [t.state for t in s.trials] == [TrialState.FAIL] * 3


def test_the_cli_reports_failures_in_a_row_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from biotune_optuna.cli import main
    from tests.cli._specs import tiny_spec

    failing_on(set(range(100)), MemoryError(), monkeypatch)
    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "-q", "--max-failures", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 trials in a row failed" in err[0] and "out of memory" in err[0]
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 2  # kept


def test_reasons_say_what_kind_of_failure() -> None:
    assert failure_reason(MemoryError()).startswith("out of memory: MemoryError")
    assert (
        failure_reason(FloatingPointError("nan loss")) == "diverged: FloatingPointError: nan loss"
    )
    long = failure_reason(ValueError("x" * 5000))
    assert len(long) == 500 and long.endswith("…")
    assert math.isfinite(len(failure_reason(KeyError("a\nb"))))
    assert "\n" not in failure_reason(KeyError("a\nb"))
