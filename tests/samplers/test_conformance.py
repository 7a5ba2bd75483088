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


class TestBioTuneSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTuneSampler(seed=0)


class TestBioTuneSamplerSmallPopulation(BasicSamplerTestCase, RelativeSamplerTestCase):
    """Small populations reach breeding, exploitation and immigrants within the suites' trials."""

    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTuneSampler(population_size=3, n_elites=1, seed=1)


class TestBioTunePlusSampler(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTunePlusSampler(seed=0)


class TestBioTunePlusSamplerSmallPopulation(BasicSamplerTestCase, RelativeSamplerTestCase):
    """Breeding with ranked candidates, adaptive exploitation and repeats avoided, early."""

    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: BioTunePlusSampler(population_size=3, n_elites=1, seed=1)
