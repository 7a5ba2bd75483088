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

from biotune_optuna.plan import block_names
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.recommendation import current_recommendation


__all__ = [
    "best_plan_rows",
    "best_so_far",
    "compare_figures",
    "compare_rows",
    "format_setting",
    "markdown_table",
    "status_summary",
    "strategy_markdown",
    "trial_plan",
]


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
    """Trials per state, the current generation, the best value so far, the recommended trial
    and its estimate (:func:`~biotune_optuna.recommendation.current_recommendation`: robust to
    fold and seed noise, unlike the best value) and the budget."""
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    generations = [
        t.user_attrs["generation"]
        for t in trials
        if isinstance(t.user_attrs.get("generation"), int)
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    recommendation = current_recommendation(study) if complete else None
    return {
        "study": study.study_name,
        "sampler": study.user_attrs.get("sampler", type(study.sampler).__name__),
        "budget": study.user_attrs.get("budget"),
        "states": {k: v for k, v in states.items() if v},
        "trials": len(trials),
        "generation": max(generations) if generations else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "recommended_trial": recommendation.trial.number if recommendation else None,
        "recommended_estimate": recommendation.estimate if recommendation else None,
        "recommended_rule": recommendation.rule if recommendation else None,
    }


def trial_plan(trial: optuna.trial.FrozenTrial, base_lr: float = 1e-3) -> FineTunePlan:
    """The plan a trial's genes decode to (its blocks named by its parameters)."""
    return FineTunePlan.from_params(trial.params, block_names(trial.params), base_lr=base_lr)


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


def format_setting(value: Any) -> str:
    """A hyperparameter's value for tables: floats to 3 digits, ``None`` as ``auto`` (a
    default that follows the protocol, e.g. LP-FT's ``lp_epochs``)."""
    if value is None:
        return "auto"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def strategy_markdown(trial: optuna.trial.FrozenTrial) -> str:
    """A baseline strategy's trial: its strategy, hyperparameters and what it trained."""
    attrs = trial.user_attrs
    settings = attrs.get("strategy_settings", {})
    rows = [[k, format_setting(v)] for k, v in settings.items()]
    frozen = attrs.get("frozen_blocks", [])
    text = f"Strategy `{attrs.get('strategy', '?')}`"
    if "trainable_fraction" in attrs:
        text += f", {100 * attrs['trainable_fraction']:.1f}% of the parameters trained"
    text += f"; frozen blocks: {', '.join(frozen) or 'none'}.\n\n"
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
    """Best-so-far vs trials per group, median line and interquartile band, as HTML and PNG."""
    from matplotlib import rcParams
    from matplotlib.figure import Figure
    import plotly.graph_objects as go

    out_dir.mkdir(parents=True, exist_ok=True)
    fig = go.Figure()
    figure = Figure(figsize=(8, 5))  # no pyplot: leaves the caller's backend alone
    axes = figure.subplots()
    palette = rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, studies) in enumerate(groups.items()):
        curves = [best_so_far(s) for s in studies]
        length = max(len(c) for c in curves)
        if length == 0:
            continue
        stacked = np.full((len(curves), length), np.nan)
        for row, curve in zip(stacked, curves, strict=True):
            row[: len(curve)] = curve
        x = np.arange(1, length + 1)
        with warnings.catch_warnings():  # all-NaN columns before a group's first result
            warnings.simplefilter("ignore", RuntimeWarning)
            q1, median, q3 = np.nanpercentile(stacked, [25, 50, 75], axis=0)
        colour = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=x, y=q3, line={"width": 0}, showlegend=False, hoverinfo="skip"))
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
        fig.add_trace(
            go.Scatter(
                x=x,
                y=median,
                name=f"{label} (n={len(studies)})",
                line={"color": _rgba(colour, 1.0)},
            )
        )
        axes.fill_between(x, q1, q3, color=colour, alpha=0.2, linewidth=0)
        axes.plot(x, median, color=colour, label=f"{label} (n={len(studies)})")
    fig.update_layout(
        title=f"{title}: best value so far (median, interquartile band)",
        xaxis_title="trials",
        yaxis_title="best objective value",
    )
    axes.set(title=f"{title}: best so far (median, IQR)", xlabel="trials", ylabel="best value")
    axes.legend()
    axes.grid(alpha=0.3)
    html, png = out_dir / "best_so_far.html", out_dir / "best_so_far.png"
    fig.write_html(html, include_plotlyjs=True)
    figure.tight_layout()
    figure.savefig(png, dpi=120)
    return [html, png]


def _rgba(colour: Any, alpha: float) -> str:
    from matplotlib.colors import to_rgb

    r, g, b = (round(255 * c) for c in to_rgb(colour))
    return f"rgba({r},{g},{b},{alpha})"
