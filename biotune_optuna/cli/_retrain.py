"""``retrain``: the recommended plan (or a chosen trial's) on the whole train split, tested."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts import upload_artifact

from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import UsageError
from biotune_optuna.cli._predict import predict_hint
from biotune_optuna.studies import build_objective
from biotune_optuna.studies import load_study
from biotune_optuna.studies import StudySpec
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._report import format_mean_std
from biotune_optuna.studies._retrain import retrain_best_plan


def add_arguments(retrain: argparse.ArgumentParser) -> None:
    """The ``retrain`` command's own arguments."""
    retrain.add_argument("--output", type=Path, help="directory (default: the spec's)")
    retrain.add_argument(
        "--trial", type=int, help="retrain this trial's plan, not the recommended one"
    )


def handle(args: argparse.Namespace) -> int:
    """Retrain and test the plan, write it with its results and weights, say the accuracy."""
    spec = spec_of(args)
    study = load_study(spec)
    trial = None if args.trial is None else _complete_trial(study, spec, args.trial)
    if spec.objective == "table":
        return _recorded(spec, study, trial)
    if spec.objective != "finetune":
        raise UsageError("retrain needs a fine-tuning spec ([objective] kind = 'finetune')")
    objective = build_objective(spec)
    output = args.output or (spec.retrain_dir / spec.name)
    say(args, f"retraining the plan of study `{spec.name}` on the full train split ...")
    results = retrain_best_plan(spec, study, objective, output, trial=trial)
    if spec.artifacts is not None:
        _upload(study, spec.artifacts, [output / "plan.json", output / "results.json"])
    print(
        f"trial #{results['trial']} retrained on {results['train_images']} images, "
        f"{_test_accuracy(results)}"
    )
    say(
        args,
        f"wrote {output}/plan.json, results.json and {len(results['weights'])} models "
        f"(best on val: {results['best_weights']}; "
        f"then `{predict_hint(spec, output)}`)",
    )
    return 0


def _recorded(spec: StudySpec, study: optuna.Study, trial: optuna.trial.FrozenTrial | None) -> int:
    """A replayed study's plan is not trained again: its runs' test accuracy is in the table."""
    if trial is None:
        recommendation = current_recommendation(study)
        if recommendation is None:
            raise UsageError(f"study `{study.study_name}` has no complete trial yet")
        trial = recommendation.trial
    result = build_objective(spec).recorded_test(trial.params)
    per_run = result["test_macro_accuracy_per_run"]
    if not per_run:
        print(f"trial #{trial.number} fine-tunes nothing: the table records no run of it")
        return 0
    accuracy = format_mean_std(per_run) if len(per_run) > 1 else f"{per_run[0]:.4f}"
    print(
        f"trial #{trial.number} (plan {result['table_code']} of table {spec.table.name}): "
        f"recorded test macro accuracy {accuracy} over {len(per_run)} runs "
        "(each run's best-validation weights; read from the table, nothing trained)"
    )
    return 0


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
        UsageError: If the study has no such trial, or it is not complete.
    """
    matches = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not matches or matches[0].state != optuna.trial.TrialState.COMPLETE:
        raise UsageError(f"study `{spec.name}` has no complete trial #{number}")
    return matches[0]


def _upload(study: optuna.Study, artifacts: Path, files: list[Path]) -> None:
    """Upload ``files`` to the study in the artifact store at ``artifacts`` (for the UI)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifacts))
    for path in files:
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
