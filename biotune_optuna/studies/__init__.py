"""Studies people create, resume, compare and browse (imports without torch).

- :func:`load_spec` / :class:`StudySpec`: a study described by a TOML file in ``studies/``.
- :func:`open_study`: create the spec's study or resume it, refusing other sampler settings.
- :func:`open_storage`: a ``sqlite:///``, ``journal:///`` or PostgreSQL URL opened with
  heartbeats, so that trials whose worker died are retried with their genes.
- :func:`run_to_budget`: run a study to its budget; failed trials are replaced.
- :func:`build_objective`: the spec's objective, the same under every sampler.
- :func:`save_study_note`, :func:`save_study_figures`, :class:`DashboardUpdater`: what
  optuna-dashboard shows of a BioTune study.
"""

from biotune_optuna.studies._dashboard import DashboardUpdater
from biotune_optuna.studies._dashboard import plan_markdown
from biotune_optuna.studies._dashboard import save_plan_note
from biotune_optuna.studies._dashboard import save_study_figures
from biotune_optuna.studies._dashboard import save_study_note
from biotune_optuna.studies._dashboard import serve_dashboard
from biotune_optuna.studies._heartbeat import HeartbeatJournalStorage
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._objectives import describe_objective
from biotune_optuna.studies._objectives import load_data
from biotune_optuna.studies._pruners import create_pruner
from biotune_optuna.studies._pruners import PRUNERS
from biotune_optuna.studies._report import best_plan_rows
from biotune_optuna.studies._report import best_so_far
from biotune_optuna.studies._report import compare_figures
from biotune_optuna.studies._report import compare_rows
from biotune_optuna.studies._report import markdown_table
from biotune_optuna.studies._report import status_summary
from biotune_optuna.studies._session import check_study_sampler
from biotune_optuna.studies._session import finished_trials
from biotune_optuna.studies._session import load_study
from biotune_optuna.studies._session import open_study
from biotune_optuna.studies._session import run_to_budget
from biotune_optuna.studies._session import running_trials_health
from biotune_optuna.studies._session import SamplerMismatchError
from biotune_optuna.studies._session import study_exists
from biotune_optuna.studies._session import TooManyFailures
from biotune_optuna.studies._spec import load_spec
from biotune_optuna.studies._spec import parse_spec
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import StorageError


__all__ = [
    "PRUNERS",
    "DashboardUpdater",
    "HeartbeatJournalStorage",
    "SamplerMismatchError",
    "SpecError",
    "StorageError",
    "StudySpec",
    "TooManyFailures",
    "best_plan_rows",
    "best_so_far",
    "build_objective",
    "check_study_sampler",
    "compare_figures",
    "compare_rows",
    "create_pruner",
    "describe_objective",
    "finished_trials",
    "load_data",
    "load_spec",
    "load_study",
    "markdown_table",
    "open_storage",
    "open_study",
    "parse_spec",
    "plan_markdown",
    "run_to_budget",
    "running_trials_health",
    "save_plan_note",
    "save_study_figures",
    "save_study_note",
    "serve_dashboard",
    "status_summary",
    "study_exists",
]
