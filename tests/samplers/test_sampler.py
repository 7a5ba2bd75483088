"""Behaviour of BioTuneSampler in studies: generations, roles, storage, failures, parallelism."""

from __future__ import annotations

from collections import Counter
import json
from pathlib import Path
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest

from biotune_optuna import BioTuneSampler
from biotune_optuna.plan import importance_param
from biotune_optuna.plan import learning_rate_multiplier
from biotune_optuna.plan import selected_blocks
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._keys import POPULATION_KEY_PREFIX
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from tests.samplers._objectives import flaky
from tests.samplers._processes import run_worker
from tests.samplers._processes import wait


GENES = SyntheticFineTuning(seed=0).param_names


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(sampler: BioTuneSampler, **kwargs: Any) -> optuna.Study:
    return optuna.create_study(sampler=sampler, direction="maximize", **kwargs)


def _lineage(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return trial.system_attrs[LINEAGE_KEY]


def _genotype(trial: optuna.trial.FrozenTrial) -> tuple[float, ...]:
    return tuple(trial.params[name] for name in GENES)


def _space() -> dict[str, optuna.distributions.BaseDistribution]:
    return {name: FloatDistribution(0.0, 1.0) for name in GENES}


def test_paper_preset_generation_structure() -> None:
    study = _study(BioTuneSampler(seed=0))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=140)
    trials = study.trials
    generations = Counter(t.user_attrs["generation"] for t in trials)
    assert generations == {0: 10, **{g: 13 for g in range(1, 11)}}
    for t in trials:
        lineage = _lineage(t)
        assert t.user_attrs["generation"] == lineage["generation"]
        assert t.user_attrs["role"] == lineage["role"]
        assert t.user_attrs["parents"] == lineage["parents"]
        if lineage["generation"] == 0:
            assert lineage["role"] == "init"
        elif lineage["slot"] < 6:
            assert lineage["role"] == "exploit"
            assert lineage["elite"] == lineage["slot"] // 2
        else:
            assert lineage["role"] in ("offspring", "immigrant")
    # Each generation's closing population is stored once, best first, N members.
    attrs = study._storage.get_study_system_attrs(study._study_id)
    by_number = {t.number: t for t in trials}
    for g in range(10):
        population = attrs[f"{POPULATION_KEY_PREFIX}{g}"]
        assert len(population) == 10
        values = [by_number[n].value for n in population]
        assert values == sorted(values, reverse=True)


def test_exploitation_pairs_move_one_selected_gene_of_the_elite() -> None:
    study = _study(BioTuneSampler(seed=1))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=60)
    trials = study.trials
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for g in (1, 2, 3):
        elites = attrs[f"{POPULATION_KEY_PREFIX}{g - 1}"][:3]
        pairs: dict[int, list[optuna.trial.FrozenTrial]] = {}
        for t in trials:
            lin = _lineage(t)
            if lin["generation"] == g and lin["role"] == "exploit":
                pairs.setdefault(lin["elite"], []).append(t)
        assert sorted(pairs) == [0, 1, 2]
        for k, (plus, minus) in pairs.items():
            elite = trials[elites[k]]
            assert plus.user_attrs["parents"] == [elite.number]
            changed = {n for n in GENES if plus.params[n] != elite.params[n]}
            changed |= {n for n in GENES if minus.params[n] != elite.params[n]}
            assert len(changed) == 1
            (name,) = changed
            assert name != THRESHOLD_PARAM
            assert name[len("importance:") :] in selected_blocks(elite.params)
            d_plus = plus.params[name] - elite.params[name]
            d_minus = minus.params[name] - elite.params[name]
            assert abs(d_plus) <= 0.25 + 1e-12 and abs(d_minus) <= 0.25 + 1e-12
            if 0 < plus.params[name] < 1 and 0 < minus.params[name] < 1:
                assert d_plus == pytest.approx(-d_minus)


def test_offspring_come_from_the_mating_pool_and_beaten_parents_leave_it() -> None:
    study = _study(BioTuneSampler(seed=2))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=140)
    by_number = {t.number: t for t in study.trials}
    for g in range(1, 11):
        children = sorted(
            (
                t
                for t in study.trials
                if _lineage(t)["generation"] == g and _lineage(t)["slot"] >= 6
            ),
            key=lambda t: t.number,
        )
        beaten: set[int] = set()
        for child in children:
            lin = _lineage(child)
            pool = lin["pool"]
            assert not beaten & set(pool)
            if lin["role"] == "immigrant":
                assert len(pool) <= 2
                continue
            assert len(pool) > 2
            assert set(lin["parents"]) <= set(pool) and lin["prototype"] in pool
            assert len({*lin["parents"], lin["prototype"]}) == 3
            for p in lin["parents"]:
                if child.value > by_number[p].value:
                    beaten.add(p)


