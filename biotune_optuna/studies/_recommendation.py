"""Which plan a study recommends: an estimate robust to fold and seed noise, for any sampler.

A fine-tuning trial is one noisy evaluation: one training seed, on one of the data folds
(arXiv:2508.15367, §III; the fold is the trial's ``fold`` user attr), and the same plan can score
0.14 on one run and 0.22 on the next. ``study.best_trial`` is therefore the luckiest evaluation
rather than the best plan. :func:`recommend` picks the plan by an estimate of its value instead:

- ``"smoothed"`` (the default): a Gaussian process (Optuna's own, :mod:`optuna._gp`, the model of
  :class:`~optuna.samplers.GPSampler`) is fitted to every COMPLETE trial with its noise level
  estimated from the data, and each evaluated plan is scored by the model's mean at it, which
  pools its own value with those of similar plans. Per-fold offsets are taken out (see
  :func:`recommend`). Only evaluated plans can be recommended, never an untried point.
- ``"max"``: the best single value, as ``study.best_trial`` (for comparison).

With fewer than :data:`MIN_TRIALS_FOR_MODEL` COMPLETE trials, or when the model cannot be
fitted, ``"smoothed"`` falls back to ``"mean"``: the mean value of each distinct plan (values
less their fold offsets), best mean first.

The rule does not depend on the sampler that made the study, so studies of different samplers
are compared by the same rule. :func:`record_recommendation` writes the recommendation into the
study (``run`` does at its end; the study user attr ``recommended_trial`` shows it in
optuna-dashboard); ``biotune-optuna best``, ``retrain``, ``baselines``, the study note and the
dashboard use it. Torch is imported only when a model is fitted.
"""

from __future__ import annotations

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
    "MIN_TRIALS_FOR_MODEL",
    "RECOMMENDATION_KEY",
    "RECOMMENDED_TRIAL_ATTR",
    "RULES",
    "Recommendation",
    "current_recommendation",
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
RULES = ("smoothed", "max")
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


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """The plan a study recommends.

    Attributes:
        trial: The recommended trial (a COMPLETE one).
        estimate: The estimate of its value, in the objective's scale and direction.
        rule: How it was chosen: ``"smoothed"``, ``"mean"`` (the fallback of ``"smoothed"``)
            or ``"max"``.
        n_trials: The COMPLETE trials it was chosen from.
    """

    trial: FrozenTrial
    estimate: float
    rule: str
    n_trials: int

    def to_record(self) -> dict[str, Any]:
        """What :func:`record_recommendation` stores: trial number, estimate, rule, trials."""
        return {
            "trial": self.trial.number,
            "estimate": self.estimate,
            "rule": self.rule,
            "n_trials": self.n_trials,
        }


def recommend(
    trials_or_study: optuna.Study | Sequence[FrozenTrial],
    *,
    rule: str = "smoothed",
    direction: StudyDirection | str | None = None,
) -> Recommendation | None:
    """Choose the plan to recommend among the COMPLETE trials, by an estimate of its value.

    ``"smoothed"``: a Gaussian process with a Matérn 5/2 kernel and a noise level estimated by
    maximum likelihood (:func:`optuna._gp.gp.fit_kernel_params`, Optuna's prior) is fitted to the
    trials' parameters (the search space they all share, normalised as
    :class:`~optuna.samplers.GPSampler` does) and their standardised values. Each trial's
    estimate is the model's mean at its parameters; the trial with the best estimate is
    recommended, the earliest of equal ones (identical parameters get one estimate). Outlying
    bad values (below Tukey's lower fence, ``Q1 - 1.5 IQR``, of the fold-centred values) are
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
        rule: ``"smoothed"`` or ``"max"`` (the best single value).
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
    estimates, used = None, "smoothed"
    if len(complete) >= MIN_TRIALS_FOR_MODEL:
        try:
            estimates = _smoothed_estimates(complete, values, folds)
        except Exception as exc:  # a model that cannot be fitted must not stop a run
            optuna.logging.get_logger(__name__).warning(
                f"recommendation: the model could not be fitted ({exc}); using plan means"
            )
    if estimates is None or not np.all(np.isfinite(estimates)):
        estimates, used = _mean_estimates(complete, values, folds), "mean"
    best = int(np.argmax(estimates))
    return Recommendation(complete[best], sign * float(estimates[best]), used, len(complete))


def record_recommendation(study: optuna.Study, *, rule: str = "smoothed") -> Recommendation | None:
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
    still current: ``None`` if none was recorded or a trial has completed since."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    record = storage_of(study).get_study_system_attrs(study_id(study)).get(RECOMMENDATION_KEY)
    if not isinstance(record, dict) or record.get("n_trials") != len(complete):
        return None
    trial = next((t for t in complete if t.number == record.get("trial")), None)
    estimate = record.get("estimate")
    if trial is None or not isinstance(estimate, (int, float)):
        return None
    return Recommendation(trial, float(estimate), str(record.get("rule")), len(complete))


def current_recommendation(study: optuna.Study) -> Recommendation | None:
    """The study's recommendation for its current trials, without writing anything.

    The recorded one (:func:`stored_recommendation`) if no trial has completed since it was
    recorded, else a new one (:func:`recommend`, rule ``"smoothed"``).

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


