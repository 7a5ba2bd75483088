"""What optuna-dashboard gets from a study: notes, figures, user attrs (no browser here)."""

from __future__ import annotations

import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import optuna
from optuna_dashboard import get_note
import pytest

from biotune_optuna.plan import FineTunePlan
from biotune_optuna.studies import DashboardUpdater
from biotune_optuna.studies import save_study_figures
from biotune_optuna.studies import save_study_note
from biotune_optuna.studies._dashboard import FITNESS_COST_FIGURE
from biotune_optuna.studies._dashboard import FREEZE_MASK_FIGURE
from biotune_optuna.studies._dashboard import plan_markdown
from biotune_optuna.studies._dashboard import RECOMMENDED_MARK
from biotune_optuna.studies._dashboard import save_plan_note
from biotune_optuna.studies._recommendation import recommended_trial
from biotune_optuna.studies._report import best_plan_rows


PARAMS = {
    "importance:a": 0.9,
    "importance:b": 0.2,
    "importance:c": 0.5,
    "freeze_threshold": 0.4,
}


def test_plans_are_decoded_with_frozen_blocks_frozen() -> None:
    table = plan_markdown(FineTunePlan.from_params(PARAMS, ["a", "b", "c"]))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[4:]}
    assert "**frozen**" in rows["b"] and "fine-tune (×6.31)" in rows["a"]
    assert "1.00e-03" in rows["c"] and "2 of 3 blocks fine-tuned" in table

    trial = optuna.trial.create_trial(
        params=PARAMS,
        distributions={k: optuna.distributions.FloatDistribution(0, 1) for k in PARAMS},
        value=0.5,
    )
    rows = {row[0]: row for row in best_plan_rows(trial)}
    assert rows["b"][2:] == ["frozen", "", ""]
    assert rows["a"][2:] == ["fine-tune", "×6.31", "6.31e-03"]


def test_notes_and_figures_are_stored_in_the_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(storage=storage, direction="maximize", study_name="x")
    study.set_user_attr("sampler", "random")

    def objective(trial: optuna.Trial) -> float:
        genes = {name: trial.suggest_float(name, 0, 1) for name in PARAMS}
        save_plan_note(trial, FineTunePlan.from_params(genes, ["a", "b", "c"]))
        trial.set_user_attr("trainable_fraction", 0.5)
        trial.set_user_attr("generation", 0)
        return genes["importance:a"]

    study.optimize(objective, n_trials=4)
    save_study_note(study)
    save_study_figures(study)

    note = get_note(study)
    assert note.startswith("# x") and "Recommended plan: trial" in note and "4 complete" in note
    assert "Plan of trial 2" in get_note(optuna.Trial(study, study.trials[2]._trial_id))

    from optuna_dashboard import wsgi

    app = wsgi(optuna.storages.get_storage(storage))
    status: list[str] = []
    environ = {"PATH_INFO": f"/api/studies/{study._study_id}", "QUERY_STRING": "after=0"}
    setup_testing_defaults(environ)
    body = b"".join(app(environ, lambda s, h, *exc: status.append(s)))
    assert status[0].startswith("200")
    data = json.loads(body)
    figures = {g["id"] for g in data["plotly_graph_objects"]}
    assert figures == {FREEZE_MASK_FIGURE, FITNESS_COST_FIGURE}
    columns = {a["key"]: a["sortable"] for a in data["union_user_attrs"]}
    assert columns["trainable_fraction"] is True and columns["generation"] is True
    assert "Recommended plan" in data["note"]["body"]
    chosen = recommended_trial(study)  # recorded by the note, shown among the study's attrs
    assert chosen is not None
    assert {"key": "recommended_trial", "value": str(chosen.number)} in data["user_attrs"]


@pytest.mark.parametrize("states", [(), ("FAIL",)])
def test_figures_of_a_study_without_complete_trials_are_skipped(
    tmp_path: Path, states: tuple[str, ...]
) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'y.db'}", direction="maximize")
    for _ in states:
        study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    save_study_figures(study)
    save_study_note(study)
    assert "none yet" in get_note(study) or "1 fail" in get_note(study)


def test_the_note_of_a_baseline_study_shows_its_strategy(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(storage=storage, direction="maximize", study_name="x-l2sp")
    study.set_user_attr("strategy", "l2sp")

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 1e-4, 1.0, log=True)
        trial.set_user_attr("strategy", "l2sp")
        trial.set_user_attr("strategy_settings", {"lr": 1e-3, "alpha": alpha, "beta": 0.01})
        trial.set_user_attr("trainable_fraction", 1.0)
        trial.set_user_attr("frozen_blocks", [])
        return alpha

    study.optimize(objective, n_trials=3)
    save_study_note(study)
    save_study_figures(study)  # no genes: no BioTune figures, no error
    note = get_note(study)
    assert "- **strategy**: `l2sp`" in note and "Recommended trial" in note
    assert "Strategy `l2sp`, 100% of the parameters trained; frozen blocks: none." in note
    chosen = recommended_trial(study)
    assert chosen is not None
    assert f"| alpha          | {chosen.params['alpha']:.3g}" in note