def test_initial_genotypes_and_immigrants_select_a_block() -> None:
    sampler = BioTuneSampler(seed=3, search_space=_space())
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=140)
    roles = Counter(t.user_attrs["role"] for t in study.trials)
    assert roles["immigrant"] > 0
    for t in study.trials:
        if t.user_attrs["role"] in ("init", "immigrant"):
            assert selected_blocks(t.params), t.number


def test_first_generation_is_unmutated_unless_asked() -> None:
    # Without mutation in generation 1 every child lies in the box spanned by its parents and
    # the prototype (crossover and adoption are convex combinations).
    for option, expect_outside in ((False, False), (True, True)):
        study = _study(BioTuneSampler(seed=4, mutate_first_generation=option))
        study.optimize(lambda t: -sum(t.suggest_float(f"x{i}", 0, 1) ** 2 for i in range(7)), 23)
        by_number = {t.number: t for t in study.trials}
        outside = False
        for t in study.trials:
            lin = _lineage(t)
            if lin["generation"] != 1 or lin["role"] != "offspring":
                continue
            ids = [*lin["parents"], lin["prototype"]]
            for i in range(7):
                values = [by_number[n].params[f"x{i}"] for n in ids]
                if not min(values) - 1e-12 <= t.params[f"x{i}"] <= max(values) + 1e-12:
                    outside = True
        assert outside == expect_outside


def test_reevaluated_elites_get_their_own_trials() -> None:
    sampler = BioTuneSampler(seed=5, reevaluate_elites=True)
    assert sampler.trial_budget(2) == 10 + 2 * 16
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=sampler.trial_budget(2))
    by_number = {t.number: t for t in study.trials}
    elites = [t for t in study.trials if t.user_attrs["role"] == "elite"]
    assert len(elites) == 6
    for t in elites:
        assert t.params == by_number[t.user_attrs["parents"][0]].params


def test_momentum_moves_children_along_their_parents_steps() -> None:
    def run(momentum: float) -> list[optuna.trial.FrozenTrial]:
        study = _study(BioTuneSampler(seed=6, momentum=momentum))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=60)
        return study.trials

    plain, moved = run(0.0), run(0.5)
    first = next(i for i, (a, b) in enumerate(zip(plain, moved)) if a.params != b.params)
    child = plain[first]
    assert child.user_attrs["role"] == "offspring"
    assert moved[first].user_attrs["parents"] == child.user_attrs["parents"]

    def genes(number: int) -> np.ndarray:
        return np.array(_genotype(plain[number]))

    def step(number: int) -> np.ndarray:
        # How far a member moved from its own parents (init members and immigrants: 0).
        t = plain[number]
        if t.user_attrs["role"] not in ("offspring", "exploit"):
            return np.zeros(len(GENES))
        return genes(number) - np.mean([genes(p) for p in t.user_attrs["parents"]], axis=0)

    inherited = np.mean([step(p) for p in child.user_attrs["parents"]], axis=0)
    assert np.abs(inherited).max() > 0
    expected = np.clip(np.array(_genotype(child)) + 0.5 * inherited, 0, 1)
    np.testing.assert_allclose(_genotype(moved[first]), expected, atol=1e-12)


def test_values_are_python_types_inside_mixed_distributions() -> None:
    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("a", 1e-5, 1e-1, log=True)
        b = trial.suggest_float("b", -2.0, 2.0, step=0.25)
        c = trial.suggest_int("c", 1, 64, log=True)
        d = trial.suggest_int("d", 0, 10, step=2)
        e = trial.suggest_categorical("e", ["adam", "sgd", None])
        return np.log10(a) + b + c / 10 + d + (e == "sgd")

    for direction in ("minimize", "maximize"):
        study = optuna.create_study(sampler=BioTuneSampler(seed=7), direction=direction)
        study.optimize(objective, n_trials=60)
        for t in study.trials:
            p = t.params
            assert type(p["a"]) is float and 1e-5 <= p["a"] <= 1e-1
            assert type(p["b"]) is float and (p["b"] + 2) / 0.25 == pytest.approx(
                round((p["b"] + 2) / 0.25)
            )
            assert type(p["c"]) is int and 1 <= p["c"] <= 64
            assert type(p["d"]) is int and p["d"] % 2 == 0
            assert p["e"] in ("adam", "sgd", None)
        assert max(t.user_attrs["generation"] for t in study.trials) >= 3


