"""Every private name of Optuna the samplers use is still there (see samplers/_optuna_bridge.py).

A new Optuna release that moves one fails here, naming the bridge and the installed version,
instead of somewhere deep in a study.
"""

from __future__ import annotations

import importlib

import optuna
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
    live = {optuna.Study: study, optuna.trial.FrozenTrial: study.trials[0]}.get(owner)
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
