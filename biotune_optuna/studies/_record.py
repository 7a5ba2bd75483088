"""Record a plan table: every plan of the grid trained by the engine, on every fold and seed.

The recorder runs the same code path as a live trial (the spec's
:class:`~biotune_optuna.finetune.FineTuneObjective`: its backbone, its data folds, its feature
cache, :func:`~biotune_optuna.finetune._training.evaluate_plan` with one training seed at a time)
and adds
the test split, scored once per run with the run's best-validation weights. Runs never stop
early (``[protocol] patience`` must be at least ``max_epochs``), so the table keeps whole
learning curves and a replay can stop a trial at any epoch.

Resumable and parallel: worker ``k`` of ``n`` records the plans whose index is ``k`` modulo
``n`` and appends each finished run, as one JSON line, to its own part file beside the table
(``<table>.part-<k>.jsonl``; the first line says what is recorded, and a part file of another
recording is refused). A worker that is stopped loses at most the run it was training; the
same command continues. The table itself is written once every run of the grid is in the part
files, by whichever worker finishes last (or by running the command again).
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import hashlib
import json
import os
from pathlib import Path
import platform
import subprocess
import time
from typing import Any

from biotune_optuna.studies._errors import SpecError
from biotune_optuna.studies._plan_table import DEFAULT_LEVELS
from biotune_optuna.studies._plan_table import grid_codes
from biotune_optuna.studies._plan_table import plan_of_code
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._spec import StudySpec


__all__ = [
    "RecordingProgress",
    "record_run",
    "record_table",
    "recording_problem",
    "table_test_split",
]


@dataclasses.dataclass(frozen=True)
class RecordingProgress:
    """Where a recording stands.

    Attributes:
        recorded: Runs in the part files.
        total: Runs of the whole grid.
        table: The table, once every run is recorded (and written).
    """

    recorded: int
    total: int
    table: PlanTable | None = None


def recording_problem(spec: StudySpec) -> str | None:
    """Why ``spec`` cannot be recorded as a table (``None``: it can)."""
    if spec.objective != "finetune":
        return "[objective] kind: a table records the fine-tuning objective"
    if spec.strategy != "biotune":
        return "[strategy] name: a table records BioTune's plans"
    protocol = spec.protocol
    if protocol.patience < protocol.max_epochs:
        return (
            f"[protocol] patience: a table records whole learning curves; set patience = "
            f"max_epochs ({protocol.max_epochs}), a replay stops trials itself"
        )
    return None


def _header(spec: StudySpec, objective: Any, levels: tuple[float, ...]) -> dict[str, Any]:
    protocol = spec.protocol
    data = objective.data
    return {
        "name": spec.name,
        "blocks": list(objective.blocks),
        "levels": list(levels),
        "base_lr": protocol.base_lr,
        "n_folds": objective.n_folds,
        "seeds": [protocol.seed + i for i in range(protocol.n_seeds)],
        "max_epochs": protocol.max_epochs,
        "protocol": dataclasses.asdict(protocol),
        "task": {
            "data": data.name,
            "source": spec.data.source if spec.data else None,
            "model": spec.model.source if spec.model else None,
            "classes": list(data.classes),
            "sizes": {
                "train": len(data.train_labels),
                "val": len(data.val_labels),
                "test": 0 if data.test_labels is None else len(data.test_labels),
            },
        },
    }


def _identity(header: dict[str, Any]) -> str:
    text = json.dumps(header, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _part(output: Path, worker: int) -> Path:
    return output.with_name(f"{output.name}.part-{worker}.jsonl")


def _read_parts(output: Path, identity: str) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Every run recorded in the part files of ``output`` (a cut last line is ignored)."""
    runs: dict[tuple[str, int, int], dict[str, Any]] = {}
    for part in sorted(output.parent.glob(f"{output.name}.part-*.jsonl")):
        lines = part.read_text().splitlines()
        if not lines:
            continue
        first = json.loads(lines[0])
        if first.get("identity") != identity:
            raise SpecError(
                f"{part}: part of another recording (spec, grid or data differ); move it away "
                f"or record to another --output"
            )
        for line in lines[1:]:
            try:
                run = json.loads(line)
            except ValueError:
                continue  # the last line of a worker that was stopped while writing it
            runs[(run["code"], run["fold"], run["seed"])] = run
    return runs


def _versions() -> dict[str, Any]:
    import optuna
    import torch

    from biotune_optuna import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "biotune_optuna": __version__,
        "commit": commit or None,
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }


def _assemble(header: dict[str, Any], runs: dict[tuple[str, int, int], Any]) -> PlanTable:
    plans: dict[str, dict[str, Any]] = {}
    for (code, fold, seed), run in sorted(runs.items()):
        share = run["trainable_fraction"]
        entry = plans.setdefault(code, {"trainable_fraction": share, "runs": []})
        entry["runs"].append([fold, seed, run["seconds"], run["test"], run["val"]])
    recorded = {
        **_versions(),
        "device": sorted({run["device"] for run in runs.values()}),
        "runs": len(runs),
        "cpu_seconds": round(sum(run["cpu_seconds"] for run in runs.values()), 1),
        "wall_seconds": round(sum(run["seconds"] for run in runs.values()), 1),
    }
    return PlanTable(
        name=header["name"],
        blocks=tuple(header["blocks"]),
        levels=tuple(header["levels"]),
        base_lr=header["base_lr"],
        n_folds=header["n_folds"],
        seeds=tuple(header["seeds"]),
        max_epochs=header["max_epochs"],
        plans=plans,
        task=header["task"],
        protocol=header["protocol"],
        recorded_with=recorded,
    )


def table_test_split(objective: Any) -> Any:
    """The objective's test images as one split, which every recorded run is scored on.

    Raises:
        SpecError: If the spec's data has no test split (``test_fraction = 0``).
    """
    import numpy as np

    from biotune_optuna.finetune._splits import DataSplit

    data = objective.data
    if data.test is None or data.test_labels is None or not len(data.test_labels):
        raise SpecError("[data] test_fraction: a table scores every run on a test split; set > 0")
    index = np.arange(len(data.test_labels))
    return DataSplit(data.test, index, data.test_labels, (id(data), "test", 0, 1))


def record_run(objective: Any, plan: Any, fold: int, seed: int, test: Any) -> dict[str, Any]:
    """One run of ``plan`` on ``fold`` with training seed ``seed``, as a part-file line."""
    from biotune_optuna.finetune._device import resolve_device
    from biotune_optuna.finetune._training import evaluate_plan

    protocol = dataclasses.replace(objective.protocol, n_seeds=1, seed=seed)
    train, val = objective.fold_splits(fold)
    cpu = time.process_time()
    result = evaluate_plan(
        objective.backbone,
        plan,
        train,
        val,
        protocol,
        num_classes=objective.data.num_classes,
        test=test,
        cache=objective.cache,
    )
    run = result.runs[0]
    return {
        "fold": fold,
        "seed": seed,
        "seconds": round(result.seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "test": round(float(run.test_macro_accuracy or 0.0), 6),
        "val": [round(float(v), 6) for v in run.history],
        "trainable_fraction": round(result.trainable_fraction, 6),
        "device": str(resolve_device(protocol.device)),
    }


def record_table(
    spec: StudySpec,
    *,
    output: Path,
    worker: int = 0,
    workers: int = 1,
    levels: tuple[float, ...] = DEFAULT_LEVELS,
    on_run: Callable[[int, int], None] | None = None,
) -> RecordingProgress:
    """Record (or continue recording) the spec's plan table into ``output``.

    Args:
        spec: A fine-tuning spec: its model and ``[model] blocks`` give the grid's blocks, its
            data and protocol the runs (``n_seeds`` training seeds on each fold).
        output: The table's file (``.json.gz``); part files go beside it.
        worker: This worker's index, ``0 <= worker < workers``.
        workers: How many workers share the grid.
        levels: The learning-rate multipliers of the grid.
        on_run: Called as ``on_run(done, todo)`` after each run of this worker.

    Returns:
        Where the recording stands, with the table once it is complete (written to ``output``).

    Raises:
        SpecError: If the spec cannot be recorded, or a part file belongs to another recording.
    """
    from biotune_optuna.studies._objectives import build_objective

    problem = recording_problem(spec)
    if problem is not None:
        raise SpecError(f"{spec.source}: {problem}")
    objective = build_objective(spec)
    header = _header(spec, objective, levels)
    identity = _identity(header)
    codes = grid_codes(len(objective.blocks), len(levels))
    grid = [(c, f, s) for c in codes for f in range(header["n_folds"]) for s in header["seeds"]]
    runs = _read_parts(output, identity)
    position = {code: i for i, code in enumerate(codes)}
    mine = [key for key in grid if position[key[0]] % workers == worker]
    todo = [key for key in mine if key not in runs]
    if todo:
        test = table_test_split(objective)
        part = _part(output, worker)
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "a") as handle:
            if handle.tell() == 0:
                handle.write(json.dumps({"identity": identity, **header}, sort_keys=True) + "\n")
            elif not part.read_bytes().endswith(b"\n"):
                handle.write("\n")  # after the cut line of a worker stopped while writing
            for done, (code, fold, seed) in enumerate(todo, start=1):
                plan = plan_of_code(code, objective.blocks, levels, base_lr=header["base_lr"])
                line = {"code": code, **record_run(objective, plan, fold, seed, test)}
                handle.write(json.dumps(line, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                if on_run is not None:
                    on_run(done, len(todo))
        runs = _read_parts(output, identity)
    if len(runs) < len(grid):
        return RecordingProgress(len(runs), len(grid))
    table = _assemble(header, runs)
    table.save(output)
    return RecordingProgress(len(runs), len(grid), table)
