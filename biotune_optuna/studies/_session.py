"""Create, resume and check studies from specs (imports without torch).

Resuming a study means: the same study name in the same storage, with the same sampler and the
same sampler settings. A spec that asks for anything else is refused before anything is written
(:func:`open_study`), and an objective run under another sampler than the study's own, the
usual accident being ``optuna.load_study(...)`` without ``sampler=``, which falls back to TPE,
stops at its first trial (:func:`check_study_sampler`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import time
from typing import Any
import warnings

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from biotune_optuna.failures import FAIL_REASON_ATTR
from biotune_optuna.failures import TrialFailed
from biotune_optuna.plan import IMPORTANCE_PREFIX
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import recorded_sampler
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies._heartbeat import running_trial_health
from biotune_optuna.studies._heartbeat import this_process
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._objectives import describe_objective
from biotune_optuna.studies._optuna_bridge import storage_of
from biotune_optuna.studies._optuna_bridge import trial_id
from biotune_optuna.studies._recommendation import record_recommendation
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import check_storage_file
from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import file_of_storage
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._warm_start import warm_start_plans
from biotune_optuna.trials import FAILED_TRIAL_KEY
from biotune_optuna.trials import StudyObjective


__all__ = [
    "FINISHED",
    "TooManyFailures",
    "finished_trials",
    "load_study",
    "missing_study",
    "open_study",
    "prepare_study",
    "reading_storage",
    "run_to_budget",
    "running_trials_health",
    "study_exists",
    "study_names",
]

#: Trial states that count towards a budget: a FAILED trial is replaced by another.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def reading_storage(storage: str) -> BaseStorage:
    """The storage of URL ``storage`` opened for reading: never creates a file.

    Raises:
        SpecError: If the URL is malformed, the file is missing or not a study storage, or the
            server does not answer.
    """
    return open_storage(storage, create=False)


def _stored_study(
    url: str, name: str, opened: Callable[[], BaseStorage] | None = None
) -> optuna.Study | None:
    """Study ``name`` of storage ``url`` (``None`` if absent), opening the storage once, and
    not at all when its file does not exist yet (so nothing is created to find out).

    ``opened`` opens the storage (default: for reading).
    """
    path = check_storage_file(url)
    if path is not None and not path.exists():
        return None
    storage = opened() if opened is not None else reading_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def study_exists(storage: str, name: str) -> bool:
    """Whether the storage holds study ``name``; never creates a file to find out.

    Raises:
        SpecError: If the storage cannot be opened (malformed URL, a file that is not a study
            storage, a server that does not answer).
    """
    return _stored_study(storage, name) is not None


def study_names(storage: str) -> list[str]:
    """Names of the studies in ``storage`` (none if its file does not exist yet)."""
    path = file_of_storage(storage)
    if path is not None and not path.exists():
        return []
    return [s.study_name for s in reading_storage(storage).get_all_studies()]


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    return [
        f"{key} {stored[key]!r} (stored) vs {wanted[key]!r} (asked)"
        for key in wanted
        if key in stored and stored[key] != wanted[key]
    ]


def load_study(spec: StudySpec) -> optuna.Study:
    """Load the spec's existing study (for reading: status, best, compare, retrain).

    Raises:
        SpecError: If the storage does not hold the study.
    """
    study = _stored_study(spec.storage, spec.name)
    if study is None:
        raise missing_study(spec.storage, spec.name)
    return study


def missing_study(storage: str, name: str) -> SpecError:
    """The error of every command that reads a study the storage does not hold (yet)."""
    return SpecError(
        f"no study `{name}` in {display_storage(storage)}; `biotune-optuna run` creates it"
    )


def open_study(
    spec: StudySpec,
    *,
    search_space: dict[str, optuna.distributions.BaseDistribution] | None = None,
    objective_description: str = "",
) -> optuna.Study:
    """Create the spec's study, or resume it with the same sampler and settings.

    Args:
        spec: The study spec.
        search_space: The objective's genes (BioTune samples them jointly from trial 0), or
            a baseline strategy's searched hyperparameters (the grid sampler needs them).
        objective_description: What the objective trains, stored on a new study.

    Returns:
        The study, with the spec's sampler and pruner attached, on a storage that records a
        heartbeat per running trial and retries trials whose worker died
        (:func:`~biotune_optuna.studies._storage.open_storage`).

    Raises:
        SpecError: If the storage cannot hold the study, or the study exists and was run with
            another sampler or other sampler settings (nothing is written then).
    """
    wanted = spec.identity()
    storage: BaseStorage | None = None

    def with_heartbeats() -> BaseStorage:
        nonlocal storage
        storage = open_storage(
            spec.storage,
            heartbeat_interval=spec.heartbeat_interval,
            grace_period=spec.grace_period,
            durable=spec.objective != "table",  # a replay rebuilds in seconds
        )
        return storage

    existing = _stored_study(spec.storage, spec.name, with_heartbeats)
    if existing is not None:
        _refuse_other_settings(existing, spec, wanted)
    sampler = SAMPLERS.create(
        spec.sampler,
        seed=spec.seed,
        search_space=search_space,
        options=_sampler_options(spec, search_space, started=_started(existing)),
    )
    pruner = PRUNERS.create(spec.pruner, spec.pruner_options)
    storage = storage if storage is not None else with_heartbeats()
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.name,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=existing is not None,
        )
    except optuna.exceptions.DuplicatedStudyError:
        # Another worker (another host) created the study since we looked: wait for it to
        # record its settings, and refuse to join if they are not ours.
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
        _wait_for_settings(study)
        _refuse_other_settings(study, spec, wanted)
    if "sampler" not in study.user_attrs:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        study.set_user_attr("budget", spec.describe_budget(search_space or {}))
        study.set_user_attr("base_lr", spec.protocol.base_lr)
        if objective_description:
            study.set_user_attr("objective", objective_description)
        if spec.path is not None:
            study.set_user_attr("spec_file", str(spec.path.resolve()))
    return study


def _started(study: optuna.Study | None) -> bool:
    """Whether a stored study has finished a trial (a study created by a run that stopped
    before its first trial finished has not: its sampler may not have stored its plans)."""
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return study is not None and bool(study.get_trials(deepcopy=False, states=finished))


def _sampler_options(
    spec: StudySpec,
    search_space: dict[str, optuna.distributions.BaseDistribution] | None,
    *,
    started: bool,
) -> dict[str, Any]:
    """The sampler's options: the spec's, with ``warm_start``'s sources read into the plans
    a study starts from. A study that has finished trials keeps the plans stored with it (the
    sources are not read again); one that has not, gets them (the sampler stores them once)."""
    options = dict(spec.sampler_options)
    sources = options.pop("warm_start", None)
    if sources and not started:
        prefix = IMPORTANCE_PREFIX
        blocks = [name[len(prefix) :] for name in search_space or {} if name.startswith(prefix)]
        options["warm_start"] = warm_start_plans(sources, blocks)
    return options


def prepare_study(
    spec: StudySpec, *, objective: StudyObjective | None = None
) -> tuple[optuna.Study, StudyObjective]:
    """Build the spec's objective and create or resume its study for it: the one way a run
    begins (``biotune-optuna run``, ``baselines``, the benchmarks).

    The objective is built first, so that a model or data that cannot be loaded fails before
    anything is written; the study gets the objective's search space (BioTune's genes, or a
    baseline's searched hyperparameters) and its description (:func:`open_study`).

    Args:
        spec: The study spec.
        objective: An objective already built for this spec's model and data (one objective,
            and its feature cache, shared by the studies of several samplers or seeds);
            ``None`` builds the spec's (:func:`~biotune_optuna.studies.build_objective`).

    Returns:
        ``(study, objective)``.

    Raises:
        SpecError: If the objective cannot be built, or the study cannot be opened
            (:func:`open_study`).
    """
    objective = objective if objective is not None else build_objective(spec)
    study = open_study(
        spec,
        search_space=objective.search_space,
        objective_description=describe_objective(spec),
    )
    return study, objective


def _refuse_other_settings(study: optuna.Study, spec: StudySpec, wanted: dict[str, Any]) -> None:
    """Raise :class:`SpecError` if the stored study was run with other settings than ``spec``."""
    differences = _differences(study.user_attrs, wanted)
    stored_sampler = recorded_sampler(study)
    if stored_sampler is not None and stored_sampler != spec.sampler and not differences:
        differences = [f"sampler {stored_sampler!r} (stored) vs {spec.sampler!r} (asked)"]
    if differences:
        raise SpecError(
            f"study `{spec.name}` exists in {display_storage(spec.storage)} with other "
            f"settings: {'; '.join(differences)}. Resume it with the same settings, or give "
            "the study another name"
        )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SpecError(f"study `{spec.name}` exists and is not maximising")


#: How long a worker that lost the race to create a study waits for the winner's settings.
SETTINGS_WAIT_S = 30.0


def _wait_for_settings(study: optuna.Study) -> None:
    """Until the study's creator has recorded its settings (``budget`` is written after
    them), or :data:`SETTINGS_WAIT_S` passed (the creator died: this worker records its own)."""
    deadline = time.monotonic() + SETTINGS_WAIT_S
    while "budget" not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.2)


def finished_trials(study: optuna.Study) -> int:
    """Trials that count towards the budget (COMPLETE or PRUNED)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class TooManyFailures(RuntimeError):
    """Trials in a row failed in this process: the cause is the setup, not one plan."""


