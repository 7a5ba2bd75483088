"""When two trials evaluate the same configuration.

A configuration is what the objective sees, not the genotype: two genotypes are the same
configuration when every int, stepped float and categorical gene falls in the same cell (they
decode to the same value) and every continuous gene lies within a tolerance of the other's, in
the unit cube of :class:`~biotune_optuna.samplers._space.GeneSpace`. For BioTune genes
(arXiv:2508.15367, §II) the configuration is the fine-tuning plan: the same blocks fine-tuned,
at learning rates within the tolerance; the threshold's exact value and the importances of
frozen blocks do not change the plan, so they are not compared.

Used by :class:`~biotune_optuna.samplers.BioTunePlusSampler` to never spend a trial on a
configuration the study already holds, and by the benchmarks to count every sampler's repeats
by the same rule (:func:`duplicate_trials`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers._space import GeneSpace


__all__ = ["DUPLICATE_TOLERANCE", "ConfigurationSet", "duplicate_trials"]

#: Continuous genes closer than this (in the unit cube: 1 % of a gene's range) are the same
#: configuration. On a BioTune importance it is a learning-rate factor of ``10**0.02 ≈ 1.05``.
DUPLICATE_TOLERANCE = 0.01


def _is_continuous(space: GeneSpace) -> np.ndarray:
    return np.array(
        [isinstance(d, FloatDistribution) and d.step is None for d in space.distributions],
        dtype=bool,
    )


class ConfigurationSet:
    """The configurations of a set of genotypes, to tell whether a new one repeats any.

    Args:
        space: The genotypes' search space.
        tolerance: Largest difference of continuous genes (unit cube) of one configuration.
    """

    def __init__(self, space: GeneSpace, *, tolerance: float = DUPLICATE_TOLERANCE) -> None:
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"`tolerance` must be in [0, 1), got {tolerance}.")
        self._space = space
        self._tolerance = float(tolerance)
        self._continuous = _is_continuous(space)
        self._exact_names = [n for n, c in zip(space.names, self._continuous) if not c]
        self._located = biotune_gene_indices(space.names)
        self._groups: dict[tuple[object, ...], list[np.ndarray]] = defaultdict(list)
        self._stacked: dict[tuple[object, ...], np.ndarray] = {}  # each group as one array
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _view(self, genes: np.ndarray) -> tuple[tuple[object, ...], np.ndarray]:
        """The exactly compared part of a configuration and its continuous part (NaN: ignored)."""
        # Only genes compared exactly are decoded (all-continuous spaces decode none); fmax and
        # fmin clip as Python's max(0, .) and min(1, .) do, a NaN gene included.
        params = self._space.decode(genes) if self._exact_names else {}
        exact: list[object] = [repr(params[name]) for name in self._exact_names]
        values = np.where(self._continuous, np.fmin(1.0, np.fmax(genes, 0.0)), np.nan)
        if self._located is not None:
            importance, threshold = self._located
            trained = genes[importance] > genes[threshold]
            exact.append(tuple(bool(t) for t in trained))
            values[threshold] = np.nan
            values[np.asarray(importance)[~trained]] = np.nan
        return tuple(exact), values

    def contains(self, genes: np.ndarray) -> bool:
        """Whether ``genes`` is a configuration of the set."""
        return self._holds(*self._view(genes))

    def _holds(self, key: tuple[object, ...], values: np.ndarray) -> bool:
        group = self._groups.get(key)
        if not group:
            return False
        compared = ~np.isnan(values)
        if not compared.any():
            return True
        stacked = self._stacked.get(key)
        if stacked is None:
            stacked = self._stacked[key] = np.asarray(group)
        elif len(stacked) != len(group):  # stack only the configurations added since
            stacked = self._stacked[key] = np.vstack([stacked, *group[len(stacked) :]])
        # The rows within the tolerance on every compared gene, narrowed gene by gene.
        within = self._tolerance + 1e-12
        for i in np.flatnonzero(compared):
            stacked = stacked[np.abs(stacked[:, i] - values[i]) <= within]
            if len(stacked) == 0:
                return False
        return True

    def add(self, genes: np.ndarray) -> bool:
        """Add a genotype's configuration; return whether the set already held it."""
        key, values = self._view(genes)
        held = self._holds(key, values)
        if not held:
            self._groups[key].append(values)
        self._size += 1
        return held


def duplicate_trials(
    trials: Iterable[FrozenTrial], *, tolerance: float = DUPLICATE_TOLERANCE
) -> list[int]:
    """Numbers of the trials that evaluate a configuration an earlier trial already evaluated.

    Trials are compared in number order, among trials with the same parameters and
    distributions; trials without parameters are skipped. The rule is the same for every
    sampler, so the count measures wasted evaluations fairly.

    Args:
        trials: Trials of one study (any sampler, any state).
        tolerance: Largest difference of continuous genes of one configuration (unit cube).

    Returns:
        Trial numbers, ascending.
    """
    sets: dict[tuple[tuple[str, str], ...], tuple[GeneSpace, ConfigurationSet]] = {}
    repeated = []
    for trial in sorted(trials, key=lambda t: t.number):
        if not trial.params:
            continue
        shape = tuple((name, repr(dist)) for name, dist in sorted(trial.distributions.items()))
        entry = sets.get(shape)
        if entry is None:
            space = GeneSpace(trial.distributions)
            entry = sets[shape] = (space, ConfigurationSet(space, tolerance=tolerance))
        space, configurations = entry
        genes = space.encode(trial.params, _no_fill)
        if configurations.add(genes):
            repeated.append(trial.number)
    return repeated


def _no_fill() -> np.random.Generator:  # every parameter of a trial is in its distributions
    raise AssertionError("a trial's parameters cover its distributions")
