"""Races on a recorded table: scored by the recommended plan's recorded test accuracy, with
every trial's epochs counted, and judged by statistics that can fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import friedmanchisquare

from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies import _race_statistics as stats
from biotune_optuna.studies._race import race_entries
from biotune_optuna.studies._race import race_study
from biotune_optuna.studies._race import RaceEntry
from biotune_optuna.studies._race import score_at
from biotune_optuna.studies._race import score_at_epochs
from biotune_optuna.studies._recommendation import recommend
from tests.studies.test_plan_table import fake_table


def test_the_entries_are_the_registry_and_its_multi_fidelity_variants() -> None:
    entries = race_entries(max_epochs=8)
    assert {e.sampler for e in entries.values()} == set(SAMPLERS) - {"grid"}
    assert {e.pruner for e in entries.values()} == {"none", "successive_halving", "hyperband"}
    assert entries["random+hyperband"].pruner_options["max_resource"] == 8


def test_a_study_is_scored_by_its_recommendation_s_recorded_test_accuracy() -> None:
    table = fake_table(epochs=4)
    record = race_study(
        table, RaceEntry("random", "random"), seed=3, n_trials=30, budgets=(10, 25), every=10
    )
    assert [point[0] for point in record["curve"]] == [10, 20, 25, 30]
    assert len(record["trials"]) == 30
    epochs = np.cumsum([row[4] for row in record["trials"]])
    for k, spent, code, test in record["curve"]:
        assert spent == epochs[k - 1]
        assert test == round(table.test_accuracy(code), 6)
    assert score_at(record, 25) == record["curve"][2][3]
    assert score_at(record, 99) is None
    # Read by epochs spent: nothing before the first point, then the last point within them.
    first, second = record["curve"][0], record["curve"][1]
    assert np.isnan(score_at_epochs(record, first[1] - 0.5))
    assert score_at_epochs(record, first[1]) == first[3]
    assert score_at_epochs(record, (first[1] + second[1]) / 2) == first[3]
    assert score_at_epochs(record, 1e9) == record["curve"][-1][3]


def test_the_recommendation_sees_only_the_first_trials_of_its_budget() -> None:
    """Budget 10 is scored on trials 0–9: a later, better trial cannot leak into it."""
    import optuna

    from biotune_optuna.studies._replay import TableObjective

    table = fake_table(epochs=4)
    record = race_study(
        table, RaceEntry("qmc", "qmc"), seed=0, n_trials=20, budgets=(10,), every=20
    )
    from biotune_optuna.samplers._registry import create_sampler

    objective = TableObjective(table)
    sampler = create_sampler("qmc", seed=0, search_space=objective.search_space)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=10)
    chosen = recommend(study.trials, direction="maximize")
    assert chosen is not None
    assert record["curve"][0][2] == chosen.trial.user_attrs["table_code"]


def test_pruned_trials_count_the_epochs_they_ran() -> None:
    table = fake_table(epochs=8)
    entry = race_entries(max_epochs=8)["tpe+sh"]
    record = race_study(table, entry, seed=0, n_trials=40, budgets=(40,), every=40)
    pruned = [row for row in record["trials"] if row[2] == "pruned"]
    assert pruned and all(0 < row[4] < 8 for row in pruned)
    assert record["curve"][-1][1] == sum(row[4] for row in record["trials"])


def test_ranks_share_ties_and_holm_steps_down() -> None:
    scores = {"a": [0.9, 0.5, 0.7], "b": [0.8, 0.5, 0.9], "c": [0.1, 0.2, 0.3]}
    assert stats.mean_ranks(scores) == pytest.approx({"a": 4.5 / 3, "b": 4.5 / 3, "c": 3.0})
    # Holm: sorted p (0.01, 0.02, 0.04) × (3, 2, 1), made monotone.
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_friedman_and_wilcoxon_find_a_real_difference_and_only_that() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, size=(3, 30))
    scores = {"good": 0.8 + noise[0], "same": 0.75 + noise[1], "twin": 0.75 + noise[2]}
    _, p = stats.friedman(scores)
    assert p == pytest.approx(friedmanchisquare(*scores.values()).pvalue) and p < 1e-6
    tests = {t.method: t for t in stats.wilcoxon_holm(scores, "good")}
    assert tests["same"].p_holm < 0.001 and tests["same"].wins > 25
    twin = {t.method: t for t in stats.wilcoxon_holm(scores, "same")}["twin"]
    assert twin.p_holm > 0.05
    equal = stats.wilcoxon_holm({"x": [0.5] * 30, "y": [0.5] * 30}, "x")[0]
    assert equal.p == 1.0 and equal.ties == 30
    assert stats.friedman({"x": [1, 2], "y": [1, 2], "z": [1, 2]}) == (0.0, 1.0)
    # Over all pairs (Holm over the three): only "good" stands apart from the others.
    assert stats.significant_pairs(scores) == {
        frozenset(("good", "same")),
        frozenset(("good", "twin")),
    }
    assert stats.significant_pairs({"x": [0.5] * 30, "y": [0.5] * 30}) == set()


def test_bootstrap_intervals_hold_the_mean_rank_and_narrow_with_blocks() -> None:
    rng = np.random.default_rng(1)
    few = {m: rng.random(10).tolist() for m in "abc"}
    many = {m: rng.random(200).tolist() for m in "abc"}
    for scores in (few, many):
        ranks = stats.mean_ranks(scores)
        for method, (low, high) in stats.bootstrap_mean_ranks(scores).items():
            assert low <= ranks[method] <= high
    width = {
        name: np.mean([h - lo for lo, h in stats.bootstrap_mean_ranks(s).values()])
        for name, s in (("few", few), ("many", many))
    }
    assert width["many"] < width["few"] / 2


def test_the_critical_difference_figure_is_the_same_bytes_each_time(tmp_path: Path) -> None:
    ranks = {"biotune": 2.1, "tpe": 1.4, "random": 2.5}
    apart = {frozenset(("tpe", "random"))}
    first = stats.save_cd_figure(ranks, apart, tmp_path / "a.svg", title="a race")
    second = stats.save_cd_figure(ranks, apart, tmp_path / "b.svg", title="a race")
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    assert "biotune (2.10)" in text.replace("&#160;", " ") or "biotune" in text
    # Two groups: {tpe, biotune} and {biotune, random}; tpe and random are apart.
    assert stats._cliques(["tpe", "biotune", "random"], apart) == [(0, 1), (1, 2)]
    assert stats._cliques(["tpe", "biotune", "random"], set()) == [(0, 2)]
