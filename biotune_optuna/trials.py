"""What a trial records, and where it sits in a study: its generation's data fold, and the
trial a retry stands for.

What evaluates a trial is one :class:`StudyObjective` (the fine-tuning engine's
:class:`~biotune_optuna.finetune.FineTuneObjective`, the synthetic landscape, a replayed plan
table). The keys of a trial's record are written here once (:data:`GENERATION_ATTR`,
:data:`TRAINABLE_FRACTION_ATTR`…) and read by every layer: the sampler mirrors the generation,
the objectives write the rest, the study layer and the CLI read them. The strings are stored
in studies, so they never change.

The paper's protocol (Colan, Davila, Hasegawa, arXiv:2508.15367, §III) trains each generation on
one fold of the data, the folds alternating; every objective (the fine-tuning engine, a replayed
plan table) places a trial on its fold by these rules, under any sampler. Imports without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple
from typing import Protocol
from typing import runtime_checkable

import optuna


__all__ = [
    "DUPLICATE_RETRY_KEY",
    "EPOCHS_ATTR",
    "FAILED_TRIAL_KEY",
    "FOLD_ATTR",
    "FROZEN_BLOCKS_ATTR",
    "GENERATION_ATTR",
    "RESUMED_FROM_ATTR",
    "RETRY_HISTORY_KEY",
    "RUNG_KEY",
    "TRAINABLE_FRACTION_ATTR",
    "TRAINED_BLOCKS_ATTR",
    "WALL_TIME_ATTR",
    "EpochCallback",
    "RungRecord",
    "StudyObjective",
    "TrialPaused",
    "fold_of_generation",
    "prune_if_asked",
    "retried_trial_number",
    "rung_record",
    "spent_epochs",
    "stored_system_attrs",
    "stored_user_attrs",
]

#: Trial user attr: the BioTune generation the trial belongs to (mirrored by the sampler for
#: optuna-dashboard; absent under other samplers).
GENERATION_ATTR = "generation"
#: Trial user attr: the data fold the trial trained on (``GASchedule.fold_of_trial``).
FOLD_ATTR = "fold"
#: Trial user attr: the epochs the trial trained (mean over its training seeds).
EPOCHS_ATTR = "epochs"
#: Trial user attr: the trial's wall-clock seconds.
WALL_TIME_ATTR = "wall_time_s"
#: Trial user attr: the share of the backbone's parameters the trial trained, in ``[0, 1]``.
TRAINABLE_FRACTION_ATTR = "trainable_fraction"
#: Trial user attr: the blocks a plan froze (a table line).
FROZEN_BLOCKS_ATTR = "frozen_blocks"
#: Trial user attr: how many blocks a plan fine-tuned.
TRAINED_BLOCKS_ATTR = "trained_blocks"
#: System attr of a heartbeat retry: the number of the first trial it retries (Optuna's
#: :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`).
FAILED_TRIAL_KEY = "failed_trial"
#: System attr of a heartbeat retry: the numbers of the trials it retries, first to last.
RETRY_HISTORY_KEY = "retry_history"
#: System attr of a heartbeat retry created twice for one dead trial (two workers at once): the
#: one that gave way to the earlier retry (whose number it holds), failed at once and never part
#: of the search.
DUPLICATE_RETRY_KEY = "biotune:duplicate_retry"
#: System attr written by a budget-aware sampler (``[pruner] name = "rungs"``): the epoch the
#: trial trains until, and for a continuation the paused trial it continues (see
#: :class:`RungRecord`).
RUNG_KEY = "biotune:rung"
#: Trial user attr: the epoch a trial's training continued after (a checkpoint of the trial it
#: continues or retries); its ``epochs`` count only what it trained itself.
RESUMED_FROM_ATTR = "resumed_from_epoch"


#: Called as ``on_epoch(trial, epoch, value)`` after every epoch of a trial (progress bars).
EpochCallback = Callable[[optuna.trial.Trial, int, float], None]


@runtime_checkable
class StudyObjective(Protocol):
    """What a study runs: the one interface of every objective a spec builds.

    The fine-tuning engine's :class:`~biotune_optuna.finetune.FineTuneObjective`, the synthetic
    landscape and a replayed plan table (``studies``) are each one;
    :func:`~biotune_optuna.studies.build_objective` builds them for a spec.

    Attributes:
        on_epoch: Called after every epoch of a trial, or ``None``; an objective without
            epochs (the synthetic landscape with one epoch) never calls it.
    """

    on_epoch: EpochCallback | None

    @property
    def blocks(self) -> Sequence[str]:
        """The backbone's block names, in forward order."""
        ...

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The parameters a trial suggests, for the sampler's ``search_space=``."""
        ...

    def __call__(self, trial: optuna.trial.Trial) -> float:
        """Evaluate a trial (maximised)."""
        ...


