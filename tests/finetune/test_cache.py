"""The frozen-prefix feature cache: least recently used out, nothing over the budget in."""

from __future__ import annotations

import torch

from biotune_optuna.finetune._cache import FeatureCache


def test_cache_evicts_least_recently_used() -> None:
    cache = FeatureCache(3 * 400)
    for key in "abc":
        assert cache.put(key, torch.zeros(100))
    assert cache.get("a") is not None
    assert cache.put("d", torch.zeros(100))
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    assert not cache.put("huge", torch.zeros(1000))
    assert cache.nbytes <= cache.max_bytes