def _mean_estimates(
    trials: Sequence[FrozenTrial], values: np.ndarray, folds: np.ndarray | None
) -> np.ndarray:
    """The fallback: each trial's estimate is the mean of the trials with its parameters (values
    less their fold's mean, plus the average fold's)."""
    index = folds if folds is not None else np.zeros(len(values), dtype=int)
    means = _fold_means(values, index)
    adjusted = values - means[index] + means.mean()
    groups: dict[str, list[int]] = {}
    for i, trial in enumerate(trials):
        groups.setdefault(repr(sorted(trial.params.items())), []).append(i)
    estimates = np.empty_like(values)
    for members in groups.values():
        estimates[members] = adjusted[members].mean()
    return estimates


def _evenly_spaced(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``range(n)``, evenly spaced, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def _floor(values: np.ndarray) -> np.ndarray:
    """Values below Tukey's lower fence (``Q1 - 1.5 IQR``) raised to it."""
    q1, q3 = np.quantile(values, [0.25, 0.75])
    return np.maximum(values, q1 - 1.5 * (q3 - q1))


def _smoothed_estimates(
    trials: Sequence[FrozenTrial], values: np.ndarray, folds: np.ndarray | None
) -> np.ndarray | None:
    """The model's mean at every trial (see :func:`recommend`); ``None`` without parameters."""
    space = optuna.search_space.intersection_search_space(list(trials))
    if not space:
        return None
    import torch

    optuna_gp = gaussian_process()
    internal = optuna_gp.search_space.SearchSpace(space)
    X = internal.get_normalized_params(list(trials))
    index = folds if folds is not None else np.zeros(len(values), dtype=int)
    start = _fold_means(values, index)
    centred = values - start[index]
    centred = _floor(centred)
    scale = max(float(np.std(centred)), 1e-12)
    Y = centred / scale
    fit = _evenly_spaced(len(Y), MAX_FIT_TRIALS)
    used = _evenly_spaced(len(Y), MAX_MODEL_TRIALS)
    unique, inverse = np.unique(X, axis=0, return_inverse=True)
    with torch.device("cpu"):
        model = optuna_gp.gp.fit_kernel_params(
            X=X[fit],
            Y=Y[fit],
            is_categorical=internal.is_categorical,
            log_prior=optuna_gp.prior.default_log_prior,
            minimum_noise=optuna_gp.prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
        )
        mean, offsets = _conditioned_mean(model, X[used], Y[used], index[used], unique)
    present = np.unique(index[used])
    level = float(np.mean(start[present] + scale * offsets[present]))  # the average fold's
    return (level + scale * mean)[inverse.reshape(-1)]


def _conditioned_mean(
    model: Any, X: np.ndarray, Y: np.ndarray, folds: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The posterior mean of ``f`` at the points ``at`` for ``Y = F·b + f(X) + noise`` (``F``:
    the fold indicators), under ``model``'s kernel and noise (Optuna's ``GPRegressor``), with
    the fold offsets ``b`` by generalised least squares; and ``b`` (zero for a fold absent
    from ``folds``)."""
    import torch

    chunk = 256  # rows of the kernel at once: bounds the memory of the squared distances
    with gaussian_process().limit_threads_in_optimization(), torch.no_grad():
        X_, at_ = torch.from_numpy(X), torch.from_numpy(at)
        cov = torch.cat([model.kernel(X_[i : i + chunk], X_) for i in range(0, len(X), chunk)])
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
    return mean.squeeze(-1).numpy(), b.squeeze(-1).numpy()