def test_minimize_and_maximize_improve() -> None:
    def sphere(trial: optuna.Trial) -> float:
        return sum((trial.suggest_float(f"x{i}", -5, 5) - 1) ** 2 for i in range(5))

    study = optuna.create_study(sampler=BioTuneSampler(seed=8))
    study.optimize(sphere, n_trials=140)
    first = min(t.value for t in study.trials[:10])
    assert study.best_value < first / 3

    study = optuna.create_study(sampler=BioTuneSampler(seed=8), direction="maximize")
    study.optimize(lambda t: -sphere(t), n_trials=140)
    assert study.best_value > -first / 3


def test_multi_objective_is_refused() -> None:
    study = optuna.create_study(sampler=BioTuneSampler(), directions=["minimize", "maximize"])
    with pytest.raises(ValueError, match="multi-objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)


def test_failed_and_pruned_trials_fill_their_slots() -> None:
    objective = SyntheticFineTuning(seed=0)

    study = _study(BioTuneSampler(seed=9))
    study.optimize(flaky(objective), n_trials=140, catch=(RuntimeError,))
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.FAIL] == 28 and states[TrialState.PRUNED] == 28
    assert Counter(t.user_attrs["generation"] for t in study.trials)[10] == 13
    # Failed members rank last: the stored populations put them at the end.
    attrs = study._storage.get_study_system_attrs(study._study_id)
    by_number = {t.number: t for t in study.trials}
    for g in range(10):
        states_in = [by_number[n].state for n in attrs[f"{POPULATION_KEY_PREFIX}{g}"]]
        complete = [s == TrialState.COMPLETE for s in states_in]
        assert complete == sorted(complete, reverse=True)


def test_all_trials_failing_never_stalls() -> None:
    def broken(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise RuntimeError("broken")

    study = _study(BioTuneSampler(population_size=4, n_elites=1, seed=0))
    study.optimize(broken, n_trials=30, catch=(RuntimeError,))
    sizes = Counter(t.user_attrs["generation"] for t in study.trials)
    assert sizes == {0: 4, 1: 5, 2: 5, 3: 5, 4: 5, 5: 5, 6: 1}  # N - E + 2E = 5 per generation


def test_enqueued_genotypes_join_generation_zero() -> None:
    objective = SyntheticFineTuning(seed=0)
    study = _study(BioTuneSampler(seed=10))
    warm = [
        {name: 0.9 if name != THRESHOLD_PARAM else 0.5 for name in GENES},
        {**{n: 0.6 for n in GENES}, THRESHOLD_PARAM: 0.2},
    ]
    for params in warm:
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=30)
    first = study.trials[:2]
    for t, params in zip(first, warm):
        assert t.params == params
        assert t.user_attrs["generation"] == 0 and t.user_attrs["role"] == "init"
    assert Counter(t.user_attrs["generation"] for t in study.trials)[0] == 10
    # A genotype enqueued later joins the running generation as an extra immigrant.
    study.enqueue_trial(warm[0])
    study.optimize(objective, n_trials=1)
    last = study.trials[-1]
    assert last.params == warm[0]
    assert last.user_attrs["role"] == "immigrant" and _lineage(last)["slot"] is None


def test_resuming_with_other_structure_is_an_error_and_other_options_a_warning(
    tmp_path: Path,
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = _study(BioTuneSampler(seed=0), storage=storage, study_name="s")
    study.optimize(SyntheticFineTuning(seed=0), n_trials=12)
    other = optuna.load_study(
        study_name="s", storage=storage, sampler=BioTuneSampler(population_size=8)
    )
    with pytest.raises(ValueError, match="population_size 10 -> 8"):
        other.optimize(SyntheticFineTuning(seed=0), n_trials=1)
    assert all(t.state != TrialState.RUNNING for t in other.trials)
    again = optuna.load_study(
        study_name="s", storage=storage, sampler=BioTuneSampler(momentum=0.3)
    )
    with pytest.warns(UserWarning, match="momentum"):
        again.optimize(SyntheticFineTuning(seed=0), n_trials=1)


def test_same_seed_same_genotypes_and_other_seed_others() -> None:
    def run(seed: int) -> list[tuple[float, ...]]:
        study = _study(BioTuneSampler(seed=seed))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=60)
        return [_genotype(t) for t in study.trials]

    assert run(11) == run(11)
    assert run(11) != run(12)


def _stored_genotypes(storage: str, name: str) -> list[tuple[float, ...]]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [_genotype(t) for t in study.get_trials(states=(TrialState.COMPLETE,))]


@pytest.mark.parametrize("stops", [(1, 10, 23), (47,), (9, 100)])
def test_resume_in_new_processes_proposes_what_a_straight_run_proposes(
    tmp_path: Path, stops: tuple[int, ...]
) -> None:
    total = 140
    straight = _study(BioTuneSampler(seed=21))
    straight.optimize(SyntheticFineTuning(seed=0), n_trials=total)
    expected = [_genotype(t) for t in straight.trials]

    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    done = 0
    for stop in (*stops, total):
        wait(run_worker(storage, "resume", stop - done, 21))
        done = stop
    assert _stored_genotypes(storage, "resume") == expected
    resumed = optuna.load_study(study_name="resume", storage=storage)
    assert [t.user_attrs["generation"] for t in resumed.trials] == [
        t.user_attrs["generation"] for t in straight.trials
    ]


