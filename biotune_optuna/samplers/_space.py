"""Mapping between an Optuna search space and genotypes in the unit cube.

Every numerical gene lives in ``[0, 1]``, as BioTune's genes do (arXiv:2508.15367, §II): floats
linearly or on a log scale, and discrete values (ints, stepped floats) over their range widened by
half a step so that every value owns an equal share of ``[0, 1]``. Categorical genes hold the index
of their choice; the operators treat them by picking among existing values.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


#: A genotype: one value per gene, numerical genes in ``[0, 1]``, categorical ones a choice's
#: index (the operators' argument and result type).
Genes = np.ndarray
#: The random generator an operator draws from (derived from the seed and the trial's place).
Rng = np.random.Generator


class GeneSpace:
    """A search space seen as a genotype: parameter names in sorted order, one gene each.

    Args:
        search_space: Parameter name to distribution.
    """

    def __init__(self, search_space: Mapping[str, BaseDistribution]) -> None:
        self.names: list[str] = sorted(search_space)
        self.distributions: list[BaseDistribution] = [search_space[n] for n in self.names]
        n = len(self.names)
        self.is_categorical = np.zeros(n, dtype=bool)
        self.n_choices = np.zeros(n, dtype=np.int64)
        self._low = np.zeros(n)
        self._high = np.ones(n)
        for i, dist in enumerate(self.distributions):
            if isinstance(dist, CategoricalDistribution):
                self.is_categorical[i] = True
                self.n_choices[i] = len(dist.choices)
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                self._low[i], self._high[i] = _transformed_bounds(dist)
            else:
                raise ValueError(f"Unsupported distribution `{dist!r}` for `{self.names[i]}`.")
        self.key: tuple[tuple[str, str], ...] = tuple(
            (name, repr(dist)) for name, dist in zip(self.names, self.distributions)
        )

    def __len__(self) -> int:
        return len(self.names)

    def random(self, rng: np.random.Generator) -> np.ndarray:
        """Draw a genotype uniformly: numerical genes from U(0, 1), categorical genes uniformly."""
        genes = rng.random(len(self))
        cat = self.is_categorical
        genes[cat] = np.floor(genes[cat] * self.n_choices[cat])
        return genes

    def encode(
        self, params: Mapping[str, Any], fill: Callable[[], np.random.Generator]
    ) -> np.ndarray:
        """Encode trial parameters.

        A gene missing from ``params`` (or a category foreign to its distribution) is drawn at
        random from the generator ``fill()``, which is only called if one is missing.
        """
        genes = np.full(len(self), np.nan)
        for i, (name, dist) in enumerate(zip(self.names, self.distributions)):
            if name not in params:
                continue
            value = params[name]
            if isinstance(dist, CategoricalDistribution):
                if value in dist.choices:
                    genes[i] = float(dist.to_internal_repr(value))
                continue
            x = math.log(value) if dist.log and value > 0 else float(value)
            width = self._high[i] - self._low[i]
            genes[i] = 0.5 if width <= 0 else min(1.0, max(0.0, (x - self._low[i]) / width))
        missing = np.isnan(genes)
        if missing.any():
            genes[missing] = self.random(fill())[missing]
        return genes

    def encode_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """:meth:`encode` of many samples at once (one array per parameter, one row per
        sample), when every gene is a linear continuous float: the same arithmetic, a column at
        a time (``fmax``/``fmin`` clip as ``max``/``min`` do). ``None`` for any other space."""
        plain = all(
            isinstance(d, FloatDistribution) and not d.log and d.step is None
            for d in self.distributions
        )
        width = self._high - self._low
        if not plain or len(self) == 0 or (width <= 0).any():
            return None
        table = np.asarray([columns[name] for name in self.names], dtype=float).T
        return np.fmin(1.0, np.fmax((table - self._low) / width, 0.0))

    def decode(self, genes: np.ndarray) -> dict[str, Any]:
        """Decode a genotype into parameter values of Python types inside their distributions."""
        params: dict[str, Any] = {}
        for i, (name, dist) in enumerate(zip(self.names, self.distributions)):
            if isinstance(dist, CategoricalDistribution):
                index = min(int(genes[i]), len(dist.choices) - 1)
                params[name] = dist.choices[max(index, 0)]
                continue
            u = min(1.0, max(0.0, float(genes[i])))
            x = self._low[i] + u * (self._high[i] - self._low[i])
            if dist.log:
                x = math.exp(x)
            params[name] = _snap(dist, x)
        return params


def _transformed_bounds(dist: FloatDistribution | IntDistribution) -> tuple[float, float]:
    if isinstance(dist, IntDistribution):
        if dist.log:
            return math.log(dist.low - 0.5), math.log(dist.high + 0.5)
        return dist.low - 0.5 * dist.step, dist.high + 0.5 * dist.step
    if dist.log:
        return math.log(dist.low), math.log(dist.high)
    if dist.step is not None:
        return dist.low - 0.5 * dist.step, dist.high + 0.5 * dist.step
    return dist.low, dist.high


def _snap(dist: FloatDistribution | IntDistribution, x: float) -> int | float:
    if isinstance(dist, IntDistribution):
        step = dist.step
        value = dist.low + step * round((x - dist.low) / step) if not dist.log else round(x)
        return int(min(dist.high, max(dist.low, value)))
    if dist.step is not None:
        k = round((x - dist.low) / dist.step)
        x = dist.low + k * dist.step
        # Float arithmetic: keep the value a representable multiple of the step inside the range.
        x = float(np.round(x, 12))
    return float(min(dist.high, max(dist.low, x)))
