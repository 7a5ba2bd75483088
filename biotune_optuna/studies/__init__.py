"""Studies people create, resume, compare and browse (imports without torch).

- :func:`load_spec` / :class:`StudySpec`: a study described by a TOML file in ``studies/``;
  a bad file raises :class:`SpecError` with one line that says what to fix.
- :func:`open_study`: create the spec's study or resume it, refusing other sampler settings;
  :func:`load_study` loads an existing one, for reports.
- :func:`open_storage`: a ``sqlite:///``, ``journal:///`` or PostgreSQL URL opened with
  heartbeats, so that trials whose worker died are retried with their genes.
- :func:`run_to_budget`: run a study to its budget; failed trials are replaced.
  :func:`finished_trials` counts the trials that count toward it.
- :func:`build_objective`: the spec's objective, the same under every sampler.
- :func:`save_study_note`, :func:`save_study_figures`, :class:`DashboardUpdater`: what
  optuna-dashboard shows of a BioTune study.

The rest (reports, plan tables and races, retraining, baselines, workers) lives in private
``_name`` modules.
"""

from biotune_optuna.studies._dashboard import DashboardUpdater
from biotune_optuna.studies._dashboard import save_study_figures
from biotune_optuna.studies._dashboard import save_study_note
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._session import finished_trials
from biotune_optuna.studies._session import load_study
from biotune_optuna.studies._session import open_study
from biotune_optuna.studies._session import run_to_budget
from biotune_optuna.studies._spec import load_spec
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import open_storage


__all__ = [
    "DashboardUpdater",
    "SpecError",
    "StudySpec",
    "build_objective",
    "finished_trials",
    "load_spec",
    "load_study",
    "open_storage",
    "open_study",
    "run_to_budget",
    "save_study_figures",
    "save_study_note",
]
