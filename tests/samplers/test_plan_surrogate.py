"""The Gaussian process over plans that ranks ``biotune-plus``'s candidates (``surrogate``)."""

from __future__ import annotations

import numpy as np

from biotune_optuna.plan import plan_search_space
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._plan_surrogate import plan_features
from biotune_optuna.samplers._plan_surrogate import PlanGP
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._surrogate import MIN_OBSERVATIONS


SPACE = GeneSpace(plan_search_space(["stem", "middle", "head"]))
HEAD = SPACE.names.index("importance:head")
THRESHOLD = SPACE.names.index("freeze_threshold")


def _members(genes: np.ndarray, losses: np.ndarray, folds=None) -> list[Member]:
    folds = [None] * len(genes) if folds is None else folds
    return [
        Member(i, float(loss), SPACE.decode(g), {"generation": 0, "role": "init"}, fold=fold)
        for i, (g, loss, fold) in enumerate(zip(genes, losses, folds))
    ]


def _gp(members: list[Member], genes: np.ndarray, **kwargs) -> PlanGP:
    return PlanGP(members, SPACE, lambda m: genes[m.number], **kwargs)


def _trains_head(genes: np.ndarray) -> np.ndarray:
    return genes[:, HEAD] > genes[:, THRESHOLD]


def _toy(n: int, seed: int = 0, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Random genotypes; training the head lowers the loss by 0.3, noise besides."""
    rng = np.random.default_rng(seed)
    genes = rng.random((n, len(SPACE)))
    losses = 0.6 - 0.3 * _trains_head(genes) + noise * rng.standard_normal(n)
    return genes, losses


def test_features_are_the_plan_not_the_genes() -> None:
    a = np.array([0.9, 0.2, 0.7, 0.5])  # names sorted: threshold, head, middle, stem
    order = [SPACE.names.index(n) for n in ("freeze_threshold", "importance:head")]
    assert order == [0, 1]
    same_plan = a.copy()
    same_plan[[1, 2, 3]] = [0.1, 0.3, 0.4]  # every block still at or below the threshold
    features, is_mask = plan_features(np.array([a, same_plan]), SPACE)
    assert np.array_equal(features[0], features[1])  # all frozen: one plan, one point
    assert features.shape == (2, 6) and is_mask.tolist() == [True] * 3 + [False] * 3
    trained = plan_features(np.array([[0.1, 0.75, 0.2, 0.5]]), SPACE)[0][0]
    head = SPACE.names.index("importance:head") - 1
    assert trained[head] == 1.0 and np.isclose(trained[3 + head], 2 * (0.75 - 0.5))


def test_a_clearly_better_plan_ranks_first() -> None:
    genes, losses = _toy(40)
    model = _gp(_members(genes, losses), genes)
    assert model.ready
    candidates, _ = _toy(20, seed=1)
    scores = model.scores(list(candidates))
    best = candidates[int(np.argmax(scores))]
    assert _trains_head(best[None])[0]
    mean, _ = model.mean_and_std(list(candidates))
    heads = _trains_head(candidates)
    assert mean[heads].max() < mean[~heads].min()  # lower loss wherever the head trains


def test_too_few_observations_rank_nothing() -> None:
    genes, losses = _toy(MIN_OBSERVATIONS - 1)
    model = _gp(_members(genes, losses), genes)
    assert not model.ready
    assert model.scores(list(genes[:3])).tolist() == [0.0, 0.0, 0.0]
    genes, _ = _toy(MIN_OBSERVATIONS)
    flat = _gp(_members(genes, np.full(len(genes), 0.5)), genes)
    assert not flat.ready  # equal values tell nothing


def test_fold_offsets_are_taken_out() -> None:
    # Fold 1 reads 0.5 higher; the head-training plans were mostly run on fold 1, so their
    # raw values look worse although training the head is better on either fold.
    genes, losses = _toy(60, seed=2, noise=0.02)
    heads = _trains_head(genes)
    rng = np.random.default_rng(3)
    folds = np.where(rng.random(60) < np.where(heads, 0.85, 0.15), 1, 0)
    observed = losses + 0.5 * folds
    candidates, _ = _toy(30, seed=4)
    c_heads = _trains_head(candidates)

    def head_advantage(fold_list) -> float:
        mean, _ = _gp(_members(genes, observed, fold_list), genes).mean_and_std(list(candidates))
        return float(mean[~c_heads].mean() - mean[c_heads].mean())

    assert head_advantage([int(f) for f in folds]) > 0.2  # the true effect, in loss units...
    assert head_advantage(None) < 0.0  # ...which the fold confound hides without offsets


def test_deterministic_and_hyperparameters_refitted_rarely() -> None:
    genes, losses = _toy(35)
    members = _members(genes, losses)
    cache: dict[tuple[int, ...], np.ndarray] = {}
    first = _gp(members, genes, hyperparameters=cache).scores(list(genes[:5]))
    assert list(cache) == [tuple(range(30))]  # fitted on the first 30 trials (every 10)
    again = _gp(members, genes).scores(list(genes[:5]))
    assert np.array_equal(first, again)
    _gp(members[:34], genes, hyperparameters=cache)
    assert len(cache) == 1  # the same fit serves until 40 trials have finished
    # Trial 29 still runs while 30-34 have finished: the first 30 by number differ, refitted.
    _gp(members[:29] + members[30:], genes, hyperparameters=cache)
    assert len(cache) == 2 and (*range(29), 30) in cache


def test_the_fit_set_is_capped_to_the_best_and_the_most_recent() -> None:
    from biotune_optuna.samplers._plan_surrogate import _capped

    genes, losses = _toy(300, seed=5)
    members = _members(genes, losses)
    kept = _capped(members, 100)
    numbers = [m.number for m in kept]
    assert len(kept) == 100 and numbers == sorted(numbers)
    best = sorted(members, key=lambda m: m.loss)[:20]
    assert {m.number for m in best} <= set(numbers)  # the best fifth, wherever they are
    assert set(range(300 - 80, 300)) <= set(numbers) | {m.number for m in best}
    assert _capped(members[:50], 100) == members[:50]
