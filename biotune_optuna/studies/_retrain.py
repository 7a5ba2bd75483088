"""Retrain a study's recommended plan on the whole train split and test it once per seed (torch).

The search scores plans on one fold of the data (arXiv:2508.15367, §III). The final model is
trained with the study's recommended plan (chosen by an estimate robust to fold and seed noise,
not the luckiest evaluation:
:func:`~biotune_optuna.studies._recommendation.current_recommendation`) on
the full train split, with early stopping on the full val split, and the test split is used
once per seed: the paper's reported number, mean ± std of the macro accuracy over the
protocol's seeds.

One retrain at a time writes an output directory (a lock file beside it; another is refused),
into a new directory that then replaces it: a reader sees the old files or the new ones, never a
mix, and a retrain that is killed leaves the old ones.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import re
import shutil
from typing import Any

from filelock import FileLock
from filelock import Timeout
import numpy as np
import optuna

from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import masked_data


__all__ = ["final_evaluation", "retrain_best_plan", "test_summary"]

#: The files a retrain writes (:func:`_write_outputs`): all that it replaces in an output.
_RETRAIN_FILE = re.compile(r"plan\.json|results\.json|model_seed\d+\.pt")


def final_evaluation(
    objective: Any, strategy: Any, protocol: Any, *, keep_models: bool = False
) -> Any:
    """Train ``strategy`` on the whole train split (early stopping on the whole val split) and
    test every seed's best epoch once: the number a paper reports.

    Args:
        objective: A :class:`~biotune_optuna.finetune.FineTuneObjective` (backbone, data, cache).
        strategy: A :class:`~biotune_optuna.finetune.FineTuneStrategy` (a plan or a baseline).
        protocol: The training protocol (its ``n_seeds`` seeds are run).
        keep_models: Return the trained models.

    Returns:
        The :class:`~biotune_optuna.finetune._results.PlanEvaluation`, each run with its test
        accuracy.
    """
    from biotune_optuna.finetune._splits import DataSplit
    from biotune_optuna.finetune._training import evaluate_plan

    data = objective.data
    if data.test is None:
        raise SpecError("[data] test_fraction: the data has no test split to report on")

    def whole(dataset: Any, labels: np.ndarray, part: str) -> DataSplit:
        return DataSplit(dataset, np.arange(len(labels)), labels, (id(data), part, "all"))

    return evaluate_plan(
        objective.backbone,
        strategy,
        whole(data.train, data.train_labels, "train"),
        whole(data.val, data.val_labels, "val"),
        protocol,
        num_classes=data.num_classes,
        test=whole(data.test, data.test_labels, "test"),
        cache=objective.cache,
        keep_models=keep_models,
    )


def test_summary(result: Any) -> dict[str, Any]:
    """Per-seed and mean ± std test macro accuracy, trainable share and time of a result."""
    test = [run.test_macro_accuracy for run in result.runs]
    return {
        "seeds": [run.seed for run in result.runs],
        "test_macro_accuracy_per_seed": test,
        "test_macro_accuracy_mean": float(np.mean(test)) if test else 0.0,
        "test_macro_accuracy_std": float(np.std(test)) if test else 0.0,
        "test_top1_accuracy_per_seed": [run.test_top1_accuracy for run in result.runs],
        "val_macro_accuracy_per_seed": [run.macro_accuracy for run in result.runs],
        "epochs_per_seed": result.epochs,
        "trainable_fraction": result.trainable_fraction,
        "frozen_blocks": list(result.frozen_blocks),
        "seconds": result.seconds,
    }


def retrain_best_plan(
    spec: StudySpec,
    study: optuna.Study,
    objective: Any,
    output: Path,
    *,
    trial: optuna.trial.FrozenTrial | None = None,
) -> dict[str, Any]:
    """Retrain the recommended (or the given) trial's plan; save weights, plan and results.

    Works for BioTune studies and for baseline-strategy studies (the trial's hyperparameters).

    Args:
        spec: The study's spec (protocol and data).
        study: The study.
        objective: The spec's :class:`~biotune_optuna.finetune.FineTuneObjective`.
        output: Directory for ``plan.json``, ``results.json`` and ``model_seed<k>.pt``: per
            seed the model with its plan, classes, preprocessing and scores, for
            :func:`~biotune_optuna.finetune.load_finetuned`. It is replaced as a whole, once
            every file is written; only one retrain at a time writes it.
        trial: The trial whose plan to retrain (default: the study's recommended one, see
            :func:`~biotune_optuna.studies._recommendation.current_recommendation`).

    Returns:
        The results, as written to ``results.json`` (``best_seed`` and ``best_weights``: the
        seed best on validation, which ``load_finetuned(output)`` loads).

    Raises:
        SpecError: If the spec cannot be retrained, the study has no complete trial, another
            retrain is writing ``output`` or ``output`` holds files a retrain did not write.
    """
    if spec.objective != "finetune":
        raise SpecError(f"{spec.source}: retrain needs a fine-tuning objective")
    data = objective.data
    if data.test is None:
        raise SpecError(
            f"{spec.source}: [data] test_fraction: the data has no test split to report on"
        )
    recommendation = None
    if trial is None:
        recommendation = current_recommendation(study)
        if recommendation is None:
            raise SpecError(f"study `{study.study_name}` has no complete trial yet")
        trial = recommendation.trial
    strategy = objective.strategy_of(trial.params)
    header = {
        "study": study.study_name,
        "trial": trial.number,
        "search_value": trial.value,
        # How the trial was chosen: the study's recommendation, or null when it was given.
        "recommendation": recommendation.to_record() if recommendation is not None else None,
    }
    with _replacing(output) as staging:
        result = final_evaluation(objective, strategy, spec.protocol, keep_models=True)
        return _write_outputs(spec, objective, strategy, result, staging, header=header)


def _write_outputs(
    spec: StudySpec,
    objective: Any,
    strategy: Any,
    result: Any,
    output: Path,
    *,
    header: dict[str, Any],
) -> dict[str, Any]:
    """Write the models, ``plan.json`` and ``results.json`` (``header`` first: study, trial,
    its value and recommendation) into ``output``; the results."""
    data = objective.data
    origin = {"study": header["study"], "trial": header["trial"], "data": data.name}
    weights = _save_models(spec, objective, strategy.describe(), result, output, origin=origin)
    results = {
        **header,
        "model": spec.model.source if spec.model is not None else None,
        "data": data.name,
        "train_images": len(data.train_labels),
        "val_images": len(data.val_labels),
        "test_images": len(data.test_labels),
        **test_summary(result),
        "weights": [path.name for path in weights.values()],
        **_best_seed(result, weights),
    }
    # Outputs are shared and uploaded as artifacts: no password of a URL goes into them.
    # Masked before serialising: they are read back, so keys and numbers stay as they are.
    plan = masked_data(strategy.describe())
    (output / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    (output / "results.json").write_text(json.dumps(masked_data(results), indent=2) + "\n")
    return results


@contextlib.contextmanager
def _replacing(output: Path) -> Iterator[Path]:
    """A new directory to write ``output``'s files into; it replaces ``output`` when the block
    ends without an exception (else it is removed and ``output`` is left as it was). The block
    holds the lock of ``output``.

    Raises:
        SpecError: If another retrain holds the lock of ``output``, or ``output`` is not a
            retrain's output directory (nor missing or empty).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(output.parent / f".{output.name}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise SpecError(
            f"{output}: another retrain is writing there now; wait for it or choose another "
            "output directory"
        ) from None
    try:
        _tidy(output)
        staging = output.parent / f".{output.name}.new"
        staging.mkdir()
        try:
            yield staging
            old = _old(output)
            if output.exists():
                os.replace(output, old)
            os.replace(staging, output)  # a process killed just before: see _tidy
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()