class _FailureStreak:
    """Optuna callback: count this process's trials and its failures in a row; stop the
    study after ``limit`` failures in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self.ran = 0
        self.last_reason = ""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.ran += 1
        if trial.state != TrialState.FAIL:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.last_reason = str(
            trial.user_attrs.get(FAIL_REASON_ATTR)
            or trial.system_attrs.get("fail_reason")
            or "no reason recorded"
        )
        if self.in_a_row >= self.limit:
            study.stop()


def run_to_budget(
    study: optuna.Study,
    objective: Any,
    budget: int,
    *,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    max_failures_in_a_row: int = 5,
    stop_requested: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = lambda text: None,
) -> int:
    """Run ``objective`` until the study holds ``budget`` finished trials; return how many ran.

    Finished means COMPLETE or PRUNED, counted over every worker through
    :class:`optuna.study.MaxTrialsCallback`, so any number of processes can share the budget.
    A trial that fails (:class:`~biotune_optuna.failures.TrialFailed`: it diverged, ran out of
    memory…) stays FAILED with its reason, and another trial is run in its place. At the end
    the study's recommended trial is recorded in it
    (:func:`~biotune_optuna.studies._recommendation.record_recommendation`, about a second for 1000
    trials; a model that cannot be fitted falls back to plan means and never fails the run).

    Dead trials (their worker was killed) are failed first, even when the budget is met, and
    their retries run in their place in the search, even beyond the budget: a retry finishes
    a trial that was started within it. A trial that another worker took for dead while this
    one still ran it (a storage too slow for the grace period) is dropped, and the run goes on.

    Args:
        study: The study.
        objective: Its objective.
        budget: Finished trials the study should hold.
        callbacks: More callbacks of ``study.optimize``.
        max_failures_in_a_row: Failed trials in a row after which the run stops.
        stop_requested: Asked after every ``optimize``; ``True`` ends the run (a Ctrl-C that
            called ``study.stop()``).
        say: Told, in one line, of every trial dropped because it was taken for dead.

    Raises:
        TooManyFailures: After ``max_failures_in_a_row`` failed trials in a row in this
            process; the study is kept as it is.
    """
    streak = _FailureStreak(max_failures_in_a_row)
    tracked = _TrackedObjective(objective)
    _fail_dead_trials(study)
    while not stop_requested():
        finished, retries = finished_trials(study), _waiting_retries(study)
        n_trials = budget - finished if finished < budget else retries
        if n_trials <= 0:
            break
        stop = optuna.study.MaxTrialsCallback(max(budget, finished + retries), states=FINISHED)
        try:
            study.optimize(
                tracked,
                n_trials=n_trials,
                catch=(TrialFailed,),
                callbacks=[stop, streak, *callbacks],
            )
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError, AssertionError):
            # Optuna's `tell` refuses the finished trial with ValueError, which its logging
            # of the outcome turns into an AssertionError ("Should not reach") when the
            # objective itself returned.
            number = tracked.taken_for_dead(study)
            if number is None:
                raise
            say(
                f"trial {number} was taken for dead by another worker while this one ran it; "
                "its result is dropped (a longer grace_period avoids this)"
            )
            continue
        if streak.in_a_row >= streak.limit:
            raise TooManyFailures(
                f"{streak.in_a_row} trials in a row failed, the last with: {streak.last_reason}. "
                "The study is kept; fix the cause and run the same command again"
            )
    record_recommendation(study)
    return streak.ran


class _TrackedObjective:
    """The objective, remembering the trial it runs (to tell a trial failed under it)."""

    def __init__(self, objective: Callable[[optuna.Trial], Any]) -> None:
        self.objective = objective
        self.trial_id: int | None = None

    def __call__(self, trial: optuna.Trial) -> Any:
        self.trial_id = trial_id(trial)
        return self.objective(trial)

    def taken_for_dead(self, study: optuna.Study) -> int | None:
        """The number of the trial this process ran, if another process has finished it."""
        if self.trial_id is None:
            return None
        trial = storage_of(study).get_trial(self.trial_id)
        self.trial_id = None
        return trial.number if trial.state.is_finished() else None


def _fail_dead_trials(study: optuna.Study) -> None:
    """Fail the study's dead trials and create their retries (storages with heartbeats)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _waiting_retries(study: optuna.Study) -> int:
    """Retries of dead trials that wait for a worker."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sum(1 for t in waiting if FAILED_TRIAL_KEY in t.system_attrs)


def running_trials_health(study: optuna.Study, grace_period: int) -> list[tuple[int, str]]:
    """Each running trial's number and health in words: ``"dead: ..."`` (its process on this
    host is gone, or it has been silent for longer than ``grace_period``), ``"alive: ..."``,
    or that it never beat (:func:`~biotune_optuna.studies._heartbeat.running_trial_health`)."""
    me = this_process()
    return [
        (t.number, running_trial_health(storage_of(study), t, grace_period=grace_period, me=me))
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ]
