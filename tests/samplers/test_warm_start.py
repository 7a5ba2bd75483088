"""Warm start: generation 0 and the surrogate's prior from plans of earlier studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from biotune_optuna.plan import plan_search_space
from biotune_optuna.samplers import BioTunePlusSampler
from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers._keys import WARM_START_KEY
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._study_reader import study_attrs
from biotune_optuna.samplers._surrogate import CandidateRanker
from biotune_optuna.samplers._surrogate import prior_weight
from biotune_optuna.samplers._warm_start import check_warm_start


SPACE = plan_search_space(["a", "b", "c"])


def plan(a: float, b: float, c: float, threshold: float, **extra: Any) -> dict[str, Any]:
    params = {"importance:a": a, "importance:b": b, "importance:c": c}
    return {"params": {**params, "freeze_threshold": threshold}, **extra}


PLANS = [
    plan(0.9, 0.1, 0.5, 0.3, value=0.8, source="earlier"),
    plan(0.9, 0.1, 0.5, 0.3, value=0.7, source="earlier"),  # the same plan again
    plan(0.2, 0.6, 0.7, 0.1, value=0.6, source="table:x"),
]


def objective(trial: optuna.Trial) -> float:
    return sum(trial.suggest_float(name, 0.0, 1.0) for name in sorted(SPACE))


def run(sampler: optuna.samplers.BaseSampler, n_trials: int, storage: Any = None) -> optuna.Study:
    study = optuna.create_study(
        direction="maximize", sampler=sampler, storage=storage, study_name="w", load_if_exists=True
    )
    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.fixture(autouse=True)
def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("preset", [BioTuneSampler, BioTunePlusSampler])
def test_the_first_generation_starts_with_the_distinct_prior_plans(preset: type) -> None:
    study = run(preset(search_space=SPACE, warm_start=PLANS, seed=1), 10)
    trials = study.trials
    assert trials[0].params == PLANS[0]["params"]
    assert trials[1].params == PLANS[2]["params"]  # the repeat is dropped
    assert all(t.params not in (PLANS[0]["params"], PLANS[2]["params"]) for t in trials[2:])
    assert trials[0].user_attrs["warm_start"] == {"plan": 0, "source": "earlier", "value": 0.8}
    assert trials[1].user_attrs["warm_start"] == {"plan": 1, "source": "table:x", "value": 0.6}
    assert all("warm_start" not in t.user_attrs for t in trials[2:])
    assert all(t.user_attrs["role"] == "init" for t in trials)
    recorded = study.user_attrs["warm_start"]
    assert recorded["sources"] == ["earlier", "table:x"]
    assert [p["value"] for p in recorded["plans"]] == [0.8, 0.6]


def test_without_warm_start_nothing_changes() -> None:
    cold = run(BioTuneSampler(search_space=SPACE, seed=4), 16)
    again = run(BioTuneSampler(search_space=SPACE, warm_start=[], seed=4), 16)
    assert [t.params for t in cold.trials] == [t.params for t in again.trials]
    assert "warm_start" not in cold.user_attrs
    assert WARM_START_KEY not in study_attrs(cold)


def test_no_more_plans_than_the_population_are_taken() -> None:
    many = [plan(0.5, 0.5, 0.05 * k + 0.1, 0.01) for k in range(12)]
    sampler = BioTunePlusSampler(search_space=SPACE, warm_start=many, population_size=4, seed=0)
    study = run(sampler, 5)
    assert [t.params for t in study.trials[:4]] == [p["params"] for p in many[:4]]
    assert "warm_start" not in study.trials[4].user_attrs


def test_a_resumed_study_seeds_from_its_stored_plans(tmp_path: Path) -> None:
    """A new sampler without the plans (another process) continues where the first stopped,
    as one uninterrupted run does; the surrogate's prior comes from storage too."""
    straight = run(BioTunePlusSampler(search_space=SPACE, warm_start=PLANS, seed=2), 30)
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    run(BioTunePlusSampler(search_space=SPACE, warm_start=PLANS, seed=2), 1, storage)
    run(BioTunePlusSampler(search_space=SPACE, seed=2), 14, storage)
    resumed = run(BioTunePlusSampler(search_space=SPACE, seed=2), 15, storage)
    assert [t.params for t in resumed.trials] == [t.params for t in straight.trials]
    assert resumed.trials[1].user_attrs["warm_start"]["plan"] == 1


def test_a_study_started_cold_stays_cold_and_says_so(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    run(BioTunePlusSampler(search_space=SPACE, seed=3), 2, storage)
    with pytest.warns(UserWarning, match="warm-start plans it started with"):
        study = run(BioTunePlusSampler(search_space=SPACE, warm_start=PLANS, seed=3), 1, storage)
    assert "warm_start" not in study.trials[2].user_attrs
    assert "warm_start" not in study.user_attrs


@pytest.mark.parametrize(
    ("plans", "space", "message"),
    [
        ([plan(0.5, 0.5, 0.5, 0.2)], None, "needs `search_space`"),
        ([{"params": {"importance:a": 0.5}}], SPACE, "lacks the study's genes"),
        ([plan(0.5, 1.5, 0.5, 0.2)], SPACE, "importance:b=1.5 is outside"),
        ([plan(0.5, 0.5, 0.5, 0.2, value="high")], SPACE, "`value` must be a number"),
        (["0.5"], SPACE, "must be a mapping with a `params` mapping"),
    ],
)
def test_bad_plans_are_refused(plans: list[Any], space: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BioTunePlusSampler(search_space=space, warm_start=plans)


def test_plans_of_another_backbone_are_refused_with_their_genes() -> None:
    other = {"params": {"importance:x": 0.5, "freeze_threshold": 0.1}}
    with pytest.raises(ValueError, match="lacks the study's genes importance:a"):
        check_warm_start([other], SPACE, limit=10, tolerance=1e-9)


def test_the_prior_raises_the_surrogates_score_of_its_plans_with_a_fading_weight() -> None:
    space = GeneSpace(SPACE)
    rng = np.random.default_rng(0)

    def members(n: int) -> list[Member]:
        out = []
        for k in range(n):
            params = space.decode(rng.random(len(space)))
            out.append(Member(k, float(rng.random()), params, {"generation": 0}))
        return out

    target = PLANS[2]["params"]
    genes = space.encode(target, lambda: rng)
    few, many = members(12), members(200)
    gain_few = (
        CandidateRanker(few, space, prior=[target]).scores([genes])[0]
        - CandidateRanker(few, space).scores([genes])[0]
    )
    gain_many = (
        CandidateRanker(many, space, prior=[target]).scores([genes])[0]
        - CandidateRanker(many, space).scores([genes])[0]
    )
    assert gain_few > 0 and gain_many > 0
    assert prior_weight(2, 10) > prior_weight(2, 50) > prior_weight(2, 500) > 0
    assert prior_weight(2, 10) * 2 == pytest.approx(1 / 3)  # two plans count as 1/3 of a trial
