"""Optuna's own sampler conformance suites, run against BioTuneSampler."""

from __future__ import annotations

from collections.abc import Callable

from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import pytest

from biotune_optuna import BioTuneSampler


class TestBioTuneSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTuneSampler(seed=0)


class TestBioTuneSamplerSmallPopulation(BasicSamplerTestCase, RelativeSamplerTestCase):
    """Small populations reach breeding, exploitation and immigrants within the suites' trials."""

    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTuneSampler(population_size=3, n_elites=1, seed=1)
