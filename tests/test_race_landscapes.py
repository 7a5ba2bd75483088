"""Scoring of benchmarks/race_landscapes.py: the recommendation's true value, regret, ranks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
import pytest


SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "race_landscapes.py"


@pytest.fixture(scope="module")
def race() -> ModuleType:
    spec = importlib.util.spec_from_file_location("race_landscapes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _trials(observed: list[float], true: list[float], xs: list[float]) -> list[Any]:
    space = {"x": FloatDistribution(0.0, 1.0)}
    trials = []
    for number, (value, truth, x) in enumerate(zip(observed, true, xs)):
        trial = optuna.trial.create_trial(
            value=value, params={"x": x}, distributions=space, user_attrs={"true_value": truth}
        )
        trial.number = number
        trials.append(trial)
    return trials


def _problem(race: ModuleType, **kw: Any) -> Any:
    space = {"x": FloatDistribution(0.0, 1.0)}
    kw.setdefault("direction", "maximize")
    return race.Problem("toy", "p", space, lambda p, n: (0.0, 0.0), optimum=1.0, **kw)


def test_score_is_the_true_value_of_the_recommendation_on_the_first_trials(
    race: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trial 1 is a lucky draw of a poor configuration; trial 3 repeats trial 2's configuration.
    trials = _trials([0.5, 0.95, 0.8, 0.7], [0.5, 0.6, 0.9, 0.9], [0.1, 0.3, 0.6, 0.6])
    seen = []

    def fake(first: list[Any], direction: str) -> Any:  # the noise-aware rule's stand-in
        seen.append(([t.number for t in first], direction))
        return max(first, key=lambda t: t.user_attrs["true_value"])

    monkeypatch.setattr(race, "_recommend", fake)
    record = race.study_record(_problem(race), "s", 0, trials, [1, 2, 4], "default")
    assert seen == [([0], "maximize"), ([0, 1], "maximize"), ([0, 1, 2, 3], "maximize")]
    assert record["score_at"] == pytest.approx({"1": -0.5, "2": -0.4, "4": -0.1})
    assert record["max_score_at"] == pytest.approx({"1": -0.5, "2": -0.4, "4": -0.4})
    assert record["oracle_score_at"] == pytest.approx({"1": -0.5, "2": -0.4, "4": -0.1})
    assert record["best_val_at"] == pytest.approx({"1": -0.5, "2": -0.05, "4": -0.05})
    assert record["curve"] == pytest.approx([-0.5, -0.05, -0.05, -0.05])
    assert (record["duplicates"], record["distinct"]) == (1, 3)
    assert record["duplicates_at"] == {"1": 0, "2": 0, "4": 1}
    rule_max = race.study_record(_problem(race), "s", 0, trials, [4], "max")
    assert rule_max["score_at"] == pytest.approx({"4": -0.4})


def test_regret_is_normalised_by_the_reference_when_minimising(race: ModuleType) -> None:
    problem = _problem(race, direction="minimize", reference=5.0)
    assert problem.regret(1.0) == 0.0
    assert problem.regret(3.0) == pytest.approx(0.5)
    assert problem.regret(5.0) == pytest.approx(1.0)


def test_mean_ranks_average_ties_over_complete_cells(race: ModuleType) -> None:
    def rec(sampler: str, seed: int, score: float) -> dict[str, Any]:
        return {"task": "t", "problem": "p", "seed": seed, "sampler": sampler,
                "score_at": {"5": score}}  # fmt: skip

    records = [rec("a", 0, -0.1), rec("b", 0, -0.1), rec("c", 0, -0.3)]
    records += [rec("a", 1, -0.2), rec("b", 1, -0.1)]  # seed 1 lacks "c": not ranked
    ranks, cells = race.mean_ranks(records, ["a", "b", "c"], 5)
    assert cells == 1
    assert ranks == {"a": 1.5, "b": 1.5, "c": 3.0}


def test_noisy_synthetic_study_scores_the_true_landscape(race: ModuleType) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = race.synthetic_problem(6, 3, noise_sd=race.NOISE_SD)
    trials, _ = race.run_study(problem, "random", {}, 3, 6)
    for trial in trials:
        noise = np.random.default_rng([3, trial.number]).normal(0.0, race.NOISE_SD)
        assert trial.value == pytest.approx(trial.user_attrs["true_value"] + noise)
    record = race.study_record(problem, "random", 3, trials, [6], "max")
    best = max(trials, key=lambda t: t.value).user_attrs["true_value"]
    assert record["score_at"]["6"] == pytest.approx(best - problem.optimum)
    assert record["score_at"]["6"] <= record["oracle_score_at"]["6"] <= 0.0


def test_ablation_plan_adds_the_switched_off_options(race: ModuleType) -> None:
    units = race.plan_units(["synthetic-6-noisy"], ["random"], [0, 1], {}, ["synthetic-6-noisy"])
    labels = {label for unit in units for label, _ in unit.labels}
    assert labels == {"random", *race.ABLATIONS}
    gp = race.plan_units(["synthetic-6"], ["random", "gp"], [0, 1, 2], {"gp": 1}, [])
    assert [u.seed for u in gp if u.sampler == "gp"] == [0]
    tasks = ["synthetic-6", "bbob-mixint"]
    per_task = race.plan_units(tasks, ["gp"], [0, 1, 2], {"gp:bbob-mixint": 2}, [])
    assert [(u.task, u.seed) for u in per_task] == [
        ("synthetic-6", 0), ("synthetic-6", 1), ("synthetic-6", 2),
        ("bbob-mixint", 0), ("bbob-mixint", 1),
    ]  # fmt: skip


def test_bbob_mixint_optimum_has_zero_regret(race: ModuleType) -> None:
    pytest.importorskip("cocoex")
    problem = race.coco_problem(race._coco_suite(), 15, 5, 2)
    assert list(problem.space)[:4] == ["x0", "x1", "x2", "x3"]
    assert all(
        isinstance(d, optuna.distributions.IntDistribution)
        for d in list(problem.space.values())[:4]
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = {n: (d.low + (d.high - d.low) * rng.random()) for n, d in problem.space.items()}
        params.update({n: round(v) for n, v in list(params.items())[:4]})
        assert problem.regret(problem.evaluate(params, 0)[1]) >= 0.0
    assert problem.regret(problem.optimum) == 0.0


def test_cached_studies_score_as_fresh_ones(race: ModuleType, tmp_path: Path) -> None:
    unit = race.Unit("synthetic-6-noisy", 1, "random", (), (("random", "max"),))
    cache = tmp_path / "studies.jsonl"
    fresh = race.run_units([unit], 8, [4, 8], 1, False, cache)
    assert len(cache.read_text().splitlines()) == 1
    again = race.run_units([unit], 8, [4, 8], 1, False, cache)
    assert again == fresh
    assert len(cache.read_text().splitlines()) == 1
