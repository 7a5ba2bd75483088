"""What a BioTune study shows in optuna-dashboard: notes, figures and the server.

optuna-dashboard never shows system attrs, so everything a user should see is put where it
looks: trial user attrs (the sampler writes generation/role/parents, the objective the plan
and its costs), a markdown note per trial with its plan, a study note with the spec, the budget
and the recommended plan (its number is also the study user attr ``recommended_trial``), and
plotly figures saved to the study (the freeze mask of every trial as a heat map; accuracy
against the trainable fraction).
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from pathlib import Path
import time
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from biotune_optuna.plan import block_names
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.studies._optuna_bridge import storage_of
from biotune_optuna.studies._optuna_bridge import study_id
from biotune_optuna.studies._optuna_bridge import trial_id
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import record_recommendation
from biotune_optuna.studies._recommendation import stored_recommendation
from biotune_optuna.studies._report import estimate_label
from biotune_optuna.studies._report import evaluations_words
from biotune_optuna.studies._report import frozen_head_warning
from biotune_optuna.studies._report import metric_name
from biotune_optuna.studies._report import name_metric
from biotune_optuna.studies._report import status_summary
from biotune_optuna.studies._report import strategy_markdown
from biotune_optuna.studies._report import trial_plan
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.studies._storage import open_storage
from biotune_optuna.studies._storage import remember_passwords
from biotune_optuna.trials import GENERATION_ATTR
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR


if TYPE_CHECKING:
    from biotune_optuna.studies._spec import StudySpec

__all__ = [
    "FITNESS_COST_FIGURE",
    "FREEZE_MASK_FIGURE",
    "RECOMMENDED_MARK",
    "DashboardUpdater",
    "mark_recommended_trial",
    "plan_markdown",
    "save_plan_note",
    "save_study_figures",
    "save_study_note",
    "serve_dashboard",
]

FREEZE_MASK_FIGURE = "biotune-freeze-mask"
FITNESS_COST_FIGURE = "biotune-accuracy-vs-trainable"


def plan_markdown(plan: FineTunePlan) -> str:
    """A plan as a markdown table: block, importance, decision, learning rate."""
    rows = [
        f"Freeze threshold ε = {plan.threshold:.3f}; {len(plan.selected)} of "
        f"{len(plan.blocks)} blocks fine-tuned.",
        "",
        "| block | importance ν | plan | learning rate |",
        "|---|---:|---|---:|",
    ]
    for row in plan.rows():
        if row.frozen:
            decision, lr = "**frozen**", "–"
        else:
            decision, lr = f"fine-tune (×{row.multiplier:.3g})", f"{row.learning_rate:.2e}"
        rows.append(f"| {row.block} | {row.importance:.3f} | {decision} | {lr} |")
    return "\n".join(rows)


def save_plan_note(trial: optuna.Trial, plan: FineTunePlan) -> None:
    """Write the trial's plan as its dashboard note (shown while it trains)."""
    from optuna_dashboard import save_note

    table = plan_markdown(plan)
    save_note(trial, f"## Plan of trial {trial.number}\n\n{table}\n")


def _recommendation_markdown(study: optuna.Study, summary: dict[str, Any]) -> list[str]:
    """The note's section on the recommended plan: heading, its observed value and the model's
    estimate, the best value observed (what the dashboard's "Best Trial" shows), the plan."""
    recommendation = current_recommendation(study) if summary["best_value"] is not None else None
    if recommendation is None:
        return []
    trial = recommendation.trial
    kind = "plan" if THRESHOLD_PARAM in trial.params else "trial"
    heading = f"## Recommended {kind}: trial {trial.number}"
    parts = ["", heading, "", *_values_markdown(summary), ""]
    if kind == "plan":
        base_lr = float(study.user_attrs.get("base_lr", 1e-3))
        warning = frozen_head_warning(trial, base_lr)
        shown = [] if warning is None else ["", f"**{warning[0].upper()}{warning[1:]}.**"]
        return [*parts, plan_markdown(trial_plan(trial, base_lr)), *shown]
    return [*parts, strategy_markdown(trial)]


def _values_markdown(summary: dict[str, Any]) -> list[str]:
    """The recommended trial's observed values and estimate and the best one, each named."""
    label = estimate_label(summary["recommended_rule"])
    return [
        f"- **metric**: {summary['metric']} ({summary['direction']}d)",
        f"- **observed value**: {summary['recommended_observed']:.4f} "
        f"({evaluations_words(summary['recommended_evaluations'])}: "
        f"{summary['recommended_evaluations_list']})",
        f"- **{label}**: {summary['recommended_estimate_words']}",
        f"- **best observed value**: {summary['best_value']:.4f} (trial {summary['best_trial']}, "
        "a single evaluation): the dashboard's *Best Trial* card and badge show that trial, "
        "the luckiest evaluation, not the recommended plan; the recommended trial's own note "
        f"starts with **{RECOMMENDED_MARK}**.",
    ]


