"""Ranking candidate genotypes by a model of the finished trials, with Optuna's TPE estimators.

Surrogate-assisted offspring (an option of :class:`~biotune_optuna.samplers.BioTunePlusSampler`):
BioTune's operators (arXiv:2508.15367, §III) breed several candidate children per offspring slot
and the one the model ranks best is evaluated. The model is Optuna's own: the two Parzen
estimators of :class:`~optuna.samplers.TPESampler` (Bergstra et al., NeurIPS 2011; Watanabe,
arXiv:2304.11127), ``l`` over the best ``gamma(n)`` trials and ``g`` over the rest, built with
TPE's default gamma, weights, prior and multivariate kernel, and a candidate's score is
``log l(x) - log g(x)``, the quantity TPE maximises over its own candidates. Candidates can also
be drawn from ``l`` itself (:meth:`CandidateRanker.sample`), as TPE draws all of its own: the
children then compete with points near the best trials found so far, wherever they lie.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from operator import attrgetter
from typing import Any

import numpy as np

from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._optuna_bridge import default_gamma
from biotune_optuna.samplers._optuna_bridge import default_weights
from biotune_optuna.samplers._optuna_bridge import parzen_log_pdf
from biotune_optuna.samplers._optuna_bridge import ParzenEstimator
from biotune_optuna.samplers._optuna_bridge import ParzenEstimatorParameters
from biotune_optuna.samplers._space import GeneSpace


__all__ = ["MIN_OBSERVATIONS", "CandidateRanker", "prior_weight"]

_RANK = attrgetter("rank")
#: Finished trials the model needs before it ranks (TPE's ``n_startup_trials``).
MIN_OBSERVATIONS = 10

_PARAMETERS = ParzenEstimatorParameters(
    prior_weight=1.0,
    consider_magic_clip=True,
    consider_endpoints=False,
    weights=default_weights,
    multivariate=True,
)


class CandidateRanker:
    """TPE's density ratio over a gene space, fitted to finished members.

    Args:
        members: Finished members of the study (failed and pruned ones count as the worst).
        space: The gene space the candidates live in.
        rows: A cache of each member's parameters in TPE's internal representation (``None``:
            it lacks a gene), kept between rankers of one study so that each member is
            converted once.
        prior: Parameters of good plans from earlier studies (a warm start): ``l`` counts
            each as an observation of weight ``k / (k + n)`` (``k`` plans, ``n`` finished
            trials), a prior worth ``k`` trials at first that fades as the study's own
            trials accumulate; ``g`` is the study's own.
    """

    def __init__(
        self,
        members: Sequence[Member],
        space: GeneSpace,
        rows: dict[int, np.ndarray | None] | None = None,
        prior: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self._space = space
        self._search_space = dict(zip(space.names, space.distributions))
        self._rows = {} if rows is None else rows
        usable = [m for m in members if self._row(m) is not None]
        usable.sort(key=_RANK)
        self.n_observations = len(usable)
        self._below: ParzenEstimator | None = None
        self._above: ParzenEstimator | None = None
        if self.n_observations < MIN_OBSERVATIONS:
            return
        n_below = default_gamma(self.n_observations)
        finite_below = [m for m in usable[:n_below] if math.isfinite(m.loss)]
        if not finite_below:
            return
        # TPE's weights favour recent trials; members are in loss order here, so give them in
        # number order as TPE does.
        below = sorted(finite_below, key=lambda m: m.number)
        above = sorted(usable[len(finite_below) :], key=lambda m: m.number)
        self._below = self._with_prior(below, prior)
        self._above = ParzenEstimator(self._observations(above), self._search_space, _PARAMETERS)

    def _with_prior(
        self, below: Sequence[Member], prior: Sequence[Mapping[str, Any]]
    ) -> ParzenEstimator:
        """``l``: TPE's estimator of the best trials, plus the prior plans with fading weight."""
        observations = self._observations(below)
        prior = [p for p in prior if all(name in p for name in self._search_space)]
        if not prior:
            return ParzenEstimator(observations, self._search_space, _PARAMETERS)
        k, n = len(prior), self.n_observations
        for name, dist in self._search_space.items():
            extra = [dist.to_internal_repr(p[name]) for p in prior]
            observations[name] = np.concatenate([observations[name], np.asarray(extra, float)])
        weights = np.concatenate([default_weights(len(below)), np.full(k, prior_weight(k, n))])
        return ParzenEstimator(
            observations, self._search_space, _PARAMETERS, predetermined_weights=weights
        )

    @property
    def ready(self) -> bool:
        """Whether enough trials finished for the model to rank candidates."""
        return self._below is not None

    def _row(self, member: Member) -> np.ndarray | None:
        if member.number not in self._rows:
            params = member.params
            self._rows[member.number] = (
                np.asarray(
                    [dist.to_internal_repr(params[n]) for n, dist in self._search_space.items()],
                    dtype=float,
                )
                if all(name in params for name in self._search_space)
                else None
            )
        return self._rows[member.number]

    def _observations(self, members: Sequence[Member]) -> dict[str, np.ndarray]:
        table = np.asarray([self._row(m) for m in members], dtype=float).reshape(
            len(members), len(self._search_space)
        )
        return {name: table[:, i] for i, name in enumerate(self._search_space)}

    def sample(self, rng: np.random.Generator, size: int) -> list[np.ndarray]:
        """Draw ``size`` genotypes from ``l``, the estimator of the best trials."""
        if self._below is None or size <= 0:
            return []
        legacy = np.random.RandomState(rng.integers(2**32))  # TPE's estimators take one
        drawn = self._below.sample(legacy, size)
        table = self._space.encode_columns(drawn)
        if table is not None:
            return list(table)
        out = []
        for i in range(size):
            params = {
                name: dist.to_external_repr(float(drawn[name][i]))
                for name, dist in self._search_space.items()
            }
            out.append(self._space.encode(params, _no_fill))
        return out

    def scores(self, candidates: Sequence[np.ndarray]) -> np.ndarray:
        """``log l(x) - log g(x)`` of each candidate genotype (higher: more promising)."""
        if self._below is None or self._above is None:
            return np.zeros(len(candidates))
        params = [self._space.decode(genes) for genes in candidates]
        samples = {
            name: np.asarray([dist.to_internal_repr(p[name]) for p in params], dtype=float)
            for name, dist in self._search_space.items()
        }
        return parzen_log_pdf(self._below, samples) - parzen_log_pdf(self._above, samples)


def prior_weight(n_prior: int, n_observations: int) -> float:
    """The weight of each of ``n_prior`` prior plans in ``l`` after ``n_observations`` finished
    trials (each of TPE's own weighs at most 1): ``k / (k + n)``, so that together they count
    as ``k`` trials at first and fade as the study's own trials accumulate."""
    return n_prior / (n_prior + n_observations)


def _no_fill() -> np.random.Generator:
    raise AssertionError("a drawn genotype has every gene")
