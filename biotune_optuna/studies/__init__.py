"""Studies people create, resume, compare and browse (imports without torch).

- :func:`load_spec` / :class:`StudySpec`: a study described by a TOML file in ``studies/``.
- :func:`prepare_study`: build the spec's objective and create or resume its study, the one
  way a run begins; :func:`open_study` opens the study alone, refusing other sampler settings.
- :func:`open_storage`: a ``sqlite:///``, ``journal:///`` or PostgreSQL URL opened with
  heartbeats, so that trials whose worker died are retried with their genes.
- :func:`run_to_budget`: run a study to its budget; failed trials are replaced.
- :func:`recommend` / :func:`current_recommendation`: the plan a study recommends, an
  estimate robust to fold and seed noise (the same rule for every sampler).
- :func:`build_objective`: the spec's objective, the same under every sampler, a
  :class:`StudyObjective`.
- :func:`save_study_note`, :func:`save_study_figures`, :class:`DashboardUpdater`: what
  optuna-dashboard shows of a BioTune study.

Its public modules hold the rest: :mod:`~biotune_optuna.studies.spec` (the typed sections),
:mod:`~biotune_optuna.studies.session`, :mod:`~biotune_optuna.studies.storage`,
:mod:`~biotune_optuna.studies.workers`, :mod:`~biotune_optuna.studies.dashboard`,
:mod:`~biotune_optuna.studies.report` (status and compare tables),
:mod:`~biotune_optuna.studies.retrain` and :mod:`~biotune_optuna.studies.baselines`.
"""

from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import recommend
from biotune_optuna.studies._recommendation import Recommendation
from biotune_optuna.studies._recommendation import recommended_trial
from biotune_optuna.studies._recommendation import record_recommendation
from biotune_optuna.studies.dashboard import DashboardUpdater
from biotune_optuna.studies.dashboard import save_study_figures
from biotune_optuna.studies.dashboard import save_study_note
from biotune_optuna.studies.dashboard import serve_dashboard
from biotune_optuna.studies.objectives import build_objective
from biotune_optuna.studies.session import finished_trials
from biotune_optuna.studies.session import load_study
from biotune_optuna.studies.session import open_study
from biotune_optuna.studies.session import prepare_study
from biotune_optuna.studies.session import run_to_budget
from biotune_optuna.studies.session import TooManyFailures
from biotune_optuna.studies.spec import load_spec
from biotune_optuna.studies.spec import parse_spec
from biotune_optuna.studies.spec import SpecError
from biotune_optuna.studies.spec import StudySpec
from biotune_optuna.studies.storage import open_storage
from biotune_optuna.studies.storage import StorageError
from biotune_optuna.trials import StudyObjective


__all__ = [
    "DashboardUpdater",
    "HeartbeatJournalStorage",
    "Recommendation",
    "SpecError",
    "StorageError",
    "StudyObjective",
    "StudySpec",
    "TooManyFailures",
    "build_objective",
    "current_recommendation",
    "finished_trials",
    "load_spec",
    "load_study",
    "open_storage",
    "open_study",
    "parse_spec",
    "prepare_study",
    "recommend",
    "recommended_trial",
    "record_recommendation",
    "run_to_budget",
    "save_study_figures",
    "save_study_note",
    "serve_dashboard",
]