#: The heading that starts the recommended trial's note (and only its note).
RECOMMENDED_MARK = "★ Recommended trial"
#: What separates the mark from the rest of the trial's note (its plan).
_MARK_END = "\n\n---\n\n"
#: Study system attr: the number of the trial whose note carries the mark.
MARKED_TRIAL_KEY = "biotune:marked_trial"


class _TrialRef:
    """What optuna-dashboard's ``save_note``/``get_note`` read of a trial (``optuna.Trial(...)``
    of a finished trial would ask the sampler for parameters)."""

    def __init__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.study = study
        self.storage = storage_of(study)
        self._trial_id = trial_id(trial)  # the name optuna-dashboard reads


def _marked_trial(study: optuna.Study) -> int | None:
    return storage_of(study).get_study_system_attrs(study_id(study)).get(MARKED_TRIAL_KEY)


def _unmarked(note: str) -> str:
    if not note.startswith(f"## {RECOMMENDED_MARK}"):
        return note
    return note.split(_MARK_END, 1)[1] if _MARK_END in note else ""


def mark_recommended_trial(study: optuna.Study, summary: dict[str, Any]) -> None:
    """Start the recommended trial's dashboard note with :data:`RECOMMENDED_MARK` and its
    values, and take the mark off the trial that had it before.

    A finished trial's user attrs cannot change in Optuna, so the mark is in its note (shown
    with the trial on the dashboard's trial pages), which can.
    """
    from optuna_dashboard import get_note
    from optuna_dashboard import save_note

    chosen = summary["recommended_trial"]
    previous = _marked_trial(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if previous is not None and previous != chosen and previous in trials:
        ref = _TrialRef(study, trials[previous])
        save_note(ref, _unmarked(get_note(ref)))  # type: ignore[arg-type]
    if chosen is None:
        return
    ref = _TrialRef(study, trials[chosen])
    mark = "\n".join(
        [f"## {RECOMMENDED_MARK} of the study", "", *_values_markdown(summary)[:3]]
    )
    save_note(ref, mark + _MARK_END + _unmarked(get_note(ref)))  # type: ignore[arg-type]
    storage_of(study).set_study_system_attr(study_id(study), MARKED_TRIAL_KEY, chosen)


def save_study_note(study: optuna.Study, spec: StudySpec | None = None) -> None:
    """Write the study note: what the study is, its budget, progress and the recommended plan
    (:func:`~biotune_optuna.studies._recommendation.current_recommendation`) with its estimate.

    The recommendation shown is recorded in the study too (when it was not current). The
    spec's text is shown with the password of any URL in it masked (``***``).
    """
    from optuna_dashboard import save_note

    if stored_recommendation(study) is None:
        record_recommendation(study)  # so that the summary and the section reuse it
    name_metric(study)
    summary = status_summary(study)
    parts = [f"# {study.study_name}", ""]
    attrs = study.user_attrs
    if spec is not None and spec.description:
        parts += [spec.description, ""]
    facts = {
        "strategy": attrs.get("strategy"),
        "strategy options": attrs.get("strategy_options"),
        "sampler": attrs.get("sampler"),
        "sampler options": attrs.get("sampler_options"),
        "objective": attrs.get("objective"),
        "budget": attrs.get("budget"),
        "seed": attrs.get("seed"),
    }
    parts += [f"- **{k}**: `{v}`" for k, v in facts.items() if v not in (None, {}, "")]
    states = ", ".join(f"{n} {state.lower()}" for state, n in summary["states"].items())
    parts.append(f"- **trials**: {states or 'none yet'}")
    if summary["generation"] is not None:
        parts.append(f"- **generation**: {summary['generation']}")
    parts += _recommendation_markdown(study, summary)
    if summary["recommended_trial"] != _marked_trial(study):
        mark_recommended_trial(study, summary)
    if spec is not None and spec.text:
        parts += ["", f"## Spec `{spec.source}`", "", "```toml", spec.text.strip(), "```"]
        if spec.overrides:
            parts += ["", f"Overridden on the command line: `{dict(spec.overrides)}`"]
    # The spec's text may hold a storage URL with its password: the note is stored and shown.
    if spec is not None:
        remember_passwords(spec.storage)
    save_note(study, masked_text("\n".join(parts) + "\n"))


def save_study_figures(study: optuna.Study) -> None:
    """Save the BioTune figures to the study (shown on its dashboard page).

    - the freeze mask of every finished trial as a heat map: a cell is the block's
      learning-rate multiplier (log10), blank where the block is frozen;
    - validation accuracy against the fraction of trainable parameters, by generation.
    """
    from optuna_dashboard import save_plotly_graph_object
    import plotly.graph_objects as go

    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if THRESHOLD_PARAM in t.params
    ]
    if not trials:
        return
    blocks = block_names(trials[0].params)
    z, text = [], []
    for t in trials:
        row = [
            None if r.frozen else math.log10(r.multiplier)
            for r in FineTunePlan.from_params(t.params, blocks).rows()
        ]
        z.append(row)
        text.append(
            [
                f"trial {t.number}, {b}: "
                + ("frozen" if v is None else f"lr ×{10**v:.3g}")
                + f"<br>value {t.value:.4f}"
                for b, v in zip(blocks, row, strict=True)
            ]
        )
    mask = go.Figure(
        go.Heatmap(
            z=z,
            x=blocks,
            y=[t.number for t in trials],
            text=text,
            hoverinfo="text",
            zmin=-1,
            zmax=1,
            colorscale="Viridis",
            colorbar={"title": {"text": "log10 lr ×"}},
        )
    )
    mask.update_layout(
        title="Freeze mask per trial (blank: frozen; colour: learning-rate multiplier)",
        xaxis_title="block",
        yaxis_title="trial",
        yaxis={"autorange": "reversed"},
    )
    save_plotly_graph_object(study, mask, graph_object_id=FREEZE_MASK_FIGURE)

    _save_accuracy_vs_trainable(study, trials)


