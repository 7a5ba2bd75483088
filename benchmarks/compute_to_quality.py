"""Compute to quality: how much training each method spends until its recommended plan is as
good on the test split as the paper preset's final plan.

On the race task with epochs to spare (``benchmarks/specs/digits_compute_race.toml``: the
sampler race's EfficientNet-Lite0 -> digits task at <= 4 epochs, patience 3), every method of
:data:`METHODS` runs 75 trials (5 BioTune generations) per seed: the paper preset and
BioTune-plus at full fidelity, BioTune-plus and TPE under Successive Halving (rungs at 1, 2
and 4 epochs), TPE at full fidelity and random search under Hyperband. For each study:

- the **cumulative training epochs** after each finished trial: a COMPLETE trial's ``epochs``
  user attr (the mean over its training seeds of the epochs run), a PRUNED trial's reported
  epochs (``len(trial.intermediate_values)``);
- the **cumulative training seconds**: ``wall_time_s``, or for a pruned trial its start to
  completion;
- at every ``--step`` trials and at the full budget, the **recommended plan**
  (:func:`biotune_optuna.recommendation.recommend` among the first B finished trials) retrained
  on the whole train split and tested, training seeds 0 and 1 (``sampler_race.py``'s
  :func:`~sampler_race.retrain_scores`, cached per plan and protocol).

The **level** is the paper preset's final test accuracy (median over its seeds at the full
budget); a study **reaches** it at the first budget point whose test accuracy is at least the
level less the std over the paper preset's seeds. The table gives, per method, the epochs and
seconds until then (median and IQR over the seeds that reach it), their ratios to the paper
preset's total epochs and seconds for the full budget, and the final test accuracy.

    .venv/bin/python benchmarks/compute_to_quality.py --threads 1 run --parallel 2
    .venv/bin/python benchmarks/compute_to_quality.py --threads 1 score --parallel 2
    .venv/bin/python benchmarks/compute_to_quality.py report

Outputs: ``results/compute_to_quality.md`` and ``results/compute_to_quality.json``; the
studies live in ``results/compute_race.db``, the scored records in
``results/compute_to_quality_records.json`` and the retrains in
``results/compute_to_quality_retrains.json`` (both written under a file lock, so two ``score``
processes may share them).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import dataclasses
import fcntl
import functools
import json
import math
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Any
from typing import NamedTuple


sys.path.insert(0, str(Path(__file__).resolve().parent))  # paper_table, sampler_race

from _race_tables import format_median_iqr
import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import paper_table
import sampler_race


HERE = paper_table.HERE
RESULTS = paper_table.RESULTS
SPEC = HERE / "specs" / "digits_compute_race.toml"
STEM = RESULTS / "compute_to_quality"
RECORDS = RESULTS / "compute_to_quality_records.json"
RETRAINS = RESULTS / "compute_to_quality_retrains.json"
STEP = 15
REFERENCE = "biotune"
TARGET_METHOD = "biotune-plus+sh"
TARGET_SAVING = 10.0
MISSING = "–"


class Method(NamedTuple):
    """A row: its label, the sampler, and the pruner with its options."""

    label: str
    sampler: str
    pruner: str = "none"
    pruner_options: Mapping[str, Any] = {}


_SH = {"min_resource": 1, "reduction_factor": 2}
_HB = {"min_resource": 1, "max_resource": 4, "reduction_factor": 2}

#: The rows, by the name ``--methods`` takes.
METHODS: dict[str, Method] = {
    "biotune": Method("biotune", "biotune"),
    "biotune-plus": Method("biotune-plus", "biotune-plus"),
    "biotune-plus+sh": Method("biotune-plus + SH", "biotune-plus", "successive_halving", _SH),
    "tpe": Method("tpe", "tpe"),
    "tpe+sh": Method("tpe + SH", "tpe", "successive_halving", _SH),
    "random+hyperband": Method("random + Hyperband", "random", "hyperband", _HB),
}
#: The rows in the order they run (``--order method``): the level and the target row first.
ORDER = ("biotune", "biotune-plus+sh", "tpe+sh", "random+hyperband", "biotune-plus", "tpe")
_PRUNER_SUFFIX = {"successive_halving": "sh", "hyperband": "hyperband"}


def method_spec(base: Any, method: str, seed: int) -> Any:
    """The spec of ``method``'s study for ``seed``: the sampler race's naming
    (``compute-tpe-seed1``) with ``-sh`` / ``-hyperband`` appended for a pruner."""
    row = METHODS[method]
    spec = base.with_overrides(sampler=row.sampler, seed=seed)
    if row.pruner == "none":
        return spec
    name = f"{base.name}-{row.sampler}-{_PRUNER_SUFFIX[row.pruner]}"
    name += f"-seed{seed}" if seed != base.seed else ""
    return dataclasses.replace(
        spec, pruner=row.pruner, pruner_options=dict(row.pruner_options), name=name
    )


def trial_epochs(trial: FrozenTrial) -> float:
    """Training epochs a finished trial spent: a COMPLETE trial's ``epochs`` user attr (mean
    over its training seeds; 0 for a plan that trains nothing), else its reported epochs."""
    if trial.state == TrialState.COMPLETE and "epochs" in trial.user_attrs:
        return float(trial.user_attrs["epochs"])
    return float(len(trial.intermediate_values))


def trial_seconds(trial: FrozenTrial) -> float:
    """Training seconds of a finished trial: ``wall_time_s``, else its start to completion."""
    if "wall_time_s" in trial.user_attrs:
        return float(trial.user_attrs["wall_time_s"])
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def cumulative(values: Sequence[float]) -> list[float]:
    """Running sums of ``values``."""
    return [float(v) for v in np.cumsum(np.asarray(values, dtype=float))]


def budget_points(n_trials: int, budget: int, step: int = STEP) -> list[int]:
    """Every ``step`` trials up to ``budget``, and ``budget``, that ``n_trials`` trials reach."""
    points = sorted({*range(step, budget + 1, step), budget})
    return [b for b in points if b <= n_trials]


def study_record(
    trials: Sequence[FrozenTrial],
    method: str,
    seed: int,
    budget: int,
    score: Any,
    *,
    direction: Any = optuna.study.StudyDirection.MAXIMIZE,
    step: int = STEP,
) -> dict[str, Any]:
    """One study's record: cumulative epochs and seconds per finished trial, and at every
    budget point the recommended trial and its test score (``score(trial)`` -> accuracies per
    training seed).

    Args:
        trials: The study's finished trials in number order
            (:func:`sampler_race.finished_trials`).
        method: The row's key in :data:`METHODS`.
        seed: The study seed.
        budget: The study's full budget in trials.
        score: Retrains a trial's plan and returns its test accuracies.
        direction: The study's direction.
        step: Trials between budget points.
    """
    from biotune_optuna.recommendation import recommend

    epochs = cumulative([trial_epochs(t) for t in trials])
    seconds = cumulative([trial_seconds(t) for t in trials])
    points: dict[str, Any] = {}
    for point in budget_points(len(trials), budget, step):
        chosen = recommend(trials[:point], direction=direction)
        entry: dict[str, Any] = {"epochs": epochs[point - 1], "seconds": seconds[point - 1]}
        if chosen is not None:
            per_seed = [float(v) for v in score(chosen.trial)]
            entry.update(recommended=chosen.trial.number, rule=chosen.rule)
            entry.update(per_seed=per_seed, score=float(np.mean(per_seed)))
        points[str(point)] = entry
    return {
        "method": method,
        "label": METHODS[method].label if method in METHODS else method,
        "seed": seed,
        "budget": budget,
        "trials": len(trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "epochs_cumulative": epochs,
        "seconds_cumulative": [round(s, 3) for s in seconds],
        "points": points,
    }


def final_score(record: Mapping[str, Any]) -> float | None:
    """The test accuracy at the full budget (``None`` if the study has not reached it)."""
    return record["points"].get(str(record["budget"]), {}).get("score")


def final_total(record: Mapping[str, Any], key: str) -> float | None:
    """Total ``"epochs"`` or ``"seconds"`` at the full budget (``None`` before it)."""
    return record["points"].get(str(record["budget"]), {}).get(key)


def level_of(reference: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The level from the paper preset's records: median final test accuracy, the std over
    seeds (sample std, ``ddof=1``; 0 for one seed), the threshold ``median - std``, and the
    preset's median total epochs and seconds at its full budget."""
    finals = [(r, final_score(r)) for r in reference]
    finals = [(r, s) for r, s in finals if s is not None]
    if not finals:
        return None
    scores = [s for _, s in finals]
    std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    median = float(np.median(scores))
    return {
        "level": median,
        "std": std,
        "threshold": median - std,
        "seeds": [r["seed"] for r, _ in finals],
        "epochs": float(np.median([final_total(r, "epochs") for r, _ in finals])),
        "seconds": float(np.median([final_total(r, "seconds") for r, _ in finals])),
    }