def test_the_updater_records_the_recommendation_and_refreshes_the_note(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'u.db'}"
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(
        storage=storage, direction="maximize", study_name="u", sampler=sampler
    )

    def objective(trial: optuna.Trial) -> float:
        genes = {name: trial.suggest_float(name, 0, 1) for name in PARAMS}
        trial.set_user_attr("fold", trial.number % 2)
        return genes["importance:a"]

    study.optimize(objective, n_trials=8, callbacks=[DashboardUpdater(min_interval_s=0.0)])
    chosen = recommended_trial(study)
    assert chosen is not None and study.user_attrs["recommended_trial"] == chosen.number
    note = get_note(study)
    assert f"## Recommended plan: trial {chosen.number}\n" in note
    assert "estimate**: " in note  # the model's (smoothed) or the plan's own (no noise)
    assert "from 8 complete trials" in note or "the noise is negligible" in note


def test_a_spec_objective_writes_each_trials_plan_as_its_note_through_its_hook(
    tmp_path: Path,
) -> None:
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies._session import open_study
    from biotune_optuna.studies._spec import parse_spec

    table = {
        "study": {"name": "noted", "storage": "sqlite:///noted.db"},
        "sampler": {"population_size": 2, "n_elites": 1},
        "budget": {"trials": 2},
        "model": {"source": "tests.finetune.conftest:tiny_cnn", "head": "3"},
        "data": {"max_train_images": 32, "max_val_images": 32},
        "protocol": {"image_size": 16, "max_epochs": 1, "n_seeds": 1},
    }
    spec = parse_spec(table, path=tmp_path / "noted.toml")
    objective = build_objective(spec)
    assert objective.on_plan is save_plan_note  # the engine itself writes no note
    study = open_study(spec, search_space=objective.search_space)
    study.optimize(objective, n_trials=1)
    note = get_note(optuna.Trial(study, study.trials[0]._trial_id))
    assert note.startswith("## Plan of trial 0") and "| block | importance ν |" in note


def test_the_note_names_the_metric_and_says_what_each_number_is(tmp_path: Path) -> None:
    """ "best" and "recommended" are told apart: the observed value of the recommended trial,
    the model's estimate (not a measurement), and the best single evaluation."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'm.db'}", direction="maximize")
    study.set_user_attr("objective", "efficientnet_lite0 -> digits @ 32 px")
    values = [0.5, 0.9, 0.6, 0.7, 0.65, 0.55, 0.62, 0.58]

    def objective(trial: optuna.Trial) -> float:
        for name in PARAMS:
            trial.suggest_float(name, 0, 1)
        return values[trial.number]

    study.optimize(objective, n_trials=len(values))
    save_study_note(study)
    note = get_note(study)
    assert study.metric_names == ["validation macro accuracy"]  # the dashboard's axis title
    assert "- **metric**: validation macro accuracy (maximized)" in note
    assert "- **observed value**: " in note
    assert "not a measurement" in note or "the noise is negligible" in note
    assert "- **best observed value**: 0.9000 (trial 1, a single evaluation)" in note


def test_the_recommended_trial_is_marked_and_the_mark_moves_with_it(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", direction="maximize")
    values = [0.1, 0.5, 0.3, 0.9]  # fewer than 5 trials: each plan's mean decides

    def objective(trial: optuna.Trial) -> float:
        genes = {name: trial.suggest_float(name, 0, 1) for name in PARAMS}
        save_plan_note(trial, FineTunePlan.from_params(genes, ["a", "b", "c"]))
        return values[trial.number]

    def note_of(number: int) -> str:
        return get_note(optuna.Trial(study, study.trials[number]._trial_id))

    study.optimize(objective, n_trials=3)
    save_study_note(study)
    assert recommended_trial(study).number == 1  # type: ignore[union-attr]
    assert note_of(1).startswith(f"## {RECOMMENDED_MARK}") and "Plan of trial 1" in note_of(1)
    assert not note_of(0).startswith(f"## {RECOMMENDED_MARK}")

    study.optimize(objective, n_trials=1)
    save_study_note(study)
    assert recommended_trial(study).number == 3  # type: ignore[union-attr]
    assert note_of(3).startswith(f"## {RECOMMENDED_MARK}")
    assert note_of(1).startswith("## Plan of trial 1")  # the mark is gone, the plan kept