def _save_accuracy_vs_trainable(
    study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial]
) -> None:
    """Validation accuracy against the share of trainable parameters, by generation."""
    from optuna_dashboard import save_plotly_graph_object
    import plotly.graph_objects as go

    with_cost = [t for t in trials if TRAINABLE_FRACTION_ATTR in t.user_attrs]
    if not with_cost:
        return
    generation = [t.user_attrs.get(GENERATION_ATTR, 0) for t in with_cost]
    metric = metric_name(study)
    scatter = go.Figure(
        go.Scatter(
            x=[100 * t.user_attrs[TRAINABLE_FRACTION_ATTR] for t in with_cost],
            y=[t.value for t in with_cost],
            mode="markers",
            marker={
                "color": generation,
                "colorscale": "Plasma",
                "colorbar": {"title": {"text": "generation"}},
                "size": 9,
            },
            text=[f"trial {t.number}" for t in with_cost],
        )
    )
    scatter.update_layout(
        title=f"{metric[:1].upper()}{metric[1:]} vs trainable parameters",
        xaxis_title="trainable parameters (%)",
        yaxis_title=metric,
    )
    save_plotly_graph_object(study, scatter, graph_object_id=FITNESS_COST_FIGURE)


class DashboardUpdater:
    """Optuna callback: refresh the study's figures, recommendation and note.

    They are refreshed after a COMPLETE trial, at most every ``min_interval_s`` seconds (a
    figure rewrite is a few hundred kB, appended for good to a journal storage; a
    recommendation fits a model of all trials); ``run`` saves them once more at its end.

    Args:
        spec: The study's spec, shown in the note.
        min_interval_s: Least seconds between two refreshes.
    """

    def __init__(self, spec: StudySpec | None = None, *, min_interval_s: float = 10.0) -> None:
        self.spec = spec
        self.min_interval_s = min_interval_s
        self._refreshed_at: float | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE:
            return
        now = time.monotonic()
        if self._refreshed_at is not None and now - self._refreshed_at < self.min_interval_s:
            return
        self._refreshed_at = now
        save_study_figures(study)
        record_recommendation(study)
        save_study_note(study, self.spec)  # shows the recommendation just recorded


def serve_dashboard(
    storage: str, *, host: str = "127.0.0.1", port: int = 8080, artifacts: Path | None = None
) -> None:
    """Run optuna-dashboard on ``storage`` (blocking), with the study's artifact store.

    It binds to ``127.0.0.1`` (this host only) unless ``host`` says otherwise.
    """
    from optuna_dashboard import run_server

    store = None
    if artifacts is not None:
        from optuna.artifacts import FileSystemArtifactStore

        artifacts.mkdir(parents=True, exist_ok=True)
        store = FileSystemArtifactStore(str(artifacts))
    run_server(open_storage(storage, create=False), host=host, port=port, artifact_store=store)
