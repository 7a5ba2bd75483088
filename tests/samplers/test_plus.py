"""The ``biotune-plus`` preset: each improvement, its switch, and the guarantees of the paper's.

The paper's preset itself is pinned by a fingerprint of its proposals (taken before the plus
options existed), so the reference implementation cannot drift.
"""

from __future__ import annotations

from collections import Counter
import hashlib
import json
from pathlib import Path
import subprocess
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest

from biotune_optuna import BioTunePlusSampler
from biotune_optuna import BioTuneSampler
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.samplers._configurations import duplicate_trials
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._operators import AdaptiveExploitation
from biotune_optuna.samplers._operators import EliteExploitation
from biotune_optuna.samplers._operators._exploitation import reflect
from biotune_optuna.samplers._operators._exploitation import toggled_block
from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.samplers._registry import sampler_name
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from tests.samplers._objectives import flaky
from tests.samplers._processes import run_worker
from tests.samplers._processes import wait


GENES = SyntheticFineTuning(seed=0).param_names
#: sha256 of the paper preset's 140 proposals and lineages (seed 21, synthetic seed 0), taken
#: at commit 4255866, before ``biotune-plus`` existed; and of a run with every paper option on.
PAPER_FINGERPRINTS = (
    "6ece1c86071912079c5f482bb8f24ede597d281a9374aabb39144df31f233131",
    "99abfb8d1f4bfab63dd18c720341ae9acf1c8a11166b4550afcf503b87a829fe",
)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(sampler: optuna.samplers.BaseSampler, **kwargs: Any) -> optuna.Study:
    return optuna.create_study(sampler=sampler, direction="maximize", **kwargs)


def _lineage(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return trial.system_attrs[LINEAGE_KEY]


def _genotype(trial: optuna.trial.FrozenTrial) -> tuple[float, ...]:
    return tuple(trial.params[name] for name in GENES)


def _fingerprint(sampler: BioTuneSampler) -> str:
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=140)
    rows = [[t.number, sorted(t.params.items()), _lineage(t)] for t in study.trials]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_paper_preset_proposes_exactly_what_it_did_before_the_plus_options() -> None:
    assert _fingerprint(BioTuneSampler(seed=21)) == PAPER_FINGERPRINTS[0]
    every_paper_option = BioTuneSampler(
        seed=21,
        population_size=4,
        n_elites=1,
        momentum=0.3,
        mutate_first_generation=True,
        reevaluate_elites=True,
    )
    assert _fingerprint(every_paper_option) == PAPER_FINGERPRINTS[1]


def test_registry_name_spec_options_and_defaults() -> None:
    sampler = create_sampler("biotune-plus", seed=0)
    assert isinstance(sampler, BioTunePlusSampler) and sampler_name(sampler) == "biotune-plus"
    assert sampler_name(BioTuneSampler()) == "biotune"
    assert isinstance(sampler._exploitation, AdaptiveExploitation)
    off = create_sampler(
        "biotune-plus",
        options={
            "adaptive_exploitation": False,
            "avoid_duplicates": False,
            "surrogate_candidates": 0,
            "sampled_candidates": 0,
            "mutate_first_generation": False,
        },
    )
    assert isinstance(off._exploitation, EliteExploitation)
    with pytest.raises(ValueError, match="surrogate_candidates"):
        create_sampler("biotune-plus", options={"surrogate_candidates": -1})
    with pytest.raises(ValueError, match="adaptive_exploitation"):
        create_sampler("biotune", options={"adaptive_exploitation": True})


def test_every_option_off_is_the_paper_preset() -> None:
    off = BioTunePlusSampler(
        seed=21,
        adaptive_exploitation=False,
        avoid_duplicates=False,
        surrogate_candidates=0,
        sampled_candidates=0,
        mutate_first_generation=False,
    )
    assert _fingerprint(off) == PAPER_FINGERPRINTS[0]


def test_no_configuration_is_evaluated_twice() -> None:
    paper = _study(BioTuneSampler(seed=3))
    paper.optimize(SyntheticFineTuning(seed=1), n_trials=140)
    plus = _study(BioTunePlusSampler(seed=3))
    plus.optimize(SyntheticFineTuning(seed=1), n_trials=140)
    assert len(duplicate_trials(paper.trials)) > 0  # the paper's preset repeats plans
    assert duplicate_trials(plus.trials) == []
    moved = [_lineage(t)["repeat_avoided"] for t in plus.trials if "repeat_avoided" in _lineage(t)]
    assert moved and all(tries > 0 for tries in moved)


def test_discrete_cells_are_not_repeated_and_an_exhausted_space_still_proposes() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 3)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        return x + (kind == "b")

    space = {"x": IntDistribution(0, 3), "kind": CategoricalDistribution(["a", "b"])}
    study = _study(BioTunePlusSampler(population_size=4, n_elites=1, seed=0, search_space=space))
    study.optimize(objective, n_trials=8)
    assert duplicate_trials(study.trials) == []  # all 8 cells, once each
    study.optimize(objective, n_trials=4)  # none left: it still proposes, and says so
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert any(_lineage(t).get("repeat_avoided") == -1 for t in study.trials[8:])