def fold_of_generation(generation: int, n_folds: int) -> int:
    """The data fold a generation trains and validates on (arXiv:2508.15367, §III).

    Generation ``g >= 1`` uses fold ``(g − 1) mod n_folds`` and the initial population
    (generation 0) uses fold 0: "the initial population and generation 1 both use fold 0",
    after which the folds alternate.
    """
    if generation < 0 or n_folds < 1:
        raise ValueError(f"need generation >= 0 and n_folds >= 1, got {generation}, {n_folds}")
    return max(generation - 1, 0) % n_folds


def stored_user_attrs(trial: optuna.trial.BaseTrial) -> Mapping[str, Any]:
    """User attrs as stored now (the sampler writes ``generation`` after the trial started)."""
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is not None and trial_id is not None:
        return storage.get_trial_user_attrs(trial_id)
    return trial.user_attrs


def stored_system_attrs(trial: optuna.trial.BaseTrial) -> Mapping[str, Any]:
    """System attrs as stored (a heartbeat retry's ``failed_trial`` and ``retry_history``)."""
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is not None and trial_id is not None:
        return storage.get_trial_system_attrs(trial_id)
    return getattr(trial, "system_attrs", {})


def retried_trial_number(trial: optuna.trial.BaseTrial) -> int:
    """The number of the trial a heartbeat retry retries (the first of its chain), else its own.

    Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` (run by
    ``fail_stale_trials`` for a trial whose worker stopped beating) gives the retry the system
    attrs ``failed_trial`` (the first trial retried) and ``retry_history`` (all of them).
    """
    attrs = stored_system_attrs(trial)
    if attrs.get(FAILED_TRIAL_KEY) is not None:
        return int(attrs[FAILED_TRIAL_KEY])
    history = attrs.get(RETRY_HISTORY_KEY) or ()
    return int(history[0]) if history else trial.number


class TrialPaused(optuna.TrialPruned):
    """A trial stopped at its rung by a budget-aware study: PRUNED in Optuna's terms, but its
    checkpoint is kept, for a later trial to continue the same training (a promotion)."""


class RungRecord(NamedTuple):
    """What a budget-aware sampler asked of a trial (the :data:`RUNG_KEY` system attr).

    Attributes:
        until: Train until this epoch, then pause (the protocol's last epoch: finish).
        source: For a continuation, the paused trial it continues; else ``None``.
        head: For a continuation, the first trial of the chain (whose checkpoint key it uses).
        start: For a continuation, the epoch its source paused after (0 for a fresh trial).
        fold: For a continuation, its source's data fold (it continues that training).
        checkpoint: For a continuation, the trial number the chain's checkpoint is saved under
            (the head's, or for a head that was a heartbeat retry, the trial it retried).
    """

    until: int
    source: int | None = None
    head: int | None = None
    start: int = 0
    fold: int | None = None
    checkpoint: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self._asdict().items() if value is not None}

    @classmethod
    def from_json(cls, stored: Any) -> RungRecord | None:
        if not isinstance(stored, Mapping) or not isinstance(stored.get("until"), int):
            return None
        return cls(**{key: stored[key] for key in cls._fields if key in stored})


def rung_record(trial: optuna.trial.BaseTrial | optuna.trial.FrozenTrial) -> RungRecord | None:
    """The trial's :class:`RungRecord` (``None``: not in a budget-aware study, or not yet
    sampled)."""
    if isinstance(trial, optuna.trial.FrozenTrial):
        return RungRecord.from_json(trial.system_attrs.get(RUNG_KEY))
    return RungRecord.from_json(stored_system_attrs(trial).get(RUNG_KEY))


def spent_epochs(trial: optuna.trial.FrozenTrial) -> float:
    """Epochs a finished trial trained itself: its ``epochs`` user attr, else (pruned, killed)
    its last reported step less the epoch it resumed after; what compute counts."""
    if EPOCHS_ATTR in trial.user_attrs:
        return float(trial.user_attrs[EPOCHS_ATTR])
    steps = trial.intermediate_values
    resumed = float(trial.user_attrs.get(RESUMED_FROM_ATTR, 0.0))
    return max(float(max(steps)) - resumed, 0.0) if steps else 0.0


def prune_if_asked(trial: optuna.trial.BaseTrial, epoch: int, value: float, *, last: int) -> None:
    """Ask the study's pruner after ``epoch`` of ``last``; raise :class:`optuna.TrialPruned` if
    it says stop (:class:`TrialPaused` when the trial reached the rung it was asked to train
    until). Never after the last epoch: the trial is trained, stopping it saves nothing and
    throws its value away (Optuna's pruners would prune there too)."""
    if epoch < last and trial.should_prune():
        record = rung_record(trial)
        if record is not None and epoch >= record.until:
            raise TrialPaused(f"paused at its rung after epoch {epoch} at {value:.4f}")
        raise optuna.TrialPruned(f"pruned after epoch {epoch} at {value:.4f}")