def reached_at(record: Mapping[str, Any], threshold: float) -> dict[str, Any] | None:
    """The first budget point whose test accuracy is at least ``threshold`` (its trials,
    epochs and seconds), or ``None`` if none is."""
    for point, entry in sorted(record["points"].items(), key=lambda item: int(item[0])):
        value = entry.get("score")
        if value is not None and value >= threshold - 1e-12:
            return {"trials": int(point), "epochs": entry["epochs"], "seconds": entry["seconds"]}
    return None


def score_within(record: Mapping[str, Any], epochs: float) -> float | None:
    """The test accuracy at the last scored budget point that spent at most ``epochs``."""
    best = None
    for _, entry in sorted(record["points"].items(), key=lambda item: int(item[0])):
        if entry["epochs"] <= epochs + 1e-9 and entry.get("score") is not None:
            best = entry["score"]
    return best


def format_amount(values: Sequence[float]) -> str:
    """``median [q1, q3]`` of epochs or seconds, to the unit (``–`` for none)."""
    if not values:
        return MISSING
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.0f}" if len(values) == 1 else f"{median:.0f} [{q1:.0f}, {q3:.0f}]"


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return MISSING
    return f"{value / reference:.3f} (1/{reference / value:.1f})" if value else "0"


def method_row(records: Sequence[Mapping[str, Any]], level: Mapping[str, Any]) -> dict[str, Any]:
    """One method's numbers: seeds at the full budget, seeds that reach the level, the epochs
    and seconds until then (their medians also as ratios to the paper preset's totals), and
    the final test accuracies."""
    full = [r for r in records if final_score(r) is not None]
    reached = [(r["seed"], reached_at(r, level["threshold"])) for r in full]
    hits = [hit for _, hit in reached if hit is not None]
    epochs = [hit["epochs"] for hit in hits]
    seconds = [hit["seconds"] for hit in hits]
    median_epochs = float(np.median(epochs)) if epochs else None
    median_seconds = float(np.median(seconds)) if seconds else None
    return {
        "seeds": [r["seed"] for r in full],
        "partial_seeds": [r["seed"] for r in records if final_score(r) is None],
        "reached": len(hits),
        "not_reached_seeds": [seed for seed, hit in reached if hit is None],
        "reached_at": {str(seed): hit for seed, hit in reached},
        "epochs_to_level": epochs,
        "seconds_to_level": seconds,
        "epochs_ratio": median_epochs / level["epochs"] if median_epochs is not None else None,
        "seconds_ratio": (
            median_seconds / level["seconds"] if median_seconds is not None else None
        ),
        "final_scores": [final_score(r) for r in full],
        "total_epochs": [final_total(r, "epochs") for r in full],
        "total_seconds": [final_total(r, "seconds") for r in full],
    }


