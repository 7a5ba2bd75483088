"""Which plan a study recommends: the best evaluated plan when the study shows no noise, an
estimate robust to fold and seed noise when it does, for any sampler.

A fine-tuning trial is one noisy evaluation: one training seed, on one of the data folds
(arXiv:2508.15367, §III; the fold is the trial's ``fold`` user attr), and the same plan can score
0.14 on one run and 0.22 on the next. ``study.best_trial`` is therefore the luckiest evaluation
rather than the best plan. A noise-free objective (a benchmark function, a deterministic
replay) is the opposite case: there the best value observed *is* the best plan evaluated, and
smoothing it away can only lose. :func:`recommend` decides between the two from the study:

- ``"auto"`` (the default) fits a model (below), estimates the noise of one evaluation
  (:func:`estimate_noise`) and recommends

  - the best evaluated plan (rule ``"observed"``: the best mean value of a plan, values less
    their fold offsets) when the noise is negligible: its standard deviation at most
    :data:`NEGLIGIBLE_NOISE` (0.1) of the model's signal (the kernel scale, as a standard
    deviation);
  - else the plan with the best smoothed estimate (rule ``"smoothed"``).

- ``"smoothed"``: a Gaussian process (Optuna's own, :mod:`optuna._gp`, the model of
  :class:`~optuna.samplers.GPSampler`) is fitted to every COMPLETE trial with its noise level
  estimated from the data, and each evaluated plan is scored by the model's mean at it, which
  pools its own value with those of similar plans. Per-fold offsets are taken out (see
  :func:`recommend`). Only evaluated plans can be recommended, never an untried point. The
  recommendation carries the model's 95 % posterior interval of the plan's value.
- ``"max"``: the best single value, as ``study.best_trial`` (for comparison).

The noise estimate. The model's own fitted noise cannot tell noise from a landscape rougher
than its kernel (a step where a gene crosses the freezing threshold looks like noise to a
smooth model), so the evidence comes first from the study's (near) repeats: each trial and its
nearest neighbour under the fitted kernel, when their correlation is at least
:data:`NEAR_CORRELATION` (a plan evaluated twice, on the same or another fold, has 1). Their
squared difference, less what the kernel expects of the signal between them, estimates twice
the noise variance; the median over the pairs (robust to a pair across a step) is the estimate
when there are :data:`MIN_PAIRS` pairs, the model's fitted noise otherwise. On the benchmark
(``benchmarks/recommendation_noise.py``) the pairs put the noise at about 0 on the noise-free
landscapes and at 0.2-0.5 of the signal on the noisy ones once samplers refine around their
best plans; with few trials (random search, 25 trials) there are seldom pairs, and the model's
noise decides. The thresholds were chosen on the dev tasks (the landscapes and the
``digits-contrast`` table), never the test tables.

With fewer than :data:`MIN_TRIALS_FOR_MODEL` COMPLETE trials, or when the model cannot be
fitted, the rule is ``"mean"``: the mean value of each distinct plan (values less their fold
offsets), best mean first.

The rule does not depend on the sampler that made the study, so studies of different samplers
are compared by the same rule. The :class:`Recommendation` says which rule was applied, the
noise estimate and its source, and (``"smoothed"``) the interval; an estimate is never a
measurement, and the reports say so (``biotune-optuna best`` prints the plan's evaluations,
each trial's fold and value, apart from the estimate, and marks an estimate above every value
observed). :func:`record_recommendation` writes the recommendation into the study (``run``
does at its end; the study user attr ``recommended_trial`` shows it in optuna-dashboard);
``biotune-optuna best``, ``retrain``, ``baselines``, the study note and the dashboard use it.
Torch is imported only when a model is fitted. Cost: one model fit (about 0.1 s for 140
trials on one core), the same as the rule before.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.studies._optuna_bridge import gaussian_process
from biotune_optuna.studies._optuna_bridge import storage_of
from biotune_optuna.studies._optuna_bridge import study_id
from biotune_optuna.trials import FOLD_ATTR


__all__ = [
    "MAX_FIT_TRIALS",
    "MAX_MODEL_TRIALS",
    "MIN_PAIRS",
    "MIN_TRIALS_FOR_MODEL",
    "NEAR_CORRELATION",
    "NEGLIGIBLE_NOISE",
    "RECOMMENDATION_KEY",
    "RECOMMENDED_TRIAL_ATTR",
    "RULES",
    "NoiseEstimate",
    "Recommendation",
    "current_recommendation",
    "estimate_noise",
    "recommend",
    "recommended_trial",
    "record_recommendation",
    "stored_recommendation",
]

#: Study system attr holding the recorded recommendation (a dict: trial, estimate, rule,
#: n_trials).
RECOMMENDATION_KEY = "biotune:recommendation"
#: Study user attr with the recommended trial's number (optuna-dashboard shows user attrs).
RECOMMENDED_TRIAL_ATTR = "recommended_trial"
#: The rules :func:`recommend` accepts.
RULES = ("auto", "smoothed", "max")
#: Fewest COMPLETE trials the ``"smoothed"`` rule fits a model to.
MIN_TRIALS_FOR_MODEL = 5
#: Fewest trials per fold for fold offsets to be estimated.
MIN_TRIALS_PER_FOLD = 3
#: Most trials the model's hyperparameters are fitted to (evenly spaced in trial order).
MAX_FIT_TRIALS = 256
#: Most trials the fitted model is conditioned on (evenly spaced in trial order): every trial
#: of a study up to this size. Bounds the time (about a second for 1000 trials of 27 genes on
#: one core) and the memory of a model of a long study.
MAX_MODEL_TRIALS = 2000
#: The noise (a standard deviation) below which ``"auto"`` takes it for negligible, as a
#: share of the model's signal (its kernel scale, as a standard deviation).
NEGLIGIBLE_NOISE = 0.1
#: Fewest pairs of near repeats (see :func:`estimate_noise`) for the noise to be estimated
#: from them rather than from the model's fitted noise.
MIN_PAIRS = 5
#: The least kernel correlation of a trial with its nearest neighbour for the two to count
#: as a pair of near repeats.
NEAR_CORRELATION = 0.9


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """The plan a study recommends.

    Attributes:
        trial: The recommended trial (a COMPLETE one).
        estimate: The estimate of its value, in the objective's scale and direction: the
            model's mean (``"smoothed"``), the plan's mean value less fold offsets
            (``"observed"``, ``"mean"``) or its single value (``"max"``).
        rule: How it was chosen: ``"observed"`` (the noise is negligible: the best evaluated
            plan), ``"smoothed"`` (the model's estimate), ``"mean"`` (too few trials for a
            model, or a model that could not be fitted) or ``"max"`` (asked for).
        n_trials: The COMPLETE trials it was chosen from.
        noise: The estimated noise of one evaluation (a standard deviation, objective units),
            ``None`` when it could not be estimated.
        noise_source: Where ``noise`` comes from: ``"pairs"`` (repeat and near-repeat
            evaluations under the model's kernel), ``"repeats"`` (repeat evaluations of the
            same plans, without a model), ``"model"`` (the Gaussian process's fitted noise) or
            ``None``.
        interval: The model's 95 % posterior interval of the plan's value (``"smoothed"``
            only; fold offsets taken as known), else ``None``.
    """

    trial: FrozenTrial
    estimate: float
    rule: str
    n_trials: int
    noise: float | None = None
    noise_source: str | None = None
    interval: tuple[float, float] | None = None

    def to_record(self) -> dict[str, Any]:
        """What :func:`record_recommendation` stores: trial number, estimate, rule, trials,
        noise and its source, interval."""
        return {
            "trial": self.trial.number,
            "estimate": self.estimate,
            "rule": self.rule,
            "n_trials": self.n_trials,
            "noise": self.noise,
            "noise_source": self.noise_source,
            "interval": None if self.interval is None else list(self.interval),
        }


def recommend(
    trials_or_study: optuna.Study | Sequence[FrozenTrial],
    *,
    rule: str = "auto",
    direction: StudyDirection | str | None = None,
) -> Recommendation | None:
    """Choose the plan to recommend among the COMPLETE trials, by an estimate of its value.

    The model: a Gaussian process with a Matérn 5/2 kernel and a noise level estimated by
    maximum likelihood (:func:`optuna._gp.gp.fit_kernel_params`, Optuna's prior) is fitted to
    the trials' parameters (the search space they all share, normalised as
    :class:`~optuna.samplers.GPSampler` does) and their standardised values. Outlying bad
    values (below Tukey's lower fence, ``Q1 - 1.5 IQR``, of the fold-centred values) are
    raised to the fence before the fit: the recommendation is about the best plans, and a few
    disastrous ones (a plan that trains nothing scores 0) would otherwise set the model's
    noise level and length scales.

    Fold offsets: when every trial carries a ``fold`` user attr and at least two folds hold
    :data:`MIN_TRIALS_PER_FOLD` trials each, each fold gets its own offset, because the same
    plan scores differently on each fold: a plan evaluated only on the easier fold would
    otherwise look better for that alone. The offsets start as the folds' means (the model's
    hyperparameters are fitted to the values less those) and are then re-estimated by
    generalised least squares under the fitted model, so that a fold that happened to hold
    better plans is not taken for an easier one. Estimates are given for the average fold.

    The noise (:func:`noise_estimate`, see the module's docstring) decides between the rules
    of ``"auto"``: negligible noise recommends the best evaluated plan (``"observed"``: the
    best mean value of a plan, less fold offsets), else the plan with the best model mean
    (``"smoothed"``: the earliest of equal ones; identical parameters get one estimate).

    The model's hyperparameters are fitted to at most :data:`MAX_FIT_TRIALS` trials, evenly
    spaced in trial order; the model is then conditioned on every trial (at most
    :data:`MAX_MODEL_TRIALS`, evenly spaced) and asked for its mean at every trial.
    Deterministic: no random numbers, one thread.

    With fewer than :data:`MIN_TRIALS_FOR_MODEL` COMPLETE trials, or when the model cannot be
    fitted, each trial's estimate is the mean value of the trials with its parameters (values
    less their fold's mean, plus the average fold's), and the rule is ``"mean"``.

    Args:
        trials_or_study: A study, or trials (e.g. ``study.trials[:50]``: what the study would
            have recommended after its first 50 trials). Only COMPLETE trials are used.
        rule: ``"auto"`` (the default: ``"observed"`` or ``"smoothed"`` by the noise),
            ``"smoothed"`` (the model's mean whatever the noise, the rule before the noise
            was estimated) or ``"max"`` (the best single value).
        direction: The objective's direction; needed with trials, default the study's.

    Returns:
        The recommendation, or ``None`` without a COMPLETE trial.

    Raises:
        ValueError: For another rule, a multi-objective study, or trials without a direction.
    """
    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {', '.join(RULES)}, got {rule!r}.")
    complete, sign = _complete_trials(trials_or_study, direction)
    if not complete:
        return None
    values = sign * np.array([t.value for t in complete], dtype=float)
    if rule == "max":
        best = int(np.argmax(values))  # the first of equal values: the earliest trial
        return Recommendation(complete[best], float(complete[best].value), "max", len(complete))
    values = _finite(values)
    folds = _fold_index(complete)
    model = None
    if len(complete) >= MIN_TRIALS_FOR_MODEL:
        try:
            model = _fit_model(complete, values, folds)
        except Exception as exc:  # a model that cannot be fitted must not stop a run
            optuna.logging.get_logger(__name__).warning(
                f"recommendation: the model could not be fitted ({exc}); using plan means"
            )
    if model is None:
        return _by_plan_means(complete, values, folds, sign, "mean")
    noise = estimate_noise(complete, model.adjusted, model)
    if rule == "auto" and noise.negligible:
        return _by_plan_means(complete, model.adjusted, None, sign, "observed", noise)
    best = int(np.argmax(model.mean))
    low, high = model.interval(best)
    interval = (sign * low, sign * high) if sign > 0 else (sign * high, sign * low)
    return Recommendation(
        complete[best], sign * float(model.mean[best]), "smoothed", len(complete),
        noise.sd, noise.source, interval,
    )  # fmt: skip


def _by_plan_means(
    trials: Sequence[FrozenTrial],
    values: np.ndarray,
    folds: np.ndarray | None,
    sign: float,
    rule: str,
    noise: NoiseEstimate | None = None,
) -> Recommendation:
    """The plan with the best mean value (less fold means, if ``folds``), earliest first."""
    estimates = _mean_estimates(trials, values, folds)
    if noise is None:
        noise = estimate_noise(trials, _fold_adjusted(values, folds), None)
    best = int(np.argmax(estimates))
    return Recommendation(
        trials[best], sign * float(estimates[best]), rule, len(trials), noise.sd, noise.source
    )


def record_recommendation(study: optuna.Study, *, rule: str = "auto") -> Recommendation | None:
    """Compute the study's recommendation and record it in the study.

    It is stored as the study system attr :data:`RECOMMENDATION_KEY` (trial number, estimate,
    rule, number of COMPLETE trials) and the study user attr :data:`RECOMMENDED_TRIAL_ATTR`
    (shown by optuna-dashboard). Nothing is written without a COMPLETE trial.

    Args:
        study: The study.
        rule: See :func:`recommend`.

    Returns:
        The recommendation, or ``None`` without a COMPLETE trial.
    """
    recommendation = recommend(study, rule=rule)
    if recommendation is None:
        return None
    storage_of(study).set_study_system_attr(
        study_id(study), RECOMMENDATION_KEY, recommendation.to_record()
    )
    study.set_user_attr(RECOMMENDED_TRIAL_ATTR, recommendation.trial.number)
    return recommendation


def stored_recommendation(study: optuna.Study) -> Recommendation | None:
    """The recommendation recorded in the study (:func:`record_recommendation`), if it is
    still current: ``None`` if none was recorded or a trial has completed since. A record
    written before the noise was estimated reads with ``noise``, ``interval`` ``None``."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    record = storage_of(study).get_study_system_attrs(study_id(study)).get(RECOMMENDATION_KEY)
    if not isinstance(record, dict) or record.get("n_trials") != len(complete):
        return None
    trial = next((t for t in complete if t.number == record.get("trial")), None)
    estimate = record.get("estimate")
    if trial is None or not isinstance(estimate, (int, float)):
        return None
    noise, interval = record.get("noise"), record.get("interval")
    return Recommendation(
        trial,
        float(estimate),
        str(record.get("rule")),
        len(complete),
        float(noise) if isinstance(noise, (int, float)) else None,
        record.get("noise_source") if isinstance(record.get("noise_source"), str) else None,
        (float(interval[0]), float(interval[1]))
        if isinstance(interval, list) and len(interval) == 2
        else None,
    )


def current_recommendation(study: optuna.Study) -> Recommendation | None:
    """The study's recommendation for its current trials, without writing anything.

    The recorded one (:func:`stored_recommendation`) if no trial has completed since it was
    recorded, else a new one (:func:`recommend`, rule ``"auto"``).

    Returns:
        The recommendation, or ``None`` without a COMPLETE trial.
    """
    return stored_recommendation(study) or recommend(study)


def recommended_trial(study: optuna.Study) -> FrozenTrial | None:
    """The trial the study recommends now (:func:`current_recommendation`), or ``None``."""
    recommendation = current_recommendation(study)
    return recommendation.trial if recommendation is not None else None


def _complete_trials(
    trials_or_study: optuna.Study | Sequence[FrozenTrial],
    direction: StudyDirection | str | None,
) -> tuple[list[FrozenTrial], float]:
    """The COMPLETE trials in number order, and the sign that makes larger values better."""
    if isinstance(trials_or_study, optuna.Study):
        if len(trials_or_study.directions) != 1:
            raise ValueError("`recommend` needs a single-objective study.")
        direction = trials_or_study.direction if direction is None else direction
        trials: Sequence[FrozenTrial] = trials_or_study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,)
        )
    elif direction is None:
        raise ValueError("`direction` is needed when `recommend` is given trials.")
    else:
        trials = trials_or_study
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.number,
    )
    return complete, -1.0 if _direction(direction) == StudyDirection.MINIMIZE else 1.0


