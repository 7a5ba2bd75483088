"""The cheaper ask of ``biotune-plus`` computes what the plain code computes (issue 28, item 4).

Each fast path has a plain counterpart: TPE's density (:func:`parzen_log_pdf` against Optuna's
``log_pdf``, tested bit for bit in ``test_optuna_bridge.py``), the configurations a study holds
(narrowed gene by gene on an incrementally grown stack, against a brute-force comparison) and the
encoding of TPE-drawn candidates (a column at a time, against :meth:`GeneSpace.encode`). A study
run with the plain paths proposes exactly what one run with the fast paths proposes.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from biotune_optuna import BioTunePlusSampler
from biotune_optuna.samplers import _optuna_bridge
from biotune_optuna.samplers import _surrogate
from biotune_optuna.samplers._configurations import ConfigurationSet
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.studies._synthetic import SyntheticFineTuning


SPACES = {
    "floats": {f"x{i}": FloatDistribution(0, 1) for i in range(5)},
    "biotune": {name: FloatDistribution(0, 1) for name in SyntheticFineTuning(seed=0).param_names},
    "mixed": {
        "n": IntDistribution(0, 3),
        "kind": CategoricalDistribution(["a", "b"]),
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "y": FloatDistribution(0, 1),
    },
}


def _holds_by_brute_force(space: GeneSpace, held: list[np.ndarray], genes: np.ndarray) -> bool:
    """Whether ``genes`` repeats one of ``held``: one fresh set per question, one at a time."""
    return any(_same(space, other, genes) for other in held)


def _same(space: GeneSpace, a: np.ndarray, b: np.ndarray) -> bool:
    pair = ConfigurationSet(space)
    pair.add(a)
    return pair.contains(b)


@pytest.mark.parametrize("kind", SPACES)
def test_a_growing_configuration_set_answers_as_a_brute_force_comparison(kind: str) -> None:
    space = GeneSpace(SPACES[kind])
    rng = np.random.default_rng(7)
    configurations, held = ConfigurationSet(space), []
    answers = []
    for _ in range(120):
        genes = space.random(rng)
        if held and rng.random() < 0.5:  # near (or exactly on) an earlier configuration
            near = held[int(rng.integers(len(held)))].copy()
            near[~space.is_categorical] += rng.uniform(
                -0.012, 0.012, (~space.is_categorical).sum()
            )
            genes = np.clip(near, 0.0, 1.0)
        expected = _holds_by_brute_force(space, held, genes)
        assert configurations.contains(genes) == expected
        assert configurations.add(genes) == expected  # and the stack grows by one
        answers.append(expected)
        if not expected:
            held.append(genes)
    assert any(answers) and not all(answers)  # both answers were exercised


def test_encode_columns_is_encode_row_by_row_and_only_for_linear_floats() -> None:
    space = GeneSpace({"a": FloatDistribution(-2.0, 3.0), "b": FloatDistribution(0, 1)})
    rng = np.random.default_rng(3)
    columns = {"a": rng.uniform(-2.5, 3.5, 50), "b": rng.uniform(0, 1, 50)}
    table = space.encode_columns(columns)
    assert table is not None
    for i, row in enumerate(table):
        params = {name: float(values[i]) for name, values in columns.items()}
        assert np.array_equal(row, space.encode(params, _no_fill))
    for kind in ("mixed",):
        assert GeneSpace(SPACES[kind]).encode_columns({}) is None
    assert GeneSpace({"lr": FloatDistribution(1e-4, 1.0, log=True)}).encode_columns({}) is None


def _no_fill() -> np.random.Generator:
    raise AssertionError("every gene is given")


def _proposals(n_trials: int) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=BioTunePlusSampler(seed=5), direction="maximize")
    study.optimize(SyntheticFineTuning(seed=2), n_trials=n_trials)
    rows = [
        [t.number, sorted(t.params.items()), t.system_attrs[LINEAGE_KEY]] for t in study.trials
    ]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_plus_proposes_the_same_with_the_plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _proposals(60)
    monkeypatch.setattr(_surrogate, "parzen_log_pdf", lambda estimator, x: estimator.log_pdf(x))
    monkeypatch.setattr(GeneSpace, "encode_columns", lambda self, columns: None)
    monkeypatch.setattr(ConfigurationSet, "contains", _contains_plainly)
    assert _proposals(60) == fast


def _contains_plainly(self: ConfigurationSet, genes: np.ndarray) -> bool:
    """The comparison before the fast path: every compared gene of every row at once."""
    key, values = self._view(genes)
    group = self._groups.get(key)
    if not group:
        return False
    compared = ~np.isnan(values)
    others = np.asarray(group)[:, compared]
    return bool((np.abs(others - values[compared]) <= self._tolerance + 1e-12).all(1).any())


def test_the_bridge_density_is_what_the_ranker_uses() -> None:
    assert _surrogate.parzen_log_pdf is _optuna_bridge.parzen_log_pdf