def _old(output: Path) -> Path:
    """Where ``output`` goes while its new files take its place."""
    return output.parent / f".{output.name}.old"


def _tidy(output: Path) -> None:
    """Undo what a killed retrain of ``output`` left (under its lock): put the old files back
    if they were moved aside, remove unfinished new ones; check that ``output`` may be replaced.

    Raises:
        SpecError: If ``output`` is a file, or a directory that holds anything but what a
            retrain writes (``plan.json``, ``results.json``, ``model_seed<k>.pt``) or no
            ``results.json``.
    """
    old = _old(output)
    if old.is_dir() and not output.exists():
        os.replace(old, output)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(output.parent / f".{output.name}.new", ignore_errors=True)
    if output.exists() and not output.is_dir():
        raise SpecError(f"{output}: is a file, not an output directory")
    entries = sorted(output.iterdir()) if output.is_dir() else []
    if entries:
        other = [p for p in entries if not (p.is_file() and _RETRAIN_FILE.fullmatch(p.name))]
        if other or not (output / "results.json").is_file():
            raise SpecError(
                f"{output}: holds {(other or entries)[0].name!r}, which retrain did not write "
                "(it replaces the whole directory); move it out or choose a new or empty "
                "output directory"
            )


def _save_models(
    spec: StudySpec,
    objective: Any,
    plan: dict[str, Any],
    result: Any,
    output: Path,
    *,
    origin: dict[str, Any],
) -> dict[int, Path]:
    """Write each seed's model as ``output/model_seed<k>.pt`` (see
    :func:`~biotune_optuna.finetune._export.save_finetuned`), its results being ``origin`` (study,
    trial, data) and the seed's scores; the files by seed."""
    from biotune_optuna.finetune._export import save_finetuned
    written = {}
    for run, model in zip(result.runs, result.models, strict=True):
        written[run.seed] = save_finetuned(
            model,
            output / f"model_seed{run.seed}.pt",
            backbone=objective.backbone,
            classes=objective.data.classes,
            image_size=spec.protocol.image_size,
            plan=plan,
            head=spec.model.head if spec.model is not None else None,
            results={
                **origin,
                "seed": run.seed,
                "val_macro_accuracy": run.macro_accuracy,
                "test_macro_accuracy": run.test_macro_accuracy,
                "test_top1_accuracy": run.test_top1_accuracy,
            },
        )
    return written


def _best_seed(result: Any, weights: dict[int, Path]) -> dict[str, Any]:
    """The seed with the best validation macro accuracy (the first of ties), and its file."""
    best = max(result.runs, key=lambda run: run.macro_accuracy)
    return {"best_seed": best.seed, "best_weights": weights[best.seed].name}
