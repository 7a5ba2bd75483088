"""Studies people create, resume, compare and browse (imports without torch).

- :func:`load_spec` / :class:`StudySpec`: a study described by a TOML file in ``studies/``.
- :func:`open_study`: create the spec's study or resume it, refusing other sampler settings.
- :func:`open_storage`: a ``sqlite:///``, ``journal:///`` or PostgreSQL URL opened with
  heartbeats, so that trials whose worker died are retried with their genes.
- :func:`run_to_budget`: run a study to its budget; failed trials are replaced.
- :func:`build_objective`: the spec's objective, the same under every sampler, a
  :class:`StudyObjective`.
- :func:`save_study_note`, :func:`save_study_figures`, :class:`DashboardUpdater`: what
  optuna-dashboard shows of a BioTune study.

Its public modules hold the rest: :mod:`~biotune_optuna.studies._spec` (the typed sections),
:mod:`~biotune_optuna.studies._session`, :mod:`~biotune_optuna.studies._storage`,
:mod:`~biotune_optuna.studies._workers`, :mod:`~biotune_optuna.studies._dashboard`,
:mod:`~biotune_optuna.studies._report` (status and compare tables),
:mod:`~biotune_optuna.studies._retrain` and :mod:`~biotune_optuna.studies._baselines`.
"""

from biotune_optuna.studies._dashboard import DashboardUpdater
from biotune_optuna.studies._dashboard import save_study_figures
from biotune_optuna.studies._dashboard import save_study_note
from biotune_optuna.studies._dashboard import serve_dashboard
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._session import finished_trials
from biotune_optuna.studies._session import load_study
from biotune_optuna.studies._session import open_study
from biotune_optuna.studies._session import run_to_budget
from biotune_optuna.studies._session import TooManyFailures
from biotune_optuna.studies._spec import load_spec
from biotune_optuna.studies._spec import parse_spec
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import StorageError
from biotune_optuna.studies._study_objective import StudyObjective


__all__ = [
    "DashboardUpdater",
    "HeartbeatJournalStorage",
    "SpecError",
    "StorageError",
    "StudyObjective",
    "StudySpec",
    "TooManyFailures",
    "build_objective",
    "finished_trials",
    "load_spec",
    "load_study",
    "open_storage",
    "open_study",
    "parse_spec",
    "run_to_budget",
    "save_study_figures",
    "save_study_note",
    "serve_dashboard",
]
