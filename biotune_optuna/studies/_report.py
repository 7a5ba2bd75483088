"""Read studies back: progress, the best plan, and samplers compared at equal budgets."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.trial import TrialState

from biotune_optuna.options import format_setting
from biotune_optuna.plan import block_names
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import table_items
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import Recommendation
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import FROZEN_BLOCKS_ATTR
from biotune_optuna.trials import GENERATION_ATTR
from biotune_optuna.trials import rung_record
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR


__all__ = [
    "FINETUNE_METRIC",
    "SYNTHETIC_METRIC",
    "best_plan_rows",
    "best_so_far",
    "compare_figures",
    "compare_rows",
    "estimate_label",
    "estimate_words",
    "evaluations_list",
    "evaluations_words",
    "format_mean_std",
    "format_share",
    "frozen_head_warning",
    "markdown_table",
    "metric_name",
    "name_metric",
    "plan_evaluations",
    "plan_trials",
    "status_summary",
    "strategy_markdown",
    "trial_plan",
]


#: What a fine-tuning study's value is: the mean over its seeds of the best epoch's macro
#: accuracy on the validation split of the trial's fold (``FineTuneObjective``).
FINETUNE_METRIC = "validation macro accuracy"
#: What a synthetic study's value is (``SyntheticFineTuning``).
SYNTHETIC_METRIC = "synthetic fitness"


def metric_name(study: optuna.Study) -> str:
    """What the study's value measures: its metric name (``study.set_metric_names``), else
    :data:`FINETUNE_METRIC` or :data:`SYNTHETIC_METRIC` by its ``objective`` user attr, else
    ``"value"`` (a study of another objective)."""
    names = study.metric_names
    if names:
        return str(names[0])
    objective = study.user_attrs.get("objective")
    if objective is None:
        return "value"
    return SYNTHETIC_METRIC if str(objective).startswith("synthetic") else FINETUNE_METRIC


def name_metric(study: optuna.Study) -> None:
    """Name the study's value (:func:`metric_name`) where optuna-dashboard shows it, its axes
    say "validation macro accuracy", not "Objective 0"; once, for a study with an objective.

    ``study.trials_dataframe()`` then names the value's column ``value_<metric>``.
    """
    if study.metric_names is None and "objective" in study.user_attrs:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric_name(study)])


def plan_evaluations(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> list[float]:
    """The values of every COMPLETE trial with exactly ``trial``'s parameters: each evaluation
    of its plan (one seed set on one fold each), the trial's own included."""
    return [float(t.value) for t in plan_trials(study, trial)]