def _direction(direction: StudyDirection | str) -> StudyDirection:
    if isinstance(direction, StudyDirection):
        return direction
    names = {"maximize": StudyDirection.MAXIMIZE, "minimize": StudyDirection.MINIMIZE}
    if direction not in names:
        raise ValueError(f"`direction` must be 'maximize' or 'minimize', got {direction!r}.")
    return names[direction]


def _finite(values: np.ndarray) -> np.ndarray:
    """Infinite values clipped to the finite range (all infinite: their signs)."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    if not finite.any():
        return np.sign(values)
    return np.clip(values, values[finite].min(), values[finite].max())


def _fold_index(trials: Sequence[FrozenTrial]) -> np.ndarray | None:
    """Each trial's fold as 0..k-1, if fold offsets apply (see :func:`recommend`), else None."""
    folds = [t.user_attrs.get(FOLD_ATTR) for t in trials]
    if any(f is None or isinstance(f, (dict, list)) for f in folds):
        return None
    names = sorted({str(f) for f in folds})
    index = np.array([names.index(str(f)) for f in folds])
    counts = np.bincount(index)
    if len(names) < 2 or counts.min() < MIN_TRIALS_PER_FOLD:
        return None
    return index


def _fold_means(values: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """The mean value of each fold (``folds``: each trial's fold as 0..k-1)."""
    return np.bincount(folds, weights=values) / np.bincount(folds)


def _fold_adjusted(values: np.ndarray, folds: np.ndarray | None) -> np.ndarray:
    """Values less their fold's mean, plus the average fold's (unchanged without folds)."""
    if folds is None:
        return values
    means = _fold_means(values, folds)
    return values - means[folds] + means.mean()


def _mean_estimates(
    trials: Sequence[FrozenTrial], values: np.ndarray, folds: np.ndarray | None
) -> np.ndarray:
    """Each trial's estimate is the mean of the trials with its parameters (values less their
    fold's mean, plus the average fold's, if ``folds``)."""
    adjusted = _fold_adjusted(values, folds)
    groups: dict[str, list[int]] = {}
    for i, trial in enumerate(trials):
        groups.setdefault(_plan_key(trial), []).append(i)
    estimates = np.empty_like(values)
    for members in groups.values():
        estimates[members] = adjusted[members].mean()
    return estimates


def _plan_key(trial: FrozenTrial) -> str:
    """What identifies a trial's plan: its parameters."""
    return repr(sorted(trial.params.items()))


def _evenly_spaced(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, evenly spaced, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def _floor(values: np.ndarray) -> np.ndarray:
    """Values below Tukey's lower fence (``Q1 - 1.5 IQR``) raised to it."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    return np.maximum(values, q1 - 1.5 * (q3 - q1))


@dataclasses.dataclass(frozen=True)
class NoiseEstimate:
    """How noisy one evaluation of the study's objective is (see the module's docstring).

    Attributes:
        sd: The noise's standard deviation in the objective's units, ``None`` if unknown.
        signal_sd: The spread of the values the model explains (its kernel scale, as a
            standard deviation; without a model, the values' standard deviation).
        source: ``"pairs"``, ``"repeats"``, ``"model"`` or ``None`` (unknown).
        pairs: The pairs (or, without a model, the degrees of freedom of the repeats) the
            estimate had (0: none).
    """

    sd: float | None
    signal_sd: float | None
    source: str | None
    pairs: int

    @property
    def negligible(self) -> bool:
        """Whether the noise is below :data:`NEGLIGIBLE_NOISE` of the signal."""
        if self.sd is None or not self.signal_sd:
            return False
        return self.sd <= NEGLIGIBLE_NOISE * self.signal_sd


def estimate_noise(
    trials: Sequence[FrozenTrial], adjusted: np.ndarray, model: _Model | None
) -> NoiseEstimate:
    """The noise of one evaluation, from pairs of (near) repeats when there are enough, else
    the model's fitted noise (see the module's docstring).

    A pair is a trial and its nearest neighbour under the model's kernel, kept if their
    correlation is at least :data:`NEAR_CORRELATION` (a plan evaluated twice: 1). For a pair
    ``(i, j)`` with correlation ``rho``, ``(y_i - y_j)**2 / 2 - signal_var * (1 - rho)`` has
    the noise variance as its mean; the median over pairs, divided by the median of a
    chi-square with one degree of freedom (0.455), estimates it robustly (a pair across a
    step of the landscape does not count). With :data:`MIN_PAIRS` pairs or more it is the
    estimate (source ``"pairs"``), else the model's noise (``"model"``). Without a model,
    the plans evaluated more than once give the estimate (``"repeats"``) when they have
    :data:`MIN_PAIRS` degrees of freedom.

    Args:
        trials: The COMPLETE trials.
        adjusted: Their values, larger better, less their fold offsets.
        model: The fitted model, if any.
    """
    if model is None:
        groups: dict[str, list[int]] = {}
        for i, trial in enumerate(trials):
            groups.setdefault(_plan_key(trial), []).append(i)
        repeats = [m for m in groups.values() if len(m) > 1]
        df = sum(len(m) - 1 for m in repeats)
        signal = float(np.std(adjusted))
        if df < MIN_PAIRS:
            return NoiseEstimate(None, signal, None, df)
        squares = sum(float(np.sum((adjusted[m] - adjusted[m].mean()) ** 2)) for m in repeats)
        return NoiseEstimate(float(np.sqrt(squares / df)), signal, "repeats", df)
    first, second, rho = model.pairs
    near = rho >= NEAR_CORRELATION
    if near.sum() < MIN_PAIRS:
        return NoiseEstimate(model.noise_sd, model.signal_sd, "model", int(near.sum()))
    gaps = (adjusted[first[near]] - adjusted[second[near]]) ** 2 / 2
    excess = gaps - model.signal_sd**2 * (1.0 - rho[near])
    variance = max(float(np.median(excess)), 0.0) / 0.454936
    return NoiseEstimate(variance**0.5, model.signal_sd, "pairs", int(near.sum()))


@dataclasses.dataclass(frozen=True)
class _Model:
    """The fitted model of a study's trials, in the objective's units (larger better).

    Attributes:
        mean: The model's mean at each trial, for the average fold.
        adjusted: Each trial's value less its fold's offset (for the average fold).
        noise_sd: The model's noise level, as a standard deviation.
        signal_sd: The model's kernel scale, as a standard deviation.
        posterior_sd: ``posterior_sd(i)``: the posterior sd of the value of trial ``i``'s plan.
        pairs: Each trial the model was conditioned on, its nearest neighbour under the
            kernel and their correlation (three arrays; each unordered pair once).
    """

    mean: np.ndarray
    adjusted: np.ndarray
    noise_sd: float
    signal_sd: float
    posterior_sd: Callable[[int], float]
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]

    def interval(self, i: int) -> tuple[float, float]:
        """The 95 % posterior interval of trial ``i``'s plan's value."""
        half = 1.959964 * self.posterior_sd(i)
        return float(self.mean[i] - half), float(self.mean[i] + half)


def _fit_model(
    trials: Sequence[FrozenTrial], values: np.ndarray, folds: np.ndarray | None
) -> _Model | None:
    """The model of the trials (see :func:`recommend`); ``None`` without shared parameters."""
    space = optuna.search_space.intersection_search_space(list(trials))
    if not space:
        return None
    import torch

    optuna_gp = gaussian_process()
    internal = optuna_gp.search_space.SearchSpace(space)
    X = internal.get_normalized_params(list(trials))
    index = folds if folds is not None else np.zeros(len(values), dtype=int)
    start = _fold_means(values, index)
    scale = max(float(np.std(_floor(values - start[index]))), 1e-12)
    Y = _floor(values - start[index]) / scale
    fit = _evenly_spaced(len(Y), MAX_FIT_TRIALS)
    used = _evenly_spaced(len(Y), MAX_MODEL_TRIALS)
    unique, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    with torch.device("cpu"):
        model = optuna_gp.gp.fit_kernel_params(
            X=X[fit],
            Y=Y[fit],
            is_categorical=internal.is_categorical,
            log_prior=optuna_gp.prior.default_log_prior,
            minimum_noise=optuna_gp.prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
        )
        mean, offsets, sd, nearest = _conditioned_mean(
            model, X[used], Y[used], index[used], unique
        )
    present = np.unique(index[used])
    offset = start + scale * offsets
    level = float(np.mean(offset[present]))  # the average fold's
    return _Model(
        mean=(level + scale * mean)[inverse],
        adjusted=values - offset[index] + level,
        noise_sd=scale * float(model.noise_var) ** 0.5,
        signal_sd=scale * float(model.kernel_scale) ** 0.5,
        posterior_sd=lambda i: scale * sd(int(inverse[i])),
        pairs=_unordered(used, used[nearest[0]], nearest[1]),
    )


def _unordered(
    first: np.ndarray, second: np.ndarray, rho: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs ``(first[k], second[k])`` with their ``rho[k]``, each unordered pair once."""
    low, high = np.minimum(first, second), np.maximum(first, second)
    _, keep = np.unique(np.stack([low, high], axis=1), axis=0, return_index=True)
    return low[keep], high[keep], rho[keep]


def _conditioned_mean(
    model: Any, X: np.ndarray, Y: np.ndarray, folds: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[int], float], tuple[np.ndarray, np.ndarray]]:
    """The posterior mean of ``f`` at the points ``at`` for ``Y = F·b + f(X) + noise`` (``F``:
    the fold indicators), under ``model``'s kernel and noise (Optuna's ``GPRegressor``), with
    the fold offsets ``b`` by generalised least squares; ``b`` (zero for a fold absent from
    ``folds``); ``sd(j)``, the posterior sd of ``f`` at ``at[j]`` (``b`` taken as known); and
    each point's nearest neighbour in ``X`` under the kernel, with their correlation."""
    import torch

    chunk = 256  # rows of the kernel at once: bounds the memory of the squared distances
    with gaussian_process().limit_threads_in_optimization(), torch.no_grad():
        X_, at_ = torch.from_numpy(X), torch.from_numpy(at)
        cov = torch.cat([model.kernel(X_[i : i + chunk], X_) for i in range(0, len(X), chunk)])
        nearest = _nearest(cov / model.kernel_scale)
        cov.diagonal().add_(model.noise_var)
        chol = torch.linalg.cholesky(cov)
        F = torch.nn.functional.one_hot(torch.from_numpy(folds)).to(torch.float64)
        kept = F.sum(dim=0) > 0
        y = torch.from_numpy(Y).unsqueeze(-1)
        solved = torch.cholesky_solve(torch.cat([y, F[:, kept]], dim=1), chol)
        b = torch.zeros(F.shape[1], 1, dtype=torch.float64)
        Fk = F[:, kept]
        b[kept] = torch.linalg.solve(Fk.T @ solved[:, 1:], Fk.T @ solved[:, :1])
        alpha = solved[:, :1] - solved[:, 1:] @ b[kept]  # inv(C) @ (y - F @ b)
        mean = torch.cat(
            [model.kernel(at_[i : i + chunk], X_) @ alpha for i in range(0, len(at), chunk)]
        )

    def sd(j: int) -> float:
        with torch.no_grad():
            k = model.kernel(at_[j : j + 1], X_).T
            v = torch.linalg.solve_triangular(chol, k, upper=False)
            return float(torch.clamp(model.kernel_scale - v.square().sum(), min=0.0)) ** 0.5

    return mean.squeeze(-1).numpy(), b.squeeze(-1).numpy(), sd, nearest


def _nearest(correlation: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most correlated other column (a torch matrix, at least 2 rows), and the
    correlation."""
    masked = correlation.clone()
    masked.diagonal().fill_(-float("inf"))
    rho, index = masked.max(dim=1)
    return index.numpy(), rho.numpy()