def _check_parallel_study(study: optuna.Study, n_workers: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Workers never give two trials of one generation (one data fold) the same genotype. (Across
    # generations the paper's exploitation may re-propose an elite's variant clipped at a bound,
    # to be measured on the next fold, as a single worker does too.)
    sizes = Counter(t.user_attrs["generation"] for t in trials)
    for g in sizes:
        genotypes = [_genotype(t) for t in trials if t.user_attrs["generation"] == g]
        assert len(set(genotypes)) == len(genotypes), f"same genotype twice in generation {g}"
    last = max(sizes)
    for g, size in sizes.items():
        nominal = 10 if g == 0 else 13
        assert size <= nominal + n_workers, (g, size)
        if g < last:
            assert size >= nominal, (g, size)


@pytest.mark.slow
def test_four_processes_share_one_study(tmp_path: Path, new_storage_url: str) -> None:
    storage = new_storage_url
    opened = open_storage(storage)
    _study(BioTuneSampler(seed=0), storage=opened, study_name="p")  # create before spawning
    workers = [run_worker(storage, "p", 20, seed=0) for _ in range(4)]  # same seed on purpose
    ran = [json.loads(wait(worker).strip().splitlines()[-1]) for worker in workers]
    study = optuna.load_study(study_name="p", storage=open_storage(storage))
    # Zero errors, nothing lost, nothing twice: each worker ran its 20 trials, they are the
    # study's 80 trials, numbered 0..79, all COMPLETE.
    assert [len(numbers) for numbers in ran] == [20] * 4
    assert sorted(n for numbers in ran for n in numbers) == list(range(80))
    assert [t.number for t in study.trials] == list(range(80))
    _check_parallel_study(study, n_workers=4)


def test_threads_share_one_sampler() -> None:
    study = _study(BioTuneSampler(seed=0))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=100, n_jobs=2)
    _check_parallel_study(study, n_workers=2)


def test_looking_at_a_running_generation_stores_nothing() -> None:
    sampler = BioTuneSampler(seed=0)
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=15)  # generation 1 is running
    # A provisional view: the 3 elites (or their better variants), no offspring finished yet.
    assert len(sampler.get_parent_population(study, 2)) == 3
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert f"{POPULATION_KEY_PREFIX}1" not in attrs
    study.optimize(SyntheticFineTuning(seed=0), n_trials=10)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert len(attrs[f"{POPULATION_KEY_PREFIX}1"]) == 10


def test_base_ga_sampler_api() -> None:
    sampler = BioTuneSampler(seed=0)
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=30)
    assert isinstance(sampler, optuna.samplers.BaseGASampler)
    assert sampler.population_size == 10
    assert [sampler.get_trial_generation(study, t) for t in study.trials[:11]] == [0] * 10 + [1]
    assert len(sampler.get_population(study, 1)) == 13
    parents = sampler.get_parent_population(study, 2)
    assert len(parents) == 10
    assert [t.value for t in parents] == sorted((t.value for t in parents), reverse=True)
    assert sampler.get_parent_population(study, 0) == []


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="population_size"):
        BioTuneSampler(population_size=1)
    with pytest.raises(ValueError, match="n_elites"):
        BioTuneSampler(population_size=5, n_elites=5)
    with pytest.raises(ValueError, match="momentum"):
        BioTuneSampler(momentum=-1)


def test_sampler_survives_pickling() -> None:
    import pickle

    sampler = pickle.loads(pickle.dumps(BioTuneSampler(seed=3)))
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=15)
    assert len(study.trials) == 15


def test_ideal_value_changes_extinction_not_ranking() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study = _study(BioTuneSampler(seed=0, ideal_value=0.95, mutate_first_generation=True))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=30)
    assert Counter(t.user_attrs["generation"] for t in study.trials) == {0: 10, 1: 13, 2: 7}


def test_learning_rate_multiplier_spans_a_tenth_to_ten() -> None:
    assert learning_rate_multiplier(0.5) == pytest.approx(1.0)
    assert learning_rate_multiplier(0.0) == pytest.approx(0.1)
    assert learning_rate_multiplier(1.0) == pytest.approx(10.0)


def test_importance_param_naming() -> None:
    assert importance_param("layer3") == "importance:layer3"
    params = {importance_param("a"): 0.7, importance_param("b"): 0.2, THRESHOLD_PARAM: 0.5}
    assert selected_blocks(params) == ["a"]
