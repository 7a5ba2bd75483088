"""Each operator against the formulas of BioTune (arXiv:2508.15367) as written in the spec."""

from __future__ import annotations

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import pytest

from biotune_optuna.plan import importance_param
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.samplers import trial_budget
from biotune_optuna.samplers._operators import BlendCrossover
from biotune_optuna.samplers._operators import EliteExploitation
from biotune_optuna.samplers._operators import extinction
from biotune_optuna.samplers._operators import ExtinctionMutation
from biotune_optuna.samplers._operators import LinearRankSelection
from biotune_optuna.samplers._operators import ParentPrototypeAdoption
from biotune_optuna.samplers._space import GeneSpace


def _unit_space(n: int) -> GeneSpace:
    return GeneSpace({f"x{i}": FloatDistribution(0.0, 1.0) for i in range(n)})


class _FixedRng:
    """Stands in for numpy's Generator where a test needs to know every draw."""

    def __init__(self, random_values: list[np.ndarray | list[float]]) -> None:
        self._random = [np.asarray(v, dtype=float) for v in random_values]

    def random(self, size: int | None = None) -> np.ndarray:
        return self._random.pop(0)


def test_rank_weights_for_ten_are_the_papers() -> None:
    expected = np.array([12, 10, 9, 8, 7, 6, 5, 4, 3, 1]) / 65
    np.testing.assert_allclose(LinearRankSelection.weights(10), expected)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10, 25])
def test_rank_weights_follow_the_general_rule(n: int) -> None:
    w = LinearRankSelection.weights(n)
    raw = [n + 2] + [n + 1 - k for k in range(1, n - 1)] + [1]
    np.testing.assert_allclose(w, np.array(raw) / (n * (n + 3) / 2))
    assert w.sum() == pytest.approx(1.0)


def test_rank_selection_draws_distinct_members_with_rank_frequencies() -> None:
    selection = LinearRankSelection()
    rng = np.random.default_rng(0)
    first = np.zeros(10)
    for _ in range(20000):
        picks = selection.select(10, 3, rng)
        assert len(set(picks)) == 3
        first[picks[0]] += 1
    np.testing.assert_allclose(first / first.sum(), LinearRankSelection.weights(10), atol=0.01)


def test_rank_selection_refuses_more_than_the_pool() -> None:
    with pytest.raises(ValueError, match="distinct"):
        LinearRankSelection().select(2, 3, np.random.default_rng(0))


def test_extinction_of_a_sorted_population() -> None:
    f = np.array([0.1, 0.2, 0.25, 0.4, 0.5])  # 1 - accuracy, best first
    n = len(f)
    expected = [(f[i] + f[0] * (i / (n - 1) - 1)) / f[-1] for i in range(n)]
    np.testing.assert_allclose(extinction(f), expected)
    assert extinction(f)[0] == 0.0
    assert extinction(f)[-1] == pytest.approx(1.0)


def test_extinction_is_zero_when_all_equal_or_tiny_populations() -> None:
    np.testing.assert_array_equal(extinction(np.full(5, 0.3)), np.zeros(5))
    np.testing.assert_array_equal(extinction(np.zeros(4)), np.zeros(4))
    np.testing.assert_array_equal(extinction(np.array([0.2])), np.zeros(1))


@pytest.mark.parametrize(("e", "n", "p"), [(0.0, 7, 1 / 7), (1.0, 7, 1.0), (0.5, 5, 0.6)])
def test_mutation_probability(e: float, n: int, p: float) -> None:
    assert ExtinctionMutation.probability(e, n) == pytest.approx(p)


def test_mutation_without_extinction_changes_nothing() -> None:
    space = _unit_space(7)
    genes = np.random.default_rng(1).random(7)
    out = ExtinctionMutation().mutate(genes, 0.0, np.random.default_rng(2), space)
    np.testing.assert_array_equal(out, genes)