def test_elite_reevaluation_is_a_deliberate_repeat() -> None:
    sampler = BioTunePlusSampler(seed=0, reevaluate_elites=True)
    study = _study(sampler)
    study.optimize(SyntheticFineTuning(seed=0), n_trials=40)
    by_number = {t.number: t for t in study.trials}
    elites = [t for t in study.trials if t.user_attrs["role"] == "elite"]
    assert elites
    for t in elites:
        assert t.params == by_number[t.user_attrs["parents"][0]].params
    assert set(duplicate_trials(study.trials)) == {t.number for t in elites}


def test_exploitation_steps_adapt_by_success_and_are_stored() -> None:
    operator = AdaptiveExploitation(initial_step=0.3, min_step=0.02, max_step=0.7, factor=1.5)
    assert operator.next_step(0.3, success=True) == pytest.approx(0.45)
    assert operator.next_step(0.3, success=False) == pytest.approx(0.3 * 1.5**-0.25)
    assert operator.next_step(0.69, success=True) == 0.7
    study = _study(BioTunePlusSampler(seed=5, avoid_duplicates=False))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=140)
    by_number = {t.number: t for t in study.trials}
    exploits = [t for t in study.trials if t.user_attrs["role"] == "exploit"]
    steps = {round(_lineage(t)["step"], 9) for t in exploits}
    assert len(steps) > 2  # steps moved away from the initial one
    for t in exploits:
        elite = by_number[t.user_attrs["parents"][0]]
        step = _lineage(t)["step"]
        earlier = [
            e
            for e in exploits
            if e.user_attrs["parents"] == [elite.number]
            and e.user_attrs["generation"] < t.user_attrs["generation"]
        ]
        if earlier:  # this elite was exploited in an earlier generation and held: shrunk
            assert step == pytest.approx(
                operator.next_step(_lineage(earlier[-1])["step"], success=False)
            )
        elif elite.user_attrs["role"] == "exploit":  # a variant that replaced its elite: grown
            assert step == pytest.approx(operator.next_step(_lineage(elite)["step"], success=True))
        else:
            assert step == operator.initial_step
    # Several genes move in some rounds (the paper moves exactly one).
    moved = [
        sum(t.params[n] != by_number[t.user_attrs["parents"][0]].params[n] for n in GENES)
        for t in exploits
    ]
    assert max(moved) > 1


def test_a_toggle_reverses_exactly_one_block_and_keeps_one_trained() -> None:
    space = GeneSpace({n: FloatDistribution(0.0, 1.0) for n in GENES})
    threshold = space.names.index(THRESHOLD_PARAM)
    importance = [i for i in range(len(space)) if i != threshold]
    rng = np.random.default_rng(0)
    for _ in range(200):
        genes = space.random(rng)
        toggled = toggled_block(genes, rng, space)
        if toggled is None:
            continue
        before = genes[importance] > genes[threshold]
        after = toggled[importance] > toggled[threshold]
        assert (before != after).sum() == 1 and after.any()
        assert toggled[threshold] == genes[threshold]
    only_one = np.zeros(len(space))
    only_one[importance[0]], only_one[threshold] = 0.9, 0.5
    flipped = toggled_block(only_one, rng, space)
    assert flipped is not None and (flipped[importance] > 0.5).sum() == 2  # never none trained
    plain = GeneSpace({"x": FloatDistribution(0.0, 1.0)})
    assert toggled_block(np.array([0.3]), rng, plain) is None


def test_reflection_keeps_steps_off_the_bounds() -> None:
    assert reflect(np.array([-0.1, 1.2, 0.5, 2.3])) == pytest.approx([0.1, 0.8, 0.5, 0.3])


def test_surrogate_ranks_candidates_deterministically_after_startup() -> None:
    def run(candidates: int) -> list[tuple[float, ...]]:
        study = _study(BioTunePlusSampler(seed=7, surrogate_candidates=candidates))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=60)
        return [_genotype(t) for t in study.trials]

    ranked, unranked = run(24), run(0)
    assert ranked == run(24)
    assert ranked[:10] == unranked[:10]  # the initial population: no model involved
    assert ranked != unranked


def test_candidates_drawn_from_the_model_compete_with_bred_children() -> None:
    def offspring(**options: Any) -> list[optuna.trial.FrozenTrial]:
        study = _study(BioTunePlusSampler(seed=4, **options))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=80)
        return [t for t in study.trials if t.user_attrs["role"] == "offspring"]

    mixed = offspring()
    sampled = [t for t in mixed if _lineage(t).get("candidate") == "sampled"]
    assert 0 < len(sampled) < len(mixed)  # some slots take a drawn candidate, some a child
    for t in sampled:  # a drawn candidate still counts as the slot's child of its parents
        assert len(_lineage(t)["parents"]) == 2
    bred_only = offspring(sampled_candidates=0)
    assert not any("candidate" in _lineage(t) for t in bred_only)