def table_rows(
    records: Sequence[Mapping[str, Any]], methods: Sequence[str], level: Mapping[str, Any]
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """The compute-to-quality table: header, rows (one per method with records) and the
    numbers behind them by method."""
    header = [
        "method",
        "seeds",
        "reached",
        "epochs to level",
        "x ref. epochs",
        "seconds to level",
        "x ref. seconds",
        "final test macro acc.",
        "total epochs",
        "total seconds",
    ]
    rows, numbers = [], {}
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        if not mine:
            continue
        row = method_row(mine, level)
        numbers[method] = row
        n = len(row["seeds"])
        rows.append(
            [
                METHODS[method].label if method in METHODS else method,
                str(n)
                + (f" (+{len(row['partial_seeds'])} partial)" if row["partial_seeds"] else ""),
                f"{row['reached']}/{n}",
                format_amount(row["epochs_to_level"]),
                _ratio(_median(row["epochs_to_level"]), level["epochs"]),
                format_amount(row["seconds_to_level"]),
                _ratio(_median(row["seconds_to_level"]), level["seconds"]),
                format_median_iqr(row["final_scores"]),
                format_amount(row["total_epochs"]),
                format_amount(row["total_seconds"]),
            ]
        )
    return header, rows, numbers


def equal_epoch_rows(
    records: Sequence[Mapping[str, Any]], methods: Sequence[str], epoch_budgets: Sequence[float]
) -> tuple[list[str], list[list[str]], dict[str, list[float | None]]]:
    """Test accuracy at equal epoch budgets: per method and budget E, the median over seeds of
    the score at the last budget point that spent at most E epochs (``n`` = seeds that have
    one)."""
    header = ["method", *(f"<= {e:.0f} epochs" for e in epoch_budgets)]
    rows, medians = [], {}
    for method in methods:
        mine = [r for r in records if r["method"] == method and final_score(r) is not None]
        if not mine:
            continue
        cells, values = [], []
        for epochs in epoch_budgets:
            scores = [s for r in mine if (s := score_within(r, epochs)) is not None]
            values.append(float(np.median(scores)) if scores else None)
            cells.append(f"{format_median_iqr(scores)} (n={len(scores)})" if scores else MISSING)
        medians[method] = values
        rows.append([METHODS[method].label if method in METHODS else method, *cells])
    return header, rows, medians


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"


def targets(
    numbers: Mapping[str, Any],
    equal: Mapping[str, list[float | None]],
    epoch_budgets: Sequence[float],
) -> list[str]:
    """The two targets in words, each said met or not (or not measurable yet)."""
    label = METHODS[TARGET_METHOD].label
    lines = []
    mine = numbers.get(TARGET_METHOD)
    if mine is None or mine["epochs_ratio"] is None:
        lines.append(
            f"- `{label}` reaches the level with >= {TARGET_SAVING:g}x fewer epochs: "
            "**not measurable** (no seed of it reached the level, or no run)."
        )
    else:
        saving = 1 / mine["epochs_ratio"] if mine["epochs_ratio"] else math.inf
        met = "met" if saving >= TARGET_SAVING else "NOT met"
        lines.append(
            f"- `{label}` reaches the level with >= {TARGET_SAVING:g}x fewer epochs than the "
            f"paper preset's full budget: **{met}** ({saving:.1f}x by the median of the "
            f"{mine['reached']} of {len(mine['seeds'])} seeds that reach it)."
        )
    if TARGET_METHOD not in equal:
        lines.append(f"- `{label}` above every other row at equal epochs: **not measurable**.")
        return lines
    for index, epochs in enumerate(epoch_budgets):
        own = equal[TARGET_METHOD][index]
        others = {m: v[index] for m, v in equal.items() if m != TARGET_METHOD}
        beaten = [
            METHODS[m].label
            for m, v in others.items()
            if own is not None and v is not None and v >= own
        ]
        if own is None:
            verdict = "no plan of its own yet"
        elif beaten:
            verdict = "NOT above " + ", ".join(f"`{b}`" for b in beaten)
        else:
            verdict = "above every other row (rows with no budget point by then count as below)"
        lines.append(f"- at <= {epochs:.0f} epochs, `{label}` is {verdict}.")
    return lines


def _epoch_budgets(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """The target method's median cumulative epochs at each of its budget points."""
    mine = [r for r in records if r["method"] == TARGET_METHOD and final_score(r) is not None]
    if not mine:
        mine = [r for r in records if r["method"] == REFERENCE and final_score(r) is not None]
    points = sorted({int(p) for r in mine for p in r["points"]})
    budgets = []
    for point in points:
        values = [r["points"][str(point)]["epochs"] for r in mine if str(point) in r["points"]]
        budgets.append(float(np.median(values)))
    return budgets


def _header(payload: Mapping[str, Any]) -> str:
    level = payload["level"]
    return (
        "# Compute to quality: training spent until the recommended plan matches the paper "
        "preset's final plan on the test split\n\n"
        f"{payload['status']}\n\n"
        + (f"{payload['note']}\n\n" if payload.get("note") else "")
        + f"Task: `{payload['spec']}`. {payload['task_cut']}\n\n"
        "**Method.** Every method runs its study to the budget on the same genes, folds and "
        "training seed per study seed. Cumulative training epochs count a COMPLETE trial's "
        "`epochs` user attr (mean over its training seeds; 0 for a plan that trains nothing) "
        "and a PRUNED trial's reported epochs; seconds are `wall_time_s`, or a pruned "
        "trial's start to completion. At every "
        f"{payload['step']} trials and at the full budget ({payload['budget']} trials), the "
        "trial that `biotune_optuna.recommendation.recommend` picks among the first B "
        "finished trials (COMPLETE ones; validation values only) is retrained on the whole "
        "train split with early stopping on the whole val split and tested once per training "
        f"seed {', '.join(map(str, payload['final_seeds']))}: its score is the mean macro test "
        "accuracy. **Level** = the paper preset's (`biotune`) median final score over its "
        f"seeds = {level['level']:.4f}; a study reaches it at the first budget point with "
        f"score >= level - std over the preset's seeds ({level['std']:.4f}, ddof=1) = "
        f"**{level['threshold']:.4f}**. Ratios are to the paper preset's median totals for "
        f"its full budget: {level['epochs']:.0f} epochs, {level['seconds']:.0f} s. Epochs "
        "and seconds to level: median [IQR] over the seeds that reach it; `reached` says how "
        "many do. Budget points are every "
        f"{payload['step']} trials, so 'to level' is rounded up to the next point.\n\n"
        f"**Targets**: `{METHODS[TARGET_METHOD].label}` reaches the level with >= "
        f"{TARGET_SAVING:g}x fewer epochs than the paper preset's full budget, and its score "
        "is above every other row's at the same epoch budget.\n\n"
    )


def write_outputs(payload: Mapping[str, Any], stem: Path = STEM) -> str:
    """``<stem>.json`` (the payload) and ``<stem>.md`` (its tables); return the markdown."""
    text = _header(payload)
    text += "## Epochs and seconds to the level\n\n" + _markdown(*payload["table"]) + "\n"
    text += (
        "## Test macro accuracy at equal epoch budgets\n\n"
        f"Budgets: `{METHODS[TARGET_METHOD].label}`'s median cumulative epochs at its budget "
        "points; a cell is the median [IQR] over seeds of the score at the last budget point "
        "that spent at most that many epochs (n = seeds with such a point; – none).\n\n"
        + _markdown(*payload["equal_table"])
        + "\n## Targets\n\n"
        + "\n".join(payload["targets"])
        + "\n\n## Commands\n\n"
        + "\n".join(f"    {c}" for c in payload["commands"])
        + f"\n\nTables written at commit {payload['commit']} of the benchmark; library "
        f"{payload['library']}; {payload['machine']}. Studies' library versions are in the "
        "JSON (`records[].library`).\n"
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    stem.with_suffix(".md").write_text(text)
    return text


def report_payload(
    records: Sequence[Mapping[str, Any]], methods: Sequence[str], seeds: Sequence[int]
) -> dict[str, Any] | None:
    """Everything the outputs show, from the scored records (``None`` without a paper preset
    study at its full budget: no level)."""
    level = level_of([r for r in records if r["method"] == REFERENCE])
    if level is None:
        return None
    header, rows, numbers = table_rows(records, methods, level)
    epoch_budgets = _epoch_budgets(records)
    equal_header, equal_rows, equal = equal_epoch_rows(records, methods, epoch_budgets)
    full = {m: len(n["seeds"]) for m, n in numbers.items()}
    partial = [m for m in methods if full.get(m, 0) < len(seeds)]
    status = (
        f"**Complete**: every method has all {len(seeds)} seeds at the full budget."
        if not partial
        else "**PARTIAL**: methods short of "
        f"{len(seeds)} seeds at the full budget: "
        + ", ".join(f"`{METHODS[m].label}` ({full.get(m, 0)})" for m in partial)
        + ". Their rows count only the seeds that finished."
    )
    return {
        "level": level,
        "table": [header, rows],
        "numbers": numbers,
        "epoch_budgets": epoch_budgets,
        "equal_table": [equal_header, equal_rows],
        "equal_medians": equal,
        "targets": targets(numbers, equal, epoch_budgets),
        "status": status,
        "methods": list(methods),
        "seeds": list(seeds),
    }


# -- storage shared by processes ------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` (for the read-merge-write of a shared file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, payload: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


class SharedRetrainCache(sampler_race.RetrainCache):
    """A :class:`~sampler_race.RetrainCache` that merges with the file under a lock on every
    write, so that several ``score`` processes can share it."""

    def put(self, key: str, value: Mapping[str, Any], protocol: tuple[str, Any]) -> None:
        with _locked(self.path):
            stored = json.loads(self.path.read_text()) if self.path.is_file() else {}
            self.retrains = {**stored.get("retrains", {}), **self.retrains, key: dict(value)}
            self.protocols = {**stored.get("protocols", {}), **self.protocols}
            self.protocols[protocol[0]] = protocol[1]
            _write_json(self.path, {"protocols": self.protocols, "retrains": self.retrains})


def store_record(record: Mapping[str, Any], path: Path = RECORDS) -> None:
    """Put one study's record into the records file (keyed by study name)."""
    with _locked(path):
        stored = json.loads(path.read_text()) if path.is_file() else {}
        stored[record["study"]] = dict(record)
        _write_json(path, stored)


def load_records(path: Path = RECORDS) -> list[dict[str, Any]]:
    """Every stored record."""
    return list(json.loads(path.read_text()).values()) if path.is_file() else []


# -- run and score --------------------------------------------------------------------------


def library_version() -> str:
    """The imported ``biotune_optuna``'s checkout: commit, and how many of its package files
    differ from it (the other engineer's work in progress)."""
    import biotune_optuna

    root = Path(biotune_optuna.__file__).resolve().parents[1]
    try:
        git = functools.partial(
            subprocess.run, cwd=root, capture_output=True, text=True, check=True
        )
        commit = git(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = git(["git", "status", "--porcelain", "biotune_optuna"]).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return f"{root} (not a git checkout)"
    return f"{root} at {commit}" + (f" + {len(dirty)} uncommitted file(s)" if dirty else "")


def run_one(base: Any, method: str, seed: int) -> None:
    """Run (or resume) one method's study for one seed to its budget."""
    from biotune_optuna.plan import plan_search_space
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import open_study
    from biotune_optuna.studies import run_to_budget
    from biotune_optuna.studies.objectives import describe_objective

    spec = method_spec(base, method, seed)
    objective = build_objective(spec)
    objective.on_plan = None
    study = open_study(
        spec,
        search_space=plan_search_space(objective.blocks),
        objective_description=describe_objective(spec),
    )
    if "library" not in study.user_attrs:
        study.set_user_attr("library", library_version())
    start = time.perf_counter()
    ran = run_to_budget(study, objective, spec.budget)
    print(
        f"{METHODS[method].label} seed {seed} ({spec.name}): {ran} trials in "
        f"{time.perf_counter() - start:.1f} s, best {study.best_value:.4f}",
        flush=True,
    )


def score_one(base: Any, method: str, seed: int, objective: Any, step: int) -> Any:
    """Score one study (if it exists) into the records file; return the objective built."""
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import load_study
    from biotune_optuna.studies.session import study_exists

    spec = method_spec(base, method, seed)
    if not study_exists(spec.storage, spec.name):
        print(f"{method} seed {seed}: no study `{spec.name}` yet", flush=True)
        return objective
    objective = objective if objective is not None else build_objective(spec)
    study = load_study(spec)
    cache, used = SharedRetrainCache(RETRAINS), set()
    score = functools.partial(
        sampler_race._score_trial, objective, spec, cache, epochs=None, used=used
    )
    trials = sampler_race.finished_trials(study)
    record = study_record(
        trials, method, seed, spec.budget, score, direction=study.direction, step=step
    )
    record.update(study=spec.name, library=study.user_attrs.get("library", "unrecorded"))
    record["retrain_seconds"] = sum(cache.retrains[k]["seconds"] for k in used)
    store_record(record)
    shown = ", ".join(f"{b}: {p.get('score', math.nan):.4f}" for b, p in record["points"].items())
    print(f"{method} seed {seed}: {record['trials']} trials, test {shown}", flush=True)
    return objective


def spawn(args: argparse.Namespace, jobs: Sequence[tuple[str, int]]) -> int:
    """Run ``args.part`` for each (method, seed) job in its own process, ``args.parallel`` at
    a time; return how many failed."""
    waiting, running, failed = list(jobs), [], 0
    while waiting or running:
        while waiting and len(running) < args.parallel:
            method, seed = waiting.pop(0)
            command = [sys.executable, str(Path(__file__).resolve()), "--threads"]
            command += [str(args.threads), args.part, "--spec", str(args.spec)]
            command += ["--methods", method, "--seeds", str(seed), "--step", str(args.step)]
            running.append(((method, seed), subprocess.Popen(command)))
        time.sleep(1.0)
        for job, process in list(running):
            if process.poll() is not None:
                running.remove((job, process))
                if process.returncode:
                    failed += 1
                    print(f"{job[0]} seed {job[1]}: exit {process.returncode}", flush=True)
    return failed


def report(args: argparse.Namespace) -> None:
    """The tables from the records file (and the commands that made them)."""
    records = [r for r in load_records() if r["method"] in args.methods]
    records = [r for r in records if r["seed"] in args.seeds]
    payload = report_payload(records, args.methods, args.seeds)
    if payload is None:
        print("no paper preset study at its full budget yet: no level", flush=True)
        return
    spec = args.spec.resolve()
    budget = max((r["budget"] for r in records), default=0)
    payload.update(
        spec=str(spec.relative_to(HERE.parent)) if spec.is_relative_to(HERE.parent) else str(spec),
        task_cut=sampler_race.spec_comments(spec),
        step=args.step,
        budget=budget,
        final_seeds=list(sampler_race.FINAL_SEEDS),
        commands=_commands(args),
        note=args.note,
        commit=paper_table._commit(),
        library=library_version(),
        machine=paper_table._machine(),
        records=records,
    )
    print(write_outputs(payload))


def _commands(args: argparse.Namespace) -> list[str]:
    script = "cd /work/wt-bench && nice -n 10 /work/main/.venv/bin/python "
    script += "benchmarks/compute_to_quality.py"
    seeds = f"--seeds {','.join(map(str, args.seeds))} --parallel 2 --order method"
    return [
        f"{script} --threads 1 run --methods {','.join(args.methods)} {seeds}",
        f"{script} --threads 1 score --methods {','.join(args.methods)} {seeds}",
        f"{script} report --methods {','.join(args.methods)} --seeds {seeds.split()[1]}",
    ]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _methods(text: str) -> list[str]:
    methods = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(METHODS)}")
    return methods


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", type=Path, default=SPEC)
    common.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4])
    common.add_argument("--methods", type=_methods, default=list(ORDER))
    common.add_argument("--step", type=int, default=STEP, help="trials between budget points")
    common.add_argument("--parallel", type=int, default=1, help="processes (one per study)")
    common.add_argument("--note", default="", help="how this session ran, for the header")
    common.add_argument(
        "--order",
        choices=("seed", "method"),
        default="seed",
        help="seed-major (whole seeds first) or method-major (the methods' order first)",
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    sub = parser.add_subparsers(dest="part", required=True)
    sub.add_parser("run", parents=[common], help="run or resume the studies")
    sub.add_parser("score", parents=[common], help="retrain the recommended plans")
    sub.add_parser("report", parents=[common], help="the tables from the scored records")
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.part == "report":
        report(args)
        return
    jobs = [(method, seed) for seed in args.seeds for method in args.methods]
    if args.order == "method":
        jobs = [(method, seed) for method in args.methods for seed in args.seeds]
    if args.parallel > 1 and len(jobs) > 1:
        failed = spawn(args, jobs)
        if args.part == "score":
            report(args)
        sys.exit(1 if failed else 0)
    from biotune_optuna.studies import load_spec

    base = load_spec(args.spec)
    objective = None
    for method, seed in jobs:
        if args.part == "run":
            run_one(base, method, seed)
        else:
            objective = score_one(base, method, seed, objective, args.step)
    if args.part == "score" and len(jobs) > 1:
        report(args)


if __name__ == "__main__":
    main()
