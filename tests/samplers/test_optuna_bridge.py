"""Every private name of Optuna the samplers use is still there (see samplers/_optuna_bridge.py).

A new Optuna release that moves one fails here, naming the bridge and the installed version,
instead of somewhere deep in a study.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from biotune_optuna.samplers import _optuna_bridge


BRIDGE = _optuna_bridge.__name__


def _missing(what: str) -> str:
    return (
        f"{BRIDGE} uses {what}, which Optuna {optuna.__version__} does not have: "
        f"update {BRIDGE} (and only it) for this Optuna version"
    )


@pytest.mark.parametrize(("module", "name"), _optuna_bridge.PRIVATE_IMPORTS)
def test_every_private_import_of_the_bridge_exists(module: str, name: str) -> None:
    try:
        found = hasattr(importlib.import_module(module), name)
    except ImportError:
        found = False
    assert found, _missing(f"{module}.{name}")


@pytest.mark.parametrize(
    ("owner", "name"),
    _optuna_bridge.PRIVATE_ATTRIBUTES,
    ids=[f"{owner.__name__}.{name}" for owner, name in _optuna_bridge.PRIVATE_ATTRIBUTES],
)
def test_every_private_attribute_of_the_bridge_exists(owner: type, name: str) -> None:
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    estimator = _estimator({"x": optuna.distributions.FloatDistribution(0, 1)}, n=3)
    live = {
        optuna.Study: study,
        optuna.trial.FrozenTrial: study.trials[0],
        _optuna_bridge.ParzenEstimator: estimator,
    }.get(owner)
    assert hasattr(owner, name) or hasattr(live, name), _missing(f"{owner.__name__}.{name}")


def test_the_bridge_answers_for_a_real_study() -> None:
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    storage, study_id = _optuna_bridge.storage_of(study), _optuna_bridge.study_id_of(study)
    trials = _optuna_bridge.cached_trials(study)
    assert [t.number for t in trials] == [0, 1]
    assert storage.get_trial(_optuna_bridge.trial_id_of(trials[1])).number == 1
    assert storage.get_study_id_from_name(study.study_name) == study_id
    x = optuna.distributions.FloatDistribution(0, 1)
    assert _optuna_bridge.contains(x, 0.5) and not _optuna_bridge.contains(x, 2.0)


def _estimator(space: dict, *, n: int, seed: int = 0) -> _optuna_bridge.ParzenEstimator:
    """TPE's multivariate estimator over ``n`` random observations of ``space``."""
    rng = np.random.default_rng(seed)
    observations = {
        name: np.asarray([dist.to_internal_repr(_draw(dist, rng)) for _ in range(n)], dtype=float)
        for name, dist in space.items()
    }
    parameters = _optuna_bridge.ParzenEstimatorParameters(
        prior_weight=1.0,
        consider_magic_clip=True,
        consider_endpoints=False,
        weights=_optuna_bridge.default_weights,
        multivariate=True,
    )
    return _optuna_bridge.ParzenEstimator(observations, space, parameters)


def _draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    low, high = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
    value = float(rng.uniform(low, high))
    value = math.exp(value) if dist.log else value
    if isinstance(dist, IntDistribution):
        return int(min(dist.high, max(dist.low, round(value))))
    return min(dist.high, max(dist.low, value))


SPACES = {
    "continuous": {f"x{i}": FloatDistribution(0, 1) for i in range(7)},
    "log": {"lr": FloatDistribution(1e-5, 1e-1, log=True), "x": FloatDistribution(-2, 3)},
    "stepped": {"x": FloatDistribution(0, 1, step=0.1), "y": FloatDistribution(0, 1)},
    "int": {"n": IntDistribution(1, 64, log=True), "y": FloatDistribution(0, 1)},
    "categorical": {"c": CategoricalDistribution(["a", "b"]), "y": FloatDistribution(0, 1)},
}


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("n", [0, 1, 30, 300])
def test_parzen_log_pdf_is_optunas_log_pdf_bit_for_bit(
    kind: str, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = SPACES[kind]
    estimator = _estimator(space, n=n, seed=n)
    rng = np.random.default_rng(1000 + n)
    samples = {
        name: np.asarray([dist.to_internal_repr(_draw(dist, rng)) for _ in range(37)])
        for name, dist in space.items()
    }
    first, dist = next(iter(space.items()))  # a sample on a bound, inside it
    samples[first][0] = 0 if isinstance(dist, CategoricalDistribution) else dist.low
    expected = estimator.log_pdf(samples)
    if kind in ("continuous", "log"):  # the fast path, not Optuna's own log_pdf

        def refused(_: object) -> None:
            raise AssertionError("fell back to Optuna's log_pdf")

        monkeypatch.setattr(estimator, "log_pdf", refused)
    got = _optuna_bridge.parzen_log_pdf(estimator, samples)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True)


def test_parzen_log_pdf_outside_the_bounds_is_optunas_too() -> None:
    space = SPACES["continuous"]
    estimator = _estimator(space, n=50)
    samples = {name: np.linspace(0.0, 1.0, 5) for name in space}
    samples["x3"] = np.asarray([0.5, 1.5, -0.1, 0.2, 0.3])  # two outside: -inf
    expected = estimator.log_pdf(samples)
    assert np.isneginf(expected[1:3]).all()
    assert np.array_equal(_optuna_bridge.parzen_log_pdf(estimator, samples), expected)
