"""What the command line's commands say, built from a spec's study: one function a command.

Each function does a command's work on the studies' side (it reads the study, checks the
storage, writes the command's files) and returns the text the command prints, so that the
command line only parses its arguments, calls one function and prints: ``status``
(:func:`status_report`), ``best`` (:func:`best_report`), ``compare`` (:func:`compare_report`),
``retrain`` (:func:`retrain_report`), ``baselines`` (:func:`baselines_report`),
``dashboard`` (:func:`serve_spec_dashboard`) and ``run`` (:func:`run_announcement` before
the trials, :func:`run_report` after them). Bad input raises
:class:`~biotune_optuna.studies.SpecError` (one line, exit code 2).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import socket
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts import upload_artifact

from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.studies._baselines import BASELINE_ROWS
from biotune_optuna.studies._baselines import BaselineRow
from biotune_optuna.studies._baselines import compare_baselines
from biotune_optuna.studies._dashboard import save_study_figures
from biotune_optuna.studies._dashboard import save_study_note
from biotune_optuna.studies._dashboard import serve_dashboard
from biotune_optuna.studies._objectives import build_objective
from biotune_optuna.studies._objectives import describe_objective
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import Recommendation
from biotune_optuna.studies._report import best_plan_rows
from biotune_optuna.studies._report import compare_figures
from biotune_optuna.studies._report import compare_rows
from biotune_optuna.studies._report import estimate_label
from biotune_optuna.studies._report import estimate_words
from biotune_optuna.studies._report import evaluations_list
from biotune_optuna.studies._report import evaluations_words
from biotune_optuna.studies._report import format_mean_std
from biotune_optuna.studies._report import format_share
from biotune_optuna.studies._report import frozen_head_warning
from biotune_optuna.studies._report import markdown_table
from biotune_optuna.studies._report import metric_name
from biotune_optuna.studies._report import plan_trials
from biotune_optuna.studies._report import status_summary
from biotune_optuna.studies._report import strategy_markdown
from biotune_optuna.studies._retrain import retrain_best_plan
from biotune_optuna.studies._session import load_study
from biotune_optuna.studies._session import missing_study
from biotune_optuna.studies._session import reading_storage
from biotune_optuna.studies._session import running_trials_health
from biotune_optuna.studies._session import study_exists
from biotune_optuna.studies._session import study_names
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import display_storage
from biotune_optuna.studies._storage import file_of_storage
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import GENERATION_ATTR
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR


__all__ = [
    "baselines_report",
    "best_report",
    "compare_report",
    "retrain_report",
    "run_announcement",
    "run_report",
    "serve_spec_dashboard",
    "status_report",
]


# --- status -------------------------------------------------------------------------------------


def status_report(spec: StudySpec) -> str:
    """The ``status`` command's text: the progress of the spec's study (its trials per state,
    generation, best value observed and recommended trial) and the health of its running
    trials.

    Raises:
        SpecError: If the spec's study is not in its storage.
    """
    study = load_study(spec)
    summary = status_summary(study)
    states = ", ".join(f"{n} {s.lower()}" for s, n in summary["states"].items()) or "none"
    if summary["rungs"] is not None:
        rungs = summary["rungs"]
        states += (
            f"; {rungs['continuations']} continuations of paused plans, "
            f"{rungs['paused']} plans paused at a rung"
        )
    lines = [
        f"study `{summary['study']}` in {display_storage(spec.storage)}",
        f"  sampler     {summary['sampler']}",
        f"  budget      {summary['budget'] or spec.describe_budget()}",
        f"  trials      {summary['trials']} ({states})",
    ]
    if summary["generation"] is not None:
        lines.append(f"  generation  {summary['generation']}")
    lines.append(f"  metric      {summary['metric']} ({summary['direction']}d)")
    if summary["best_value"] is not None:
        lines += _status_values(summary)
    else:
        lines.append("  best        none yet")
    for number, health in running_trials_health(study, spec.grace_period):
        lines.append(f"  running     trial {number}: {health}")
    return "\n".join(lines)


def _status_values(summary: dict[str, Any]) -> list[str]:
    """The best value observed (one evaluation) and the recommended trial, each named."""
    label = estimate_label(summary["recommended_rule"])
    return [
        f"  best        {summary['best_value']:.4f} observed "
        f"(trial #{summary['best_trial']}, a single evaluation)",
        f"  recommended trial #{summary['recommended_trial']}: observed "
        f"{summary['recommended_observed']:.4f} "
        f"({evaluations_words(summary['recommended_evaluations'])}: "
        f"{summary['recommended_evaluations_list']})",
        f"              {label} {summary['recommended_estimate_words']}",
    ]


# --- best ---------------------------------------------------------------------------------------


def best_report(study: optuna.Study) -> str:
    """The ``best`` command's text (also what ``run`` ends with): the study's recommended
    trial, its estimate and plan (a table of blocks, or a baseline's hyperparameters), and the
    best single value apart."""
    recommendation = current_recommendation(study)
    if recommendation is None:
        return "no complete trial yet"
    chosen = recommendation.trial
    lines = _best_values(study, recommendation)
    if "freeze_threshold" not in chosen.params:  # a baseline strategy's trial
        return "\n".join([*lines, strategy_markdown(chosen)])
    base_lr = float(study.user_attrs.get("base_lr", 1e-3))
    rows = best_plan_rows(chosen, base_lr)
    lines.append(f"freeze threshold {chosen.params.get('freeze_threshold', float('nan')):.3f}")
    lines.append(markdown_table(["block", "importance", "plan", "lr multiplier", "lr"], rows))
    warning = frozen_head_warning(chosen, base_lr)
    if warning is not None:
        lines.append(warning)
    return "\n".join(lines)


def _best_values(study: optuna.Study, recommendation: Recommendation) -> list[str]:
    """The recommended trial's observed values (each evaluation: trial, fold, value) and the
    estimate with its interval, and the best value observed, each said for what it is."""
    chosen, best = recommendation.trial, study.best_trial
    attrs = chosen.user_attrs
    evaluations = plan_trials(study, chosen)
    observed = [float(t.value) for t in evaluations]  # type: ignore[arg-type]
    direction = f"{study.direction.name.lower()}d"
    lines = [f"\nrecommended trial #{chosen.number} ({metric_name(study)}, {direction})"]
    line = (
        f"  observed        {np.mean(observed):.4f}: {evaluations_words(observed)}: "
        f"{evaluations_list(evaluations)}"
    )
    if TRAINABLE_FRACTION_ATTR in attrs:
        line += f"; {format_share(attrs[TRAINABLE_FRACTION_ATTR])}% of the parameters trained"
    lines.append(line)
    label = estimate_label(recommendation.rule)
    lines.append(f"  {label:<16}{estimate_words(recommendation, best.value)}")
    fold = f" (fold {best.user_attrs[FOLD_ATTR]})" if FOLD_ATTR in best.user_attrs else ""
    lines.append(
        f"  best observed   {best.value:.4f}: trial #{best.number}, a single evaluation{fold}"
    )
    return lines


# --- compare ------------------------------------------------------------------------------------


def compare_report(
    spec: StudySpec, *, names: list[str] | None, budgets: list[int] | None, output: Path | None
) -> tuple[str, str]:
    """The ``compare`` command: write the comparison table (``compare.md``) and the
    best-so-far plots of the spec's study and its siblings (or the studies ``names``).

    Args:
        spec: The spec whose storage holds the studies.
        names: The studies to compare (default: the spec's study and its ``<name>-...``
            siblings).
        budgets: The trial budgets of the table (default: a quarter, half and all of the
            spec's budget).
        output: The directory written (default: ``compare/<name>`` beside the spec).

    Returns:
        The table, and a line that says what was written.

    Raises:
        SpecError: If a named study, or the spec's own, is not in the storage.
    """
    base = spec.name
    groups = _groups(spec.storage, _names_to_compare(spec, names))
    budgets = budgets or sorted({spec.budget // 4, spec.budget // 2, spec.budget} - {0})
    header, rows = compare_rows(groups, budgets)
    table = markdown_table(header, rows)
    out = output or (spec.path.resolve().parent / "compare" / base)
    paths = compare_figures(groups, out, base)
    listing = ", ".join(f"{k}: {len(v)}" for k, v in groups.items())
    (out / "compare.md").write_text(
        f"# {base}: samplers compared\n\nStudies ({listing}) in "
        f"`{display_storage(spec.storage)}`.\n\n{table}\n"
    )
    return table, f"wrote {out / 'compare.md'}, " + ", ".join(str(p) for p in paths)


def _names_to_compare(spec: StudySpec, names: list[str] | None) -> list[str]:
    """``names``, or the spec's study and its siblings (``<name>-...``).

    Raises:
        SpecError: If a named study, or the spec's own, is not in the storage.
    """
    if names:
        for name in names:
            if not study_exists(spec.storage, name):
                raise missing_study(spec.storage, name)
        return list(names)
    base = spec.name
    if not study_exists(spec.storage, base):
        raise missing_study(spec.storage, base)
    return [
        name for name in study_names(spec.storage) if name == base or name.startswith(f"{base}-")
    ]


def _groups(storage_url: str, names: list[str]) -> dict[str, list[optuna.Study]]:
    """The studies by sampler (a baseline's as ``<strategy> (<sampler>)``: other genes)."""
    storage = reading_storage(storage_url)
    groups: dict[str, list[optuna.Study]] = {}
    for name in sorted(names):
        study = optuna.load_study(study_name=name, storage=storage)
        label = study.user_attrs.get("sampler", type(study.sampler).__name__)
        strategy = study.user_attrs.get("strategy", BIOTUNE)
        if strategy != BIOTUNE:  # a baseline's search: not the same genes
            label = f"{strategy} ({label})"
        groups.setdefault(label, []).append(study)
    return groups


# --- retrain ------------------------------------------------------------------------------------


def retrain_report(
    spec: StudySpec, *, trial: int | None, output: Path, say: Callable[[str], None]
) -> tuple[str, dict[str, Any] | None]:
    """The ``retrain`` command: retrain and test the recommended plan (or trial ``trial``'s)
    on the whole train split, write it with its results and weights to ``output``, and upload
    them to the spec's artifact store. A replayed (``table``) study's plan is not trained
    again: its runs' recorded test accuracy is read from the table.

    Args:
        spec: A fine-tuning (or table) spec whose study has a complete trial.
        trial: The number of the trial to retrain (default: the recommended one).
        output: The directory written.
        say: Called with a line before the training starts.

    Returns:
        The line that says the test accuracy, and the results written (``None`` for a
        replayed study).

    Raises:
        SpecError: If the study has no such complete trial, or the spec does not fine-tune.
    """
    study = load_study(spec)
    chosen = None if trial is None else _complete_trial(study, spec, trial)
    if spec.objective == "table":
        return _recorded(spec, study, chosen), None
    if spec.objective != "finetune":
        raise SpecError("retrain needs a fine-tuning spec ([objective] kind = 'finetune')")
    objective = build_objective(spec)
    say(f"retraining the plan of study `{spec.name}` on the full train split ...")
    results = retrain_best_plan(spec, study, objective, output, trial=chosen)
    if spec.artifacts is not None:
        _upload(study, spec.artifacts, [output / "plan.json", output / "results.json"])
    line = (
        f"trial #{results['trial']} retrained on {results['train_images']} images, "
        f"{_test_accuracy(results)}"
    )
    return line, results


def _recorded(spec: StudySpec, study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> str:
    """A replayed study's plan is not trained again: its runs' test accuracy is in the table.

    Raises:
        SpecError: If the study has no complete trial yet.
    """
    if trial is None:
        recommendation = current_recommendation(study)
        if recommendation is None:
            raise SpecError(f"study `{study.study_name}` has no complete trial yet")
        trial = recommendation.trial
    result = build_objective(spec).recorded_test(trial.params)
    per_run = result["test_macro_accuracy_per_run"]
    if not per_run:
        return f"trial #{trial.number} fine-tunes nothing: the table records no run of it"
    accuracy = format_mean_std(per_run) if len(per_run) > 1 else f"{per_run[0]:.4f}"
    return (
        f"trial #{trial.number} (plan {result['table_code']} of table {spec.table.name}): "
        f"recorded test macro accuracy {accuracy} over {len(per_run)} runs "
        "(each run's best-validation weights; read from the table, nothing trained)"
    )


def _test_accuracy(results: dict[str, Any]) -> str:
    """``"<n> seeds: test macro accuracy <mean> ± <std> (<per seed>)"``, without a spread for
    one seed."""
    per_seed = results["test_macro_accuracy_per_seed"]
    if len(per_seed) == 1:
        return f"1 seed: test macro accuracy {per_seed[0]:.4f} (no spread with one seed)"
    return (
        f"{len(per_seed)} seeds: test macro accuracy {format_mean_std(per_seed)} "
        f"({', '.join(f'{a:.4f}' for a in per_seed)})"
    )


def _complete_trial(study: optuna.Study, spec: StudySpec, number: int) -> optuna.trial.FrozenTrial:
    """The study's trial ``number``.

    Raises:
        SpecError: If the study has no such trial, or it is not complete.
    """
    matches = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not matches or matches[0].state != optuna.trial.TrialState.COMPLETE:
        raise SpecError(f"study `{spec.name}` has no complete trial #{number}")
    return matches[0]


def _upload(study: optuna.Study, artifacts: Path, files: list[Path]) -> None:
    """Upload ``files`` to the study in the artifact store at ``artifacts`` (for the UI)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifacts))
    for path in files:
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)


# --- baselines ----------------------------------------------------------------------------------


def baselines_report(
    spec: StudySpec,
    *,
    strategies: list[str] | None,
    n_seeds: int,
    output: Path,
    say: Callable[[str], None],
) -> str:
    """The ``baselines`` command: BioTune's recommended plan against the usual ways of
    fine-tuning (:func:`~biotune_optuna.studies._baselines.compare_baselines`), as a table
    written to ``output`` and returned.

    Args:
        spec: A fine-tuning spec whose strategy is BioTune.
        strategies: The strategies whose rows the table has (default: all of them).
        n_seeds: Final runs per method.
        output: The directory of ``baselines.md`` and ``baselines.json``.
        say: Called with each line of progress.

    Raises:
        SpecError: If a strategy is not a known one.
    """
    table, _ = compare_baselines(
        spec, n_seeds=n_seeds, output=output, rows=_chosen_rows(strategies), say=say
    )
    return table


def _chosen_rows(strategies: list[str] | None) -> tuple[BaselineRow, ...]:
    """The table's rows of ``strategies`` (all of them without it).

    Raises:
        SpecError: If a strategy is not a known one.
    """
    if not strategies:
        return BASELINE_ROWS
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise SpecError(
            f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}"
        )
    return tuple(row for row in BASELINE_ROWS if row.strategy in strategies)


# --- dashboard ----------------------------------------------------------------------------------


def serve_spec_dashboard(
    spec: StudySpec, *, host: str, port: int, say: Callable[[str], None]
) -> None:
    """The ``dashboard`` command: optuna-dashboard on the spec's storage, with its artifact
    store, until Ctrl-C; ``say`` is called with its address once the port is known free.

    Raises:
        SpecError: If the spec's storage file does not exist yet, or the port is taken.
    """
    path = file_of_storage(spec.storage)
    if path is not None and not path.is_file():
        raise SpecError(f"no study storage at {path} yet; `biotune-optuna run {spec.path}` first")
    _check_port(host, port)
    url = f"http://{host}:{port}/dashboard/"
    say(f"optuna-dashboard for {display_storage(spec.storage)} at {url} (Ctrl-C to stop)")
    serve_dashboard(spec.storage, host=host, port=port, artifacts=spec.artifacts)


def _check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once, as the server will, before anything is announced.

    Raises:
        SpecError: If it cannot be bound (another dashboard on it, say), with the way out.
    """
    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as the server's own bind
            pass
    except OSError as exc:
        raise SpecError(
            f"cannot serve on {host}:{port} ({os.strerror(exc.errno) if exc.errno else exc}); "
            f"is a dashboard already there? Choose another port: --port {port + 1}"
        ) from None


# --- run ----------------------------------------------------------------------------------------


def run_announcement(spec: StudySpec, *, budget: str, n_workers: int) -> str:
    """What ``run`` says before its trials: the study, its objective, strategy, sampler, seed
    and ``budget`` (and the workers, if several)."""
    return (
        f"study `{spec.name}` in {display_storage(spec.storage)}\n"
        f"  {describe_objective(spec)}\n"
        f"  {_describe_strategy(spec)}sampler {spec.sampler}, seed {spec.seed}, budget {budget}"
        + (f" on {n_workers} workers" if n_workers > 1 else "")
    )


def _describe_strategy(spec: StudySpec) -> str:
    """A baseline strategy with its given and searched hyperparameters (``""`` for BioTune)."""
    if spec.strategy == BIOTUNE:
        return ""
    given = ", ".join(f"{k}={v}" for k, v in spec.strategy_options.items())
    searched = ", ".join(spec.strategy_search)
    return (
        f"strategy {spec.strategy}"
        + (f" ({given})" if given else "")
        + (f", searching {searched}" if searched else "")
        + "; "
    )


def run_report(
    study: optuna.Study, spec: StudySpec, *, generations: bool
) -> tuple[list[str], str]:
    """After a run: save the study's figures and note, and say what ``run`` ends with.

    Args:
        study: The study run.
        spec: Its spec.
        generations: Also a table of the study's generations.

    Returns:
        The warnings about trials still running and not known alive (another host's dead
        trial is failed and retried once its grace period is over), and the text: the
        generations (if asked) and the best plan (:func:`best_report`).
    """
    warnings = [
        f"trial {number} is still RUNNING ({health}); the next `run` "
        "fails and retries it once it is known dead"
        for number, health in running_trials_health(study, spec.grace_period)
        if not health.startswith("alive")
    ]
    save_study_figures(study)
    save_study_note(study, spec)
    lines = _generation_lines(study) if generations else []
    return warnings, "\n".join([*lines, best_report(study)])


def _generation_lines(study: optuna.Study) -> list[str]:
    """A table of the study's generations: trials, best in each and best so far."""
    rows: dict[int, list[float]] = {}
    for t in study.get_trials(deepcopy=False):
        if isinstance(t.user_attrs.get(GENERATION_ATTR), int):
            value = t.value if t.value is not None else float("nan")
            rows.setdefault(t.user_attrs[GENERATION_ATTR], []).append(value)
    if not rows:
        return []
    lines = ["\ngeneration  trials  best in generation  best so far"]
    best_so_far = float("-inf")
    for g in sorted(rows):
        finite = [v for v in rows[g] if v == v]
        best = max(finite) if finite else float("nan")
        best_so_far = max(best_so_far, best) if finite else best_so_far
        lines.append(f"{g:>10}  {len(rows[g]):>6}  {best:>18.4f}  {best_so_far:>11.4f}")
    return lines