def test_failed_pruned_and_enqueued_trials_as_in_the_paper_preset() -> None:
    objective = SyntheticFineTuning(seed=0)

    study = _study(BioTunePlusSampler(seed=9))
    warm = {**{n: 0.6 for n in GENES}, THRESHOLD_PARAM: 0.2}
    study.enqueue_trial(warm)
    study.optimize(flaky(objective), n_trials=140, catch=(RuntimeError,))
    assert study.trials[0].params == warm and study.trials[0].user_attrs["role"] == "init"
    assert Counter(t.user_attrs["generation"] for t in study.trials)[10] == 13


def _run_worker(storage: str, n_trials: int, seed: int) -> subprocess.Popen[bytes]:
    return run_worker(storage, "plus", n_trials, seed, preset="biotune-plus")


def test_resume_in_new_processes_proposes_what_a_straight_run_proposes(tmp_path: Path) -> None:
    total = 80
    straight = _study(BioTunePlusSampler(seed=21))
    straight.optimize(SyntheticFineTuning(seed=0), n_trials=total)
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    done = 0
    for stop in (12, 31, total):
        wait(_run_worker(storage, stop - done, 21))
        done = stop
    resumed = optuna.load_study(study_name="plus", storage=storage)
    assert [_genotype(t) for t in resumed.trials] == [_genotype(t) for t in straight.trials]
    assert [_lineage(t) for t in resumed.trials] == [_lineage(t) for t in straight.trials]


def test_threads_share_one_sampler_without_repeats_or_errors() -> None:
    study = _study(BioTunePlusSampler(seed=0))
    study.optimize(SyntheticFineTuning(seed=0), n_trials=80, n_jobs=2)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    sizes = Counter(t.user_attrs["generation"] for t in study.trials)
    assert all(size <= (10 if g == 0 else 13) + 2 for g, size in sizes.items())
    # Two threads may read storage at the same moment and breed the same plan; rarely.
    assert len(duplicate_trials(study.trials)) <= 2


@pytest.mark.slow
def test_four_processes_share_one_plus_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    _study(BioTunePlusSampler(seed=0), storage=storage, study_name="plus")
    workers = [_run_worker(storage, 20, seed=0) for _ in range(4)]
    for worker in workers:
        wait(worker)
    study = optuna.load_study(study_name="plus", storage=storage)
    assert [t.number for t in study.trials] == list(range(80))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(duplicate_trials(study.trials)) <= 4


def test_a_python_api_plus_study_resumes_with_its_preset(tmp_path: Path) -> None:
    from biotune_optuna.samplers import check_study_sampler

    storage = f"sqlite:///{tmp_path / 'api.db'}"
    study = _study(BioTunePlusSampler(seed=0), storage=storage, study_name="api")
    study.optimize(SyntheticFineTuning(seed=0), n_trials=3)
    again = optuna.load_study(study_name="api", storage=storage, sampler=BioTunePlusSampler())
    check_study_sampler(again)  # no error: the preset recorded nothing else
    space = {n: FloatDistribution(0, 1) for n in GENES}
    assert len(
        BioTunePlusSampler(search_space=space).infer_relative_search_space(again, again.trials[0])
    ) == len(GENES)


def test_the_plan_surrogate_ranks_deterministically_and_differs_from_tpe() -> None:
    def run(**options: Any) -> list[tuple[float, ...]]:
        study = _study(BioTunePlusSampler(seed=5, **options))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=40)
        return [_genotype(t) for t in study.trials]

    gp = run()
    assert create_sampler("biotune-plus")._options["surrogate"] == "gp"
    assert gp == run(surrogate="gp")
    tpe = run(surrogate="tpe")
    assert gp[:10] == tpe[:10] and gp != tpe  # no model before 10 trials, then another one
    with pytest.raises(ValueError, match="surrogate"):
        create_sampler("biotune-plus", options={"surrogate": "forest"})


def test_ranked_exploitation_changes_only_the_exploitation_trials() -> None:
    def run(candidates: int) -> list[optuna.trial.FrozenTrial]:
        study = _study(BioTunePlusSampler(seed=6, exploitation_candidates=candidates))
        study.optimize(SyntheticFineTuning(seed=0), n_trials=16)
        return study.trials

    plain, ranked = run(0), run(8)
    roles = [t.user_attrs["role"] for t in plain]
    assert roles == [t.user_attrs["role"] for t in ranked]
    moved = [r for r, a, b in zip(roles, plain, ranked) if _genotype(a) != _genotype(b)]
    assert moved and moved[0] == "exploit"  # the first trial to differ is an exploitation
