"""Where batches come from: the prefix cache changes nothing but speed; augmenting skips it."""

from __future__ import annotations

import dataclasses

import numpy as np

from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._training import evaluate_plan
from tests.finetune.conftest import tiny_backbone
from tests.finetune.conftest import tiny_plan
from tests.finetune.conftest import TINY_PROTOCOL as PROTOCOL
from tests.finetune.conftest import whole_splits


def test_repeatable_and_cache_changes_nothing_but_speed(small_digits: ClassificationData) -> None:
    plan = tiny_plan((0.1, 0.2, 0.9, 0.7), threshold=0.5)  # blocks 0, 1 frozen: a 2-block prefix
    assert plan.frozen_prefix == 2
    results = {}
    for name, (key, cache) in {
        "cached": (True, FeatureCache(2**30)),
        "cached again": (True, None),
        "no cache": (False, None),
        "over budget": (True, FeatureCache(1000)),
    }.items():
        if name == "cached again":
            cache = results["cached"][1]
        train, val, _ = whole_splits(small_digits, key=key)
        result = evaluate_plan(
            tiny_backbone(), plan, train, val, PROTOCOL, num_classes=10, cache=cache
        )
        results[name] = (result, cache)
    assert results["cached"][0].feature_cache == "stored"
    assert results["cached again"][0].feature_cache == "hit"
    assert results["no cache"][0].feature_cache == "none"
    assert results["over budget"][0].feature_cache == "refused"
    assert len(results["over budget"][1]) == 0
    reference = [r.history for r in results["no cache"][0].runs]
    for name in ("cached", "cached again", "over budget"):
        histories = [r.history for r in results[name][0].runs]
        np.testing.assert_allclose(histories, reference, atol=1e-6, err_msg=name)


def test_augmentation_turns_the_cache_off(small_digits: ClassificationData) -> None:
    protocol = dataclasses.replace(PROTOCOL, augmentation="crop_flip", n_seeds=1)
    train, val, _ = whole_splits(small_digits)
    plan = tiny_plan((0.1, 0.2, 0.9, 0.7))
    cache = FeatureCache(2**30)
    first = evaluate_plan(tiny_backbone(), plan, train, val, protocol, num_classes=10, cache=cache)
    again = evaluate_plan(tiny_backbone(), plan, train, val, protocol, num_classes=10, cache=cache)
    assert first.feature_cache == "none" and len(cache) == 1  # only val features are cached
    assert first.runs[0].history == again.runs[0].history


def test_user_groups_of_blocks_cache_their_frozen_prefix(small_digits: ClassificationData) -> None:
    """Blocks given in the spec that group the built-in ones in order still cache (and agree)."""
    from biotune_optuna.finetune._backbones import Backbone
    from biotune_optuna.finetune._blocks import block_layout
    from biotune_optuna.plan import FineTunePlan

    model = tiny_backbone().model
    layout = block_layout(model, {"features": ["0", "1"], "pool": ["2"], "head": ["3"]})
    backbone = Backbone(model=model, layout=layout, head=("3",), name="tiny-groups")
    plan = FineTunePlan(("features", "pool", "head"), (0.1, 0.9, 0.9), 0.5, base_lr=3e-3)
    protocol = dataclasses.replace(PROTOCOL, n_seeds=1)
    runs = {}
    for name, cache in {"cached": FeatureCache(2**30), "no cache": None}.items():
        train, val, _ = whole_splits(small_digits)
        runs[name] = evaluate_plan(
            backbone, plan, train, val, protocol, num_classes=10, cache=cache
        )
    assert runs["cached"].feature_cache == "stored"
    np.testing.assert_allclose(
        runs["cached"].runs[0].history, runs["no cache"].runs[0].history, atol=1e-6
    )
