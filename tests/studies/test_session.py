"""Creating, resuming and refusing studies; every sampler by name on the same genes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import threading
import time

import optuna
import pytest

from biotune_optuna.plan import plan_search_space
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import check_study_sampler
from biotune_optuna.samplers import SamplerMismatchError
from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.samplers._registry import GENE_SAMPLERS
from biotune_optuna.samplers._registry import sampler_name
from biotune_optuna.studies import _session as session
from biotune_optuna.studies import build_objective
from biotune_optuna.studies import finished_trials
from biotune_optuna.studies import prepare_study
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._objectives import describe_objective
from biotune_optuna.studies._session import open_study
from biotune_optuna.studies._session import study_exists
from biotune_optuna.studies._spec import parse_spec
from biotune_optuna.studies._synthetic import SyntheticFineTuning


def synthetic_spec(tmp_path: Path, **sampler: object) -> object:
    table = {
        "study": {"name": "syn", "storage": f"sqlite:///{tmp_path / 'syn.db'}", "seed": 0},
        "sampler": {"name": "biotune", "population_size": 4, "n_elites": 1, **sampler},
        "budget": {"generations": 2},
        "objective": {"kind": "synthetic", "n_blocks": 4},
    }
    return parse_spec(table, path=tmp_path / "spec.toml")


def run(spec: object, n_trials: int) -> optuna.Study:
    objective = build_objective(spec)
    study = open_study(spec, search_space=plan_search_space(objective.blocks))
    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.mark.parametrize("name", GENE_SAMPLERS)
def test_every_sampler_runs_the_same_genes_by_name(name: str) -> None:
    objective = SyntheticFineTuning(n_blocks=3, seed=0)
    space = plan_search_space(objective.blocks)
    sampler = create_sampler(name, seed=0, search_space=space)
    assert sampler_name(sampler) == name
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=4)
    assert len(study.trials) == 4
    assert all(set(t.params) == set(space) for t in study.trials)


def test_unknown_sampler_options_are_refused() -> None:
    with pytest.raises(ValueError, match="takes no option 'sigma'"):
        create_sampler("cmaes", options={"sigma": 0.3})
    with pytest.raises(ValueError, match="expected an integer"):
        create_sampler("tpe", options={"n_startup_trials": "5"})
    with pytest.raises(ValueError, match="unknown sampler"):
        create_sampler("hillclimb")


def test_a_study_resumes_where_it_stopped(tmp_path: Path) -> None:
    spec = synthetic_spec(tmp_path)
    assert not study_exists(spec.storage, spec.name)
    assert not (tmp_path / "syn.db").exists(), "looking must not create the file"
    first = run(spec, 5)
    assert finished_trials(first) == 5
    assert first.user_attrs["sampler"] == "biotune"
    assert first.user_attrs["schedule"] == [4, 1]
    assert first.user_attrs["budget"] == "2 generations = 14 trials (N=4, E=1)"

    again = run(spec, 9)
    assert finished_trials(again) == 14
    generations = [t.user_attrs["generation"] for t in again.trials]
    assert generations == sorted(generations) and max(generations) == 2

    other = tmp_path / "straight"
    other.mkdir()
    straight = run(synthetic_spec(other), 14)
    assert [t.params for t in straight.trials] == [t.params for t in again.trials], (
        "stopping and resuming must propose the same genotypes as running straight through"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"population_size": 5}, "sampler_options"),
        ({"n_elites": 2}, "sampler_options"),
        ({"momentum": 0.5}, "sampler_options"),
    ],
)
def test_resuming_with_other_sampler_settings_is_refused_and_writes_nothing(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    run(synthetic_spec(tmp_path), 3)
    before = optuna.load_study(study_name="syn", storage=f"sqlite:///{tmp_path / 'syn.db'}")
    n_trials, attrs = len(before.trials), dict(before.user_attrs)
    with pytest.raises(SpecError, match=message) as error:
        open_study(synthetic_spec(tmp_path, **changes))
    assert "exists" in str(error.value) and "another name" in str(error.value)
    after = optuna.load_study(study_name="syn", storage=f"sqlite:///{tmp_path / 'syn.db'}")
    assert len(after.trials) == n_trials and dict(after.user_attrs) == attrs


def test_another_sampler_on_the_same_name_is_refused(tmp_path: Path) -> None:
    spec = synthetic_spec(tmp_path)
    run(spec, 2)
    tpe = dataclasses.replace(spec, sampler="tpe", sampler_options={})
    with pytest.raises(SpecError, match="sampler 'biotune' \\(stored\\) vs 'tpe'"):
        open_study(tpe)
    # --sampler makes a sibling study instead
    sibling = run(spec.with_overrides(sampler="tpe"), 2)
    assert sibling.study_name == "syn-tpe" and sibling.user_attrs["sampler"] == "tpe"


def test_load_study_without_the_sampler_never_silently_switches_to_tpe(tmp_path: Path) -> None:
    """`optuna.load_study` attaches TPE; the check stops that, with or without a spec."""
    spec = synthetic_spec(tmp_path)
    run(spec, 2)
    loaded = optuna.load_study(study_name="syn", storage=spec.storage)
    assert isinstance(loaded.sampler, optuna.samplers.TPESampler)
    with pytest.raises(SamplerMismatchError, match="falls back to TPE"):
        check_study_sampler(loaded)

    # a plain-Optuna BioTune study (no spec, no user attrs) is recognised by its stored state
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    objective = SyntheticFineTuning(n_blocks=3)
    plain = optuna.create_study(
        study_name="plain",
        storage=storage,
        direction="maximize",
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
    )
    plain.optimize(objective, n_trials=2)
    check_study_sampler(plain)
    with pytest.raises(SamplerMismatchError):
        check_study_sampler(optuna.load_study(study_name="plain", storage=storage))
    resumed = optuna.load_study(
        study_name="plain",
        storage=storage,
        sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
    )
    check_study_sampler(resumed)


def test_storage_problems_are_spec_errors(tmp_path: Path) -> None:
    spec = synthetic_spec(tmp_path)
    missing = dataclasses.replace(spec, storage=f"sqlite:///{tmp_path / 'no' / 'x.db'}")
    with pytest.raises(SpecError, match="does not exist"):
        open_study(missing)
    (tmp_path / "dir.db").mkdir()
    directory = dataclasses.replace(spec, storage=f"sqlite:///{tmp_path / 'dir.db'}")
    with pytest.raises(SpecError, match="not a file"):
        open_study(directory)


def test_a_strategy_study_refuses_other_strategy_settings(tmp_path: Path) -> None:
    from biotune_optuna.finetune._registry import search_space

    table = {
        "study": {"name": "s", "storage": f"sqlite:///{tmp_path / 's.db'}"},
        "strategy": {"name": "l2sp", "search": ["alpha"]},
        "budget": {"trials": 3},
    }
    spec = parse_spec(table, path=tmp_path / "spec.toml")
    space = search_space("l2sp", ("alpha",), ())
    study = open_study(spec, search_space=space)
    study.optimize(lambda t: t.suggest_float("alpha", 1e-4, 1.0, log=True), n_trials=1)
    assert study.user_attrs["strategy"] == "l2sp" and study.user_attrs["strategy_search"] == [
        "alpha"
    ]
    table["strategy"] = {"name": "l2sp", "search": ["beta"]}
    with pytest.raises(SpecError, match="strategy_search \\['alpha'\\] \\(stored\\)"):
        open_study(parse_spec(table, path=tmp_path / "spec.toml"), search_space=space)
    table["strategy"] = {"name": "l2sp", "alpha": 0.1}
    with pytest.raises(SpecError, match="strategy_options"):
        open_study(parse_spec(table, path=tmp_path / "spec.toml"), search_space={})
    assert len(optuna.load_study(study_name="s", storage=spec.storage).trials) == 1


def test_a_worker_that_loses_the_race_to_create_the_study_checks_the_winners_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hosts start on a new study at once with different specs: both looked before either
    # created it. The winner created it and is recording its settings.
    winner, loser = synthetic_spec(tmp_path), synthetic_spec(tmp_path, population_size=6)
    url = f"sqlite:///{tmp_path / 'syn.db'}"
    created = optuna.create_study(study_name="syn", storage=url, direction="maximize")

    def record_settings() -> None:
        time.sleep(1.0)
        for key, value in winner.identity().items():
            created.set_user_attr(key, value)
        created.set_user_attr("budget", winner.describe_budget())

    recording = threading.Thread(target=record_settings)
    recording.start()
    monkeypatch.setattr(session, "_stored_study", lambda *args, **kwargs: None)
    with pytest.raises(SpecError, match=r"sampler_options .* \(stored\) vs"):
        open_study(loser)
    recording.join()
    attrs = dict(created.user_attrs)
    assert attrs["sampler_options"] == {"population_size": 4, "n_elites": 1}
    # The same spec joins, and writes nothing.
    joined = open_study(winner)
    assert joined.study_name == "syn" and dict(joined.user_attrs) == attrs
    assert len(optuna.get_all_study_names(url)) == 1


def test_prepare_study_builds_the_objective_and_opens_its_study_in_one_call(
    tmp_path: Path,
) -> None:
    spec = synthetic_spec(tmp_path)
    study, objective = prepare_study(spec)
    assert isinstance(objective, SyntheticFineTuning) and len(objective.blocks) == 4
    assert isinstance(study.sampler, BioTuneSampler)
    assert study.user_attrs["objective"] == describe_objective(spec)
    assert study.user_attrs["budget"] == spec.describe_budget(objective.search_space)
    study.optimize(objective, n_trials=2)
    again, same = prepare_study(spec, objective=objective)  # resumed, the objective shared
    assert same is objective and again.study_name == study.study_name
    assert len(again.trials) == 2 and dict(again.user_attrs) == dict(study.user_attrs)


def test_prepare_study_writes_nothing_when_the_objective_cannot_be_built(tmp_path: Path) -> None:
    table = {
        "study": {"name": "t", "storage": f"sqlite:///{tmp_path / 't.db'}"},
        "budget": {"trials": 2},
        "objective": {"kind": "table", "table": str(tmp_path / "absent.json")},
    }
    with pytest.raises(SpecError, match=r"\[objective\] table"):
        prepare_study(parse_spec(table, path=tmp_path / "spec.toml"))
    assert not (tmp_path / "t.db").exists()