def test_mutation_with_full_extinction_moves_every_gene_within_e() -> None:
    space = _unit_space(200)
    genes = np.full(200, 0.5)
    e = 0.3
    out = ExtinctionMutation().mutate(genes, 1.0, np.random.default_rng(3), space)
    assert (out != genes).all()  # probability 1 at e = 1
    out = ExtinctionMutation().mutate(genes, e, np.random.default_rng(3), space)
    assert np.abs(out - genes).max() <= e + 1e-12
    # About (1/n)(e(n-1)+1) of the genes move.
    assert np.mean(out != genes) == pytest.approx(ExtinctionMutation.probability(e, 200), abs=0.1)


def test_mutation_clips_to_the_unit_interval() -> None:
    space = _unit_space(100)
    out = ExtinctionMutation().mutate(np.ones(100), 1.0, np.random.default_rng(0), space)
    assert out.max() <= 1.0 and out.min() >= 0.0


def test_blend_crossover_uses_one_weight_per_gene() -> None:
    space = _unit_space(4)
    p1, p2 = np.array([0.0, 1.0, 0.2, 0.8]), np.array([1.0, 0.0, 0.6, 0.8])
    w = np.array([0.25, 0.5, 0.75, 0.1])
    child = BlendCrossover().crossover(p1, p2, _FixedRng([w]), space)  # type: ignore[arg-type]
    np.testing.assert_allclose(child, w * p1 + (1 - w) * p2)


def test_blend_crossover_takes_a_parents_category() -> None:
    space = GeneSpace(
        {"c": CategoricalDistribution(["a", "b", "c"]), "x": FloatDistribution(0, 1)}
    )
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = BlendCrossover().crossover(np.array([0.0, 0.1]), np.array([2.0, 0.9]), rng, space)
        assert child[0] in (0.0, 2.0)
        assert 0.1 <= child[1] <= 0.9


def test_adoption_formula() -> None:
    space = _unit_space(3)
    child = np.array([0.5, 0.5, 0.5])
    p1, p2, proto = np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.4, 0.5]), np.array([0.9, 0.0, 0.5])
    a, b, c = 0.4, 0.5, 0.25
    out = ParentPrototypeAdoption().adopt(
        child,
        p1,
        p2,
        proto,
        _FixedRng([[a, b, c]]),
        space,  # type: ignore[arg-type]
    )
    expected = child + c * a * ((p1 + p2) / 2 - child) + (1 - c) * b * (proto - child)
    np.testing.assert_allclose(out, expected)


def _biotune_space(n_blocks: int) -> GeneSpace:
    dists = {importance_param(f"b{i}"): FloatDistribution(0, 1) for i in range(n_blocks)}
    dists[THRESHOLD_PARAM] = FloatDistribution(0, 1)
    return GeneSpace(dists)


def test_exploitation_moves_one_eligible_gene_by_plus_and_minus_delta() -> None:
    space = _biotune_space(5)
    assert space.names[0] == THRESHOLD_PARAM  # genes are in sorted name order
    elite = np.array([0.5, 0.2, 0.7, 0.9, 0.3, 0.6])
    eligible = elite > elite[0]
    eligible[0] = False
    exploitation = EliteExploitation(radius=0.25)
    for seed in range(200):
        plus, minus = exploitation.variants(elite, eligible, np.random.default_rng(seed), space)
        changed = np.flatnonzero((plus != elite) | (minus != elite))
        assert len(changed) == 1 and eligible[changed[0]]
        j = changed[0]
        delta = plus[j] - elite[j]
        assert abs(delta) <= 0.25
        if 0 < elite[j] + delta < 1 and 0 < elite[j] - delta < 1:
            assert minus[j] == pytest.approx(elite[j] - delta)


def test_exploitation_radius_is_validated() -> None:
    with pytest.raises(ValueError, match="radius"):
        EliteExploitation(radius=0.0)


def test_trial_budget_of_the_paper() -> None:
    assert trial_budget(10) == 140
    assert trial_budget(0) == 10
    assert trial_budget(10, reevaluate_elites=True) == 170
    with pytest.raises(ValueError, match="generations"):
        trial_budget(-1)
