"""Ranking candidate plans by a Gaussian process over the plan they stand for, not their genes.

A surrogate of :class:`~biotune_optuna.samplers.BioTunePlusSampler` (``surrogate="gp"``). BioTune's
genes (arXiv:2508.15367, §II) are seen as the plan they give: block ``b`` is trained iff its
importance ``ν_b`` exceeds the threshold ``ε``, at the learning-rate multiplier
``10^(2(ν_b − 0.5))``. So a genotype's features are, per block, the trained mask and the log10
multiplier of a trained block (0 for a frozen one): two genotypes that give the same plan are the
same point, and moving the threshold across an importance flips one feature, not all of them.
(Another search space: the genes in the unit cube.)

The model is a Gaussian process (Rasmussen & Williams, *Gaussian Processes for Machine Learning*,
2006, §2.7 and §5.4): a Matérn-5/2 kernel with one lengthscale for the masks and one for the
multipliers, a signal and a noise variance, and a fixed per-fold mean (a trial's fold, when its
objective records one, shifts every value of that fold: the paper's folds alternate by
generation), its coefficients estimated by generalised least squares and the hyperparameters by
restricted maximum likelihood. A candidate's score is its expected improvement over the best
posterior mean of the plans evaluated (noise-aware, in log form), so noisy single values on one
fold do not set the bar. Cost is bounded: at most :data:`FIT_LIMIT` trials enter the posterior
and :data:`HYPERPARAMETER_LIMIT` the hyperparameter fit (the best fifth of them by value, the rest
the most recent), and the hyperparameters are refitted only every :data:`REFIT_EVERY` finished
trials (every :data:`LATE_REFIT_EVERY` after :data:`LATE_AFTER`), on the first trials by number, so
that a resumed study fits the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from scipy import linalg
from scipy import optimize
from scipy import special

from biotune_optuna.plan import biotune_gene_indices
from biotune_optuna.samplers._lineage import Member
from biotune_optuna.samplers._space import GeneSpace
from biotune_optuna.samplers._surrogate import MIN_OBSERVATIONS


__all__ = [
    "FIT_LIMIT",
    "HYPERPARAMETER_LIMIT",
    "LATE_AFTER",
    "LATE_REFIT_EVERY",
    "REFIT_EVERY",
    "PlanGP",
    "plan_features",
]

GenesOf = Callable[[Member], np.ndarray]

#: At most this many finished trials enter the posterior: the best fifth, then the most recent.
FIT_LIMIT = 200
#: At most this many enter the hyperparameter fit, chosen alike.
HYPERPARAMETER_LIMIT = 150
#: The hyperparameters are refitted each time this many more trials have finished...
REFIT_EVERY = 10
#: ...and this many once :data:`LATE_AFTER` trials have.
LATE_REFIT_EVERY = 50
LATE_AFTER = 200
#: Bounds of the log hyperparameters: mask and multiplier lengthscales, signal and noise
#: variance (of values standardised to unit variance).
_BOUNDS = ((math.log(0.1), math.log(10.0)),) * 2 + (
    (math.log(0.05), math.log(20.0)),
    (math.log(1e-4), math.log(2.0)),
)
_START = np.array([0.0, 0.0, 0.0, math.log(0.1)])


def plan_features(genes: np.ndarray, space: GeneSpace) -> tuple[np.ndarray, np.ndarray]:
    """The plan features of genotypes (rows of ``genes``) and which columns are masks.

    Returns:
        ``(features, is_mask)``: with BioTune genes, per block the trained mask (1 if
        ``ν_b > ε``) and then per block the log10 learning-rate multiplier ``2(ν_b − 0.5)`` if
        trained, else 0; otherwise the genes (categorical ones scaled to ``[0, 1]``) and no mask.
    """
    genes = np.atleast_2d(np.asarray(genes, dtype=float))
    located = biotune_gene_indices(space.names)
    if located is None:
        scale = np.where(space.is_categorical, np.maximum(space.n_choices - 1, 1), 1.0)
        return genes / scale, np.zeros(genes.shape[1], dtype=bool)
    importance, threshold = located
    nu = _values(genes, space, importance)
    eps = _values(genes, space, [threshold])
    trained = (nu > eps).astype(float)
    features = np.hstack([trained, trained * 2.0 * (nu - 0.5)])
    return features, np.arange(features.shape[1]) < len(importance)


def _values(genes: np.ndarray, space: GeneSpace, columns: Sequence[int]) -> np.ndarray:
    """The values of numerical genes between their bounds (log aware, not snapped to steps)."""
    out = np.empty((len(genes), len(columns)))
    for j, i in enumerate(columns):
        dist = space.distributions[i]
        low, high = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
        u = np.clip(genes[:, i], 0.0, 1.0)
        if dist.log:  # type: ignore[attr-defined]
            out[:, j] = np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            out[:, j] = low + u * (high - low)
    return out


class PlanGP:
    """A Gaussian process over plan features, fitted to finished members, scoring candidates.

    Args:
        members: Finished members of the study; COMPLETE ones are fitted, FAILED ones (a crash
            says nothing of the plan's accuracy) and pruned ones (a value at an earlier step)
            are not. A member's known data fold (:attr:`Member.fold`) gets its own mean.
        rungs: A budget-aware study (``_rungs``): members paused at a rung are fitted too, by
            their value at their rung, each (fold, rung) with its own mean, so that the many
            plans measured at low rungs inform the model before few have finished.
        space: The gene space the candidates live in.
        genes_of: A member's genotype in ``space``.
        hyperparameters: A cache of fitted log hyperparameters keyed by the numbers of the
            trials they were fitted on, kept between models of one study.
    """

    def __init__(
        self,
        members: Sequence[Member],
        space: GeneSpace,
        genes_of: GenesOf,
        hyperparameters: dict[tuple[Any, ...], np.ndarray] | None = None,
        rungs: bool = False,
    ) -> None:
        self._space = space
        self._rungs = rungs
        usable = sorted((m for m in members if self._usable(m)), key=lambda m: m.number)
        self.n_observations = len(usable)
        self._ready = False
        if self.n_observations < MIN_OBSERVATIONS:
            return
        cache = {} if hyperparameters is None else hyperparameters
        n = self.n_observations
        step = REFIT_EVERY if n < LATE_AFTER else LATE_REFIT_EVERY
        first = usable[: (n // step) * step]
        # Workers may finish trials out of order; a budget-aware study continues members.
        key = tuple((m.number, m.fidelity) if rungs else m.number for m in first)
        if key not in cache:
            fitted = _capped(first, HYPERPARAMETER_LIMIT)
            cache[key] = _fit(*self._data(fitted, genes_of), self._is_mask)
        self._theta = cache[key]
        x, y, h = self._data(_capped(usable, FIT_LIMIT), genes_of)
        if not np.isfinite(y).any() or np.ptp(y) == 0:
            return
        self._x = x
        self._posterior(x, y, h)
        self._ready = True

    def _usable(self, member: Member) -> bool:
        """COMPLETE members; in a budget-aware study also those paused at a rung."""
        if member.fidelity == math.inf:
            return True
        return self._rungs and math.isfinite(member.fidelity) and math.isfinite(member.loss)

    @property
    def ready(self) -> bool:
        """Whether enough trials finished for the model to rank candidates."""
        return self._ready

    def _data(self, members: Sequence[Member], genes_of: GenesOf) -> tuple[np.ndarray, ...]:
        genes = np.array([genes_of(m) for m in members])
        x, self._is_mask = plan_features(genes, self._space)
        losses = np.array([m.loss for m in members], dtype=float)
        finite = np.isfinite(losses)
        losses[~finite] = losses[finite].max() if finite.any() else 0.0
        y = (losses - losses.mean()) / (losses.std() or 1.0)
        if self._rungs:  # a mean per fold and rung: values at a rung are lower, not others
            groups = [(-1 if m.fold is None else m.fold, m.fidelity) for m in members]
            return x, y, _fold_design(groups)
        return x, y, _fold_design([m.fold for m in members])

    def _posterior(self, x: np.ndarray, y: np.ndarray, h: np.ndarray) -> None:
        k = _kernel(x, x, self._theta, self._is_mask)
        k[np.diag_indices_from(k)] += math.exp(self._theta[3])
        self._chol = linalg.cho_factor(k, lower=True)
        residual, _ = _generalised_least_squares(self._chol, y, h)
        self._alpha = linalg.cho_solve(self._chol, residual)
        self._best = float(np.min(k @ self._alpha - math.exp(self._theta[3]) * self._alpha))

    def mean_and_std(self, candidates: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The posterior mean (fold effects taken out) and standard deviation of candidates."""
        x, _ = plan_features(np.asarray(candidates, dtype=float), self._space)
        k_star = _kernel(x, self._x, self._theta, self._is_mask)
        mean = k_star @ self._alpha
        v = linalg.solve_triangular(self._chol[0], k_star.T, lower=True)
        var = math.exp(self._theta[2]) - np.sum(v * v, axis=0)
        return mean, np.sqrt(np.maximum(var, 1e-12))

    def scores(self, candidates: Sequence[np.ndarray]) -> np.ndarray:
        """Log expected improvement of each candidate over the best posterior mean evaluated
        (higher: more promising); zeros before the model is ready."""
        if not self._ready or len(candidates) == 0:
            return np.zeros(len(candidates))
        mean, std = self.mean_and_std(candidates)
        return _log_expected_improvement((self._best - mean) / std) + np.log(std)


def _capped(members: Sequence[Member], limit: int) -> list[Member]:
    """At most ``limit`` members, in number order: the best fifth, the most recent."""
    if len(members) <= limit:
        return list(members)
    n_best = limit // 5
    best = {m.number for m in sorted(members, key=lambda m: m.rank)[:n_best]}
    recent = [m for m in members if m.number not in best][-(limit - n_best) :]
    return sorted([m for m in members if m.number in best] + recent, key=lambda m: m.number)


def _fold_design(folds: Sequence[Any]) -> np.ndarray:
    """The mean's design matrix: one column per known fold (an unknown one shares the first),
    or per (fold, rung) of a budget-aware study."""
    known = sorted({f for f in folds if f is not None})
    if len(known) < 2:
        return np.ones((len(folds), 1))
    column = {f: i for i, f in enumerate(known)}
    h = np.zeros((len(folds), len(known)))
    for i, fold in enumerate(folds):
        h[i, column.get(fold, 0)] = 1.0
    return h


def _kernel(a: np.ndarray, b: np.ndarray, theta: np.ndarray, is_mask: np.ndarray) -> np.ndarray:
    """Matérn-5/2 with one lengthscale for mask columns and one for the others."""
    scale = np.where(is_mask, math.exp(theta[0]), math.exp(theta[1]))
    a, b = a / scale, b / scale
    d2 = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)
    r = np.sqrt(5.0 * d2)
    return math.exp(theta[2]) * (1.0 + r + r * r / 3.0) * np.exp(-r)