def plan_trials(
    study: optuna.Study, trial: optuna.trial.FrozenTrial
) -> list[optuna.trial.FrozenTrial]:
    """Every COMPLETE trial with exactly ``trial``'s parameters (with a value), in number
    order: each evaluation of its plan."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.params == trial.params and t.value is not None
    ]


def estimate_label(rule: str) -> str:
    """What to call a recommendation's estimate: the model's under ``"smoothed"``."""
    return "model estimate" if rule == "smoothed" else "estimate"


def estimate_words(recommendation: Recommendation, best_observed: float | None) -> str:
    """What a recommendation's estimate is, never a measurement: the number, its 95 %
    interval (the model's), how it was made, the noise estimated from the study, and a
    warning when it lies above every value observed in the study (``best_observed``, the best
    single value in the objective's direction): then it is the model's extrapolation."""
    rule, number = recommendation.rule, f"{recommendation.estimate:.4f}"
    noise = _noise_words(recommendation)
    if rule == "smoothed":
        low, high = recommendation.interval or (float("nan"), float("nan"))
        words = (
            f"{number}, 95 % posterior interval [{low:.4f}, {high:.4f}]: a Gaussian process's "
            f"estimate from {recommendation.n_trials} complete trials (fold offsets and noise "
            f"taken out; {noise}), not a measurement"
        )
    elif rule == "observed":
        words = (
            f"{number}: the best evaluated plan's own value (its evaluations' mean, fold offsets "
            f"taken out): the noise is negligible ({noise})"
        )
    elif rule == "mean":
        words = (
            f"{number}: the mean of its evaluations less their folds' offsets; too few trials "
            "for a model"
        )
    else:
        return f"{number}: its best single value"
    if best_observed is not None and _above(recommendation, best_observed):
        words += (
            f" - ABOVE EVERY OBSERVED VALUE (best {best_observed:.4f}): the model's "
            "extrapolation, not the plan's expected value"
        )
    return words


def _noise_words(recommendation: Recommendation) -> str:
    """The noise estimate and its source, in words."""
    if recommendation.noise is None:
        return "noise unknown"
    source = {
        "pairs": "from repeat and near-repeat evaluations",
        "repeats": "from repeat evaluations",
        "model": "the model's fitted noise",
    }.get(str(recommendation.noise_source), "")
    return f"noise sd {recommendation.noise:.4f} per evaluation, {source}".rstrip(", ")


def _above(recommendation: Recommendation, best_observed: float) -> bool:
    """Whether the estimate lies beyond every observed value, in the objective's direction
    (the best single value, ``best_observed``, is the outermost)."""
    trial_value = recommendation.trial.value
    maximise = trial_value is None or best_observed >= trial_value
    gap = recommendation.estimate - best_observed
    return bool(gap > 1e-12 if maximise else gap < -1e-12)


def evaluations_words(values: Sequence[float]) -> str:
    """``"its one evaluation"`` or ``"mean of its 3 evaluations"``."""
    return "its one evaluation" if len(values) == 1 else f"mean of its {len(values)} evaluations"


def evaluations_list(trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    """Each evaluation of a plan: ``"#3 (fold 0) 0.7512, #9 (fold 1) 0.7388"``."""
    return ", ".join(
        f"#{t.number}"
        + (f" (fold {t.user_attrs[FOLD_ATTR]})" if FOLD_ATTR in t.user_attrs else "")
        + f" {float(t.value):.4f}"  # type: ignore[arg-type]
        for t in trials
    )


def best_so_far(study: optuna.Study) -> np.ndarray:
    """Best value after each trial, in trial-number order (NaN until the first COMPLETE).

    FAILED and PRUNED trials count as spent budget that found nothing better.
    """
    best, curve = -np.inf, []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = max(best, trial.value)
        curve.append(best)
    out = np.asarray(curve, dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def status_summary(study: optuna.Study) -> dict[str, Any]:
    """Trials per state, the current generation, the metric, the best value observed so far,
    the recommended trial (:func:`~biotune_optuna.studies._recommendation.current_recommendation`:
    robust
    to fold and seed noise, unlike the best value) with its observed value (the mean of its
    plan's evaluations) and the model's estimate, and the budget."""
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    generations = [
        t.user_attrs[GENERATION_ATTR]
        for t in trials
        if isinstance(t.user_attrs.get(GENERATION_ATTR), int)
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    recommendation = current_recommendation(study) if complete else None
    evaluations = plan_trials(study, recommendation.trial) if recommendation else []
    observed = [float(t.value) for t in evaluations]  # type: ignore[arg-type]
    best_value = study.best_value if complete else None  # in the study's direction
    return {
        "study": study.study_name,
        "sampler": study.user_attrs.get("sampler", type(study.sampler).__name__),
        "budget": study.user_attrs.get("budget"),
        "states": {k: v for k, v in states.items() if v},
        "rungs": rung_counts(trials),
        "trials": len(trials),
        "generation": max(generations) if generations else None,
        "metric": metric_name(study),
        "direction": study.direction.name.lower(),
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "recommended_trial": recommendation.trial.number if recommendation else None,
        "recommended_estimate": recommendation.estimate if recommendation else None,
        "recommended_rule": recommendation.rule if recommendation else None,
        "recommended_n_trials": recommendation.n_trials if recommendation else None,
        "recommended_observed": float(np.mean(observed)) if observed else None,
        "recommended_evaluations": observed,
        "recommended_evaluations_list": evaluations_list(evaluations),
        "recommended_estimate_words": estimate_words(recommendation, best_value)
        if recommendation
        else None,
    }


def rung_counts(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, int] | None:
    """In a budget-aware study (``[pruner] name = "rungs"``): how many trials continued a
    paused plan, and how many plans are paused at a rung now (``None`` in other studies)."""
    records = {t.number: rung_record(t) for t in trials}
    if not any(records.values()):
        return None
    continued = {r.source for r in records.values() if r is not None and r.source is not None}
    paused = sum(
        1
        for t in trials
        if t.state == TrialState.PRUNED
        and t.number not in continued
        and records[t.number] is not None
        and t.last_step == records[t.number].until  # type: ignore[union-attr]
    )
    return {"continuations": len(continued), "paused": paused}


def trial_plan(trial: optuna.trial.FrozenTrial, base_lr: float = 1e-3) -> FineTunePlan:
    """The plan a trial's genes decode to (its blocks named by its parameters)."""
    return FineTunePlan.from_params(trial.params, block_names(trial.params), base_lr=base_lr)


def frozen_head_warning(trial: optuna.trial.FrozenTrial, base_lr: float = 1e-3) -> str | None:
    """A warning when a BioTune trial's plan left its last block, the one with the newly
    initialised classifier, frozen; ``None`` otherwise.

    The paper's genes allow it (arXiv:2508.15367: every block, the head's included, has an
    importance gene), but such a plan trains the blocks before a head that keeps its
    random weights. ``[protocol] always_train_head = true`` trains it whatever the genes say.
    What was trained is read from the trial's ``frozen_blocks`` (after its training), else
    decoded from its genes.
    """
    if THRESHOLD_PARAM not in trial.params:
        return None
    plan = trial_plan(trial, base_lr)
    head = plan.blocks[-1]
    frozen = _frozen_blocks(trial)
    if head not in (plan.frozen if frozen is None else frozen):
        return None
    return (
        f"warning: this plan freezes `{head}`, the block with the new classifier: it keeps its "
        "random initialisation, and the blocks before it learn to fit that fixed classifier; "
        "`[protocol] always_train_head = true` trains it whatever the genes say"
    )


def _frozen_blocks(trial: optuna.trial.FrozenTrial) -> list[str] | None:
    """The trial's ``frozen_blocks`` user attr as names (one line with no-break spaces; older
    studies: a list); ``None`` when the trial has none."""
    frozen = trial.user_attrs.get(FROZEN_BLOCKS_ATTR)
    return None if frozen is None else table_items(frozen)


def best_plan_rows(trial: optuna.trial.FrozenTrial, base_lr: float = 1e-3) -> list[list[str]]:
    """The decoded plan of a trial: block, importance, decision, learning-rate multiplier, lr."""
    return [
        [
            row.block,
            f"{row.importance:.3f}",
            "frozen" if row.frozen else "fine-tune",
            "" if row.frozen else f"×{row.multiplier:.3g}",
            "" if row.frozen else f"{row.learning_rate:.2e}",
        ]
        for row in trial_plan(trial, base_lr).rows()
    ]


def format_mean_std(values: Sequence[float], *, scale: float = 1.0, digits: int = 4) -> str:
    """``"mean ± std"`` of ``values`` (times ``scale``), or the one value alone: one run has
    no spread, and ``± 0.0000`` would say it had none."""
    scaled = [scale * float(v) for v in values]
    if not scaled:
        return "–"
    if len(scaled) == 1:
        return f"{scaled[0]:.{digits}f}"
    return f"{np.mean(scaled):.{digits}f} ± {np.std(scaled):.{digits}f}"


def format_share(fraction: float) -> str:
    """A fraction in percent with the digits it needs: ``0``, ``100``, ``37.0``, ``0.04`` (a plan
    that trains a tiny block is never shown as ``0.0`` like one that trains nothing)."""
    percent = 100 * float(fraction)
    if percent in (0.0, 100.0):
        return f"{percent:.0f}"
    for digits in range(1, 5):
        text = f"{percent:.{digits}f}"
        if 0 < float(text) < 100:
            return text
    return f"{percent:.2g}"


def strategy_markdown(trial: optuna.trial.FrozenTrial) -> str:
    """A baseline strategy's trial: its strategy, hyperparameters and what it trained."""
    attrs = trial.user_attrs
    settings = attrs.get("strategy_settings", {})
    rows = [[k, format_setting(v)] for k, v in settings.items()]
    frozen = ", ".join(_frozen_blocks(trial) or [])
    text = f"Strategy `{attrs.get('strategy', '?')}`"
    if TRAINABLE_FRACTION_ATTR in attrs:
        text += f", {format_share(attrs[TRAINABLE_FRACTION_ATTR])}% of the parameters trained"
    text += f"; frozen blocks: {frozen or 'none'}.\n\n"
    return text + markdown_table(["hyperparameter", "value"], rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (also readable as plain text)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _at(curve: np.ndarray, budget: int) -> float:
    return float(curve[budget - 1]) if len(curve) >= budget else float("nan")


def _median_iqr(values: Sequence[float]) -> str:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "–"
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.4f} [{q1:.4f}, {q3:.4f}]" if len(values) > 1 else f"{median:.4f}"


def compare_rows(
    groups: Mapping[str, Sequence[optuna.Study]], budgets: Sequence[int]
) -> tuple[list[str], list[list[str]]]:
    """One row per group (e.g. sampler): studies, trials, best value at each budget.

    Each cell is the median over the group's studies (seeds) with the interquartile range; a
    budget that a study has not reached yet is left out of its group's cell (``n`` says how
    many studies reached it).
    """
    header = ["sampler", "studies", "trials (min–max)"]
    header += [f"best after {b} trials (median [IQR], n)" for b in budgets]
    rows = []
    for label, studies in groups.items():
        curves = [best_so_far(s) for s in studies]
        lengths = [len(c) for c in curves]
        row = [label, str(len(studies)), f"{min(lengths)}–{max(lengths)}"]
        for b in budgets:
            values = [_at(c, b) for c in curves]
            reached = sum(np.isfinite(v) for v in values)
            row.append(f"{_median_iqr(values)}, n={reached}")
        rows.append(row)
    return header, rows


def compare_figures(
    groups: Mapping[str, Sequence[optuna.Study]], out_dir: Path, title: str
) -> list[Path]:
    """Best-so-far vs trials per group, as HTML (plotly) and PNG (matplotlib).

    A group of several studies (seeds) is drawn as its median with the interquartile band; a
    group of one study as its curve alone, labelled ``n=1``, since one run has no spread. The
    value axis starts where the curves are after their first tenth of trials, so that one
    chance-level first trial does not squash the differences that matter (the cut is said on
    the axis; the HTML figure can be zoomed out).
    """
    from matplotlib import rcParams
    from matplotlib.figure import Figure
    import plotly.graph_objects as go

    out_dir.mkdir(parents=True, exist_ok=True)
    fig = go.Figure()
    figure = Figure(figsize=(8, 5))  # no pyplot: leaves the caller's backend alone
    axes = figure.subplots()
    palette = rcParams["axes.prop_cycle"].by_key()["color"]
    bands = zip(groups, map(_band, groups.values()), strict=True)
    plotted = [(label, band) for label, band in bands if band is not None]
    for i, (label, (x, q1, median, q3, n)) in enumerate(plotted):
        colour = palette[i % len(palette)]
        name = f"{label} (n={n})"
        if n > 1:
            fig.add_trace(
                go.Scatter(x=x, y=q3, line={"width": 0}, showlegend=False, hoverinfo="skip")
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=q1,
                    fill="tonexty",
                    line={"width": 0},
                    fillcolor=_rgba(colour, 0.2),
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            axes.fill_between(x, q1, q3, color=colour, alpha=0.2, linewidth=0)
        fig.add_trace(go.Scatter(x=x, y=median, name=name, line={"color": _rgba(colour, 1.0)}))
        axes.plot(x, median, color=colour, label=name)
    spread = any(band[4] > 1 for _, band in plotted)
    what = "median and interquartile band over seeds" if spread else "one study each: no spread"
    low, high, cut = _value_range([band for _, band in plotted])
    ylabel = "best value" + (f" (axis from {low:.3g}: earlier trials lower)" if cut else "")
    fig.update_layout(
        title=f"{title}: best value so far ({what})",
        xaxis_title="trials",
        yaxis_title=ylabel,
        yaxis_range=[low, high],
    )
    axes.set(title=f"{title}: best so far ({what})", xlabel="trials", ylabel=ylabel)
    axes.set_ylim(low, high)
    axes.legend()
    axes.grid(alpha=0.3)
    html, png = out_dir / "best_so_far.html", out_dir / "best_so_far.png"
    fig.write_html(html, include_plotlyjs=True)
    figure.tight_layout()
    figure.savefig(png, dpi=120)
    return [html, png]


def _band(studies: Sequence[optuna.Study]) -> tuple[np.ndarray, ...] | None:
    """A group's best-so-far curves as ``(x, q1, median, q3, n)``; None if it has no trial."""
    curves = [best_so_far(s) for s in studies]
    length = max((len(c) for c in curves), default=0)
    if length == 0:
        return None
    stacked = np.full((len(curves), length), np.nan)
    for row, curve in zip(stacked, curves, strict=True):
        row[: len(curve)] = curve
    with warnings.catch_warnings():  # all-NaN columns before a group's first result
        warnings.simplefilter("ignore", RuntimeWarning)
        q1, median, q3 = np.nanpercentile(stacked, [25, 50, 75], axis=0)
    return np.arange(1, length + 1), q1, median, q3, len(curves)


def _value_range(bands: Sequence[tuple[np.ndarray, ...]]) -> tuple[float, float, bool]:
    """The value axis ``(low, high, cut)``: from the lowest band after the first tenth of the
    trials to the highest, with a margin; ``cut`` when earlier values lie below it."""
    lows, highs, everything = [], [], []
    for x, q1, _, q3, _ in bands:
        start = min(len(x) - 1, len(x) // 10)
        lows.append(np.nanmin(q1[start:]) if np.isfinite(q1[start:]).any() else np.nan)
        highs.append(np.nanmax(q3) if np.isfinite(q3).any() else np.nan)
        everything.append(np.nanmin(q1) if np.isfinite(q1).any() else np.nan)
    if not bands or not np.isfinite(lows).any():
        return 0.0, 1.0, False
    low, high = float(np.nanmin(lows)), float(np.nanmax(highs))
    margin = 0.05 * (high - low) or 0.05 * max(abs(high), 1e-3)
    cut = bool(np.nanmin(everything) < low - margin)
    return low - margin, high + margin, cut


def _rgba(colour: Any, alpha: float) -> str:
    from matplotlib.colors import to_rgb

    r, g, b = (round(255 * c) for c in to_rgb(colour))
    return f"rgba({r},{g},{b},{alpha})"
