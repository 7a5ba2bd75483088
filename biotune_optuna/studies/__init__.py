"""Studies people create, resume, compare and browse (imports without torch).

- :func:`load_spec` / :class:`StudySpec`: a study described by a TOML file in ``studies/``.
- :func:`prepare_study`: build the spec's objective and create or resume its study (refusing
  other sampler settings), the one way a run begins; :func:`load_study` loads an existing one.
- :func:`open_storage`: a ``sqlite:///``, ``journal:///`` or PostgreSQL URL opened with
  heartbeats, so that trials whose worker died are retried with their genes.
- :func:`run_to_budget`: run a study to its budget; failed trials are replaced.
- :func:`recommend`: the plan a study recommends, an estimate robust to fold and seed noise
  (the same rule for every sampler).
- :func:`build_objective`: the spec's objective, the same under every sampler (one objective
  may serve several studies through :func:`prepare_study`).
- :func:`save_study_note`, :func:`save_study_figures`, :class:`DashboardUpdater`: what
  optuna-dashboard shows of a BioTune study.

The rest (reports, plan tables and races, retraining, baselines, workers) lives in private
``_name`` modules.
"""

from biotune_optuna.studies._dashboard import DashboardUpdater
from biotune_optuna.studies._dashboard import save_study_figures
from biotune_optuna.studies._dashboard import save_study_note
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._recommendation import recommend
from biotune_optuna.studies._session import finished_trials
from biotune_optuna.studies._session import load_study
from biotune_optuna.studies._session import prepare_study
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
    "prepare_study",
    "recommend",
    "run_to_budget",
    "save_study_figures",
    "save_study_note",
]