def _generalised_least_squares(chol, y: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, float]:
    """``y - Hβ`` for the GLS estimate of the fold means, and ``log det(Hᵀ K⁻¹ H)``."""
    k_inv_h = linalg.cho_solve(chol, h)
    a = h.T @ k_inv_h
    beta = np.linalg.solve(a, k_inv_h.T @ y)
    return y - h @ beta, float(np.linalg.slogdet(a)[1])


def _negative_log_likelihood(theta, x, y, h, is_mask) -> float:
    """The negative restricted log marginal likelihood (Rasmussen & Williams, eq. 2.45)."""
    k = _kernel(x, x, theta, is_mask)
    k[np.diag_indices_from(k)] += math.exp(theta[3]) + 1e-9
    try:
        chol = linalg.cho_factor(k, lower=True)
    except linalg.LinAlgError:
        return 1e10
    residual, logdet_a = _generalised_least_squares(chol, y, h)
    fit = residual @ linalg.cho_solve(chol, residual)
    return float(0.5 * fit + np.sum(np.log(np.diag(chol[0]))) + 0.5 * logdet_a)


def _fit(x: np.ndarray, y: np.ndarray, h: np.ndarray, is_mask: np.ndarray) -> np.ndarray:
    """Log hyperparameters by restricted maximum likelihood, from a fixed start."""
    result = optimize.minimize(
        _negative_log_likelihood,
        _START,
        args=(x, y, h, is_mask),
        method="L-BFGS-B",
        bounds=_BOUNDS,
        options={"maxiter": 50},
    )
    return np.asarray(result.x if np.all(np.isfinite(result.x)) else _START, dtype=float)


def _log_expected_improvement(z: np.ndarray) -> np.ndarray:
    """``log(φ(z) + zΦ(z))``, stable for very negative ``z``."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    ok = z > -6.0
    zz = z[ok]
    out[ok] = np.log(np.exp(-0.5 * zz * zz) / math.sqrt(2 * math.pi) + zz * special.ndtr(zz))
    tail = z[~ok]
    log_pdf = -0.5 * tail * tail - 0.5 * math.log(2 * math.pi)
    out[~ok] = log_pdf - 2.0 * np.log(-tail) + np.log1p(-3.0 / (tail * tail))
    return out
