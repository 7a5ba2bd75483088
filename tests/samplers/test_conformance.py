"""Optuna's own sampler conformance suites, run against both BioTune presets."""

from __future__ import annotations

from collections.abc import Callable

from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import pytest

from biotune_optuna import BioTunePlusSampler
from biotune_optuna import BioTuneSampler


_PRESETS = [BioTuneSampler, BioTunePlusSampler]
_IDS = ["biotune", "biotune-plus"]


class TestPresets(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    """Each preset with its default schedule."""

    @pytest.fixture(params=_PRESETS, ids=_IDS)
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return lambda: request.param(seed=0)


class TestPresetsSmallPopulation(BasicSamplerTestCase, RelativeSamplerTestCase):
    """Small populations reach breeding (with ranked candidates for BioTune+), exploitation
    (adaptive for BioTune+), immigrants and repeats avoided within the suites' trials."""

    @pytest.fixture(params=_PRESETS, ids=_IDS)
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return lambda: request.param(population_size=3, n_elites=1, seed=1)
