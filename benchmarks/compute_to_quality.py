"""Compute to quality: how much training each method spends until its recommended plan is as
good on the test split as the paper preset's final plan.

On the race task with epochs to spare (``benchmarks/specs/digits_compute_race.toml``: the
sampler race's EfficientNet-Lite0 -> digits task at <= 4 epochs, patience 3), every method of
:data:`METHODS` runs 75 trials (5 BioTune generations) per seed: the paper preset and
BioTune-plus at full fidelity, BioTune-plus and TPE under Successive Halving (rungs at 1, 2
and 4 epochs), TPE at full fidelity and random search under Hyperband. For each study:

- the **cumulative training epochs** after each finished trial: a COMPLETE trial's ``epochs``
  user attr (the mean over its training seeds of the epochs run), a PRUNED trial's reported
  epochs (``len(trial.intermediate_values)``), and a FAIL trial's ``epochs`` user attr or else
  its reported epochs (a failed trial does not count towards the budget; its cost counts from
  the next finished trial on). Records scored before failed trials were counted carry no
  ``failed`` field; the report says how many there are;
- the **cumulative training seconds**: ``wall_time_s``, or for a pruned or failed trial its
  start to completion;
- at every ``--step`` trials and at the full budget, the **recommended plan**
  (:func:`biotune_optuna.studies.recommend` among the first B finished trials) retrained
  on the whole train split and tested, training seeds 0 and 1 (``sampler_race.py``'s
  :func:`~sampler_race.retrain_scores`, cached per plan and protocol).

The **level** is the paper preset's final test accuracy (median over its seeds at the full
budget); a study **reaches** it at the first budget point whose test accuracy is at least the
level less the std over the paper preset's seeds. The table gives, per method, the epochs and
seconds until then (median and IQR over the seeds that reach it), their ratios to the paper
preset's total epochs and seconds for the full budget, and the final test accuracy.

The fair, powered compute comparison lives in ``benchmarks/table_race.py``: every sampler and
the multi-fidelity variants replayed on recorded plan tables, 30 seeds, epochs to the level as
both ratios (to the paper protocol's full budget and to the paper preset's own epochs to the
level). This live table (5 seeds of live training on a cut-down task) is kept as a small live
check.

Run from the repository root; the published commands are relative to it (``report`` also
makes relative the commands an older JSON recorded with a ``cd``, ``nice`` or absolute
path)::

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
import re
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
    """Training epochs a finished or failed trial spent.

    A COMPLETE or FAIL trial's ``epochs`` user attr (mean over its training seeds; 0 for a plan
    that trains nothing) when it has one, else its reported epochs (a PRUNED trial's rungs, a
    failed trial's epochs before it failed).

    Args:
        trial: A COMPLETE, PRUNED or FAIL trial.

    Returns:
        The epochs it trained.
    """
    from biotune_optuna.trials import spent_epochs

    return spent_epochs(trial)  # a continuation's or retry's own epochs, not those it resumed


def trial_seconds(trial: FrozenTrial) -> float:
    """Training seconds of a finished or failed trial: ``wall_time_s``, else its start to
    completion."""
    from biotune_optuna.trials import WALL_TIME_ATTR

    if WALL_TIME_ATTR in trial.user_attrs:
        return float(trial.user_attrs[WALL_TIME_ATTR])
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def cumulative(values: Sequence[float]) -> list[float]:
    """Running sums of ``values``."""
    return [float(v) for v in np.cumsum(np.asarray(values, dtype=float))]


def cumulative_with_failures(
    trials: Sequence[FrozenTrial], failed: Sequence[FrozenTrial], cost: Any
) -> list[float]:
    """Running sums of ``cost`` after each of ``trials``, counting every failed trial too.

    Args:
        trials: The finished (COMPLETE and PRUNED) trials in number order.
        failed: The FAIL trials; each counts from the first finished trial numbered after it.
        cost: ``cost(trial)`` -> epochs or seconds.

    Returns:
        One running sum per finished trial.
    """
    failing = {id(t) for t in failed}
    totals, total = [], 0.0
    for trial in sorted([*trials, *failed], key=lambda t: t.number):
        total += float(cost(trial))
        if id(trial) not in failing:
            totals.append(total)
    return totals


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
    failed: Sequence[FrozenTrial] = (),
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
        failed: The study's FAIL trials: their epochs and seconds count (from the next
            finished trial on) though they do not count towards the budget.

    Returns:
        The record; ``failed`` and ``failed_epochs`` say what the failed trials before the
        last finished one added.
    """
    from biotune_optuna.studies import recommend

    last = trials[-1].number if trials else -1
    failed = [t for t in failed if t.number < last]
    epochs = cumulative_with_failures(trials, failed, trial_epochs)
    seconds = cumulative_with_failures(trials, failed, trial_seconds)
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
        "failed": len(failed),
        "failed_epochs": sum(trial_epochs(t) for t in failed),
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


MARK = "†"
POWERED = (
    "**Powered comparison.** The fair, powered compute comparison now lives in "
    "`benchmarks/table_race.py`: every sampler and the multi-fidelity variants replayed on "
    "recorded plan tables, 30 seeds per table, epochs to the level as both ratios (to the "
    "paper protocol's full budget and to the paper preset's own epochs to the level). This "
    "live table (a few seeds of live training on a cut-down task) is kept as a small live "
    "check."
)
_PRUNER_NAME = {"successive_halving": "Successive halving", "hyperband": "Hyperband"}


def _label(method: str) -> str:
    return METHODS[method].label if method in METHODS else method


def _row_order(record: Mapping[str, Any]) -> tuple[int, int]:
    method = record["method"]
    return (ORDER.index(method) if method in ORDER else len(ORDER), int(record["seed"]))


def _span(values: Sequence[float]) -> str:
    """``lo-hi`` of ``values`` to the unit, or one number when they round alike."""
    low, high = f"{min(values):.0f}", f"{max(values):.0f}"
    return low if low == high else f"{low}-{high}"


def trial_costs(record: Mapping[str, Any]) -> list[float]:
    """Epochs per finished trial of a record: the steps of its cumulative epochs.

    Args:
        record: A study's record (:func:`study_record`).

    Returns:
        One value per finished trial (a failed trial's epochs, in newer records, fall into
        the next finished trial's step).
    """
    return [float(c) for c in np.diff([0.0, *record.get("epochs_cumulative", [])])]


def _full_fidelity_twin(method: str) -> str | None:
    """The row with ``method``'s sampler and no pruner (``None`` if there is none)."""
    sampler = METHODS[method].sampler
    twins = (m for m, row in METHODS.items() if row.sampler == sampler and row.pruner == "none")
    return next(twins, None)


def _first_point_text(
    mine: Sequence[Mapping[str, Any]], level: Mapping[str, Any], costs: Sequence[float]
) -> str:
    """The caveat's first sentences: the cost of the target row's first scored point
    against the epochs a ``TARGET_SAVING``-fold saving leaves."""
    label, own = METHODS[TARGET_METHOD].label, [c for r in mine for c in trial_costs(r)]
    first = min(int(p) for r in mine for p in r["points"])
    firsts = [(r["seed"], r["points"][str(first)]) for r in mine if str(first) in r["points"]]
    spent = [entry["epochs"] for _, entry in firsts]
    allowance = level["epochs"] / TARGET_SAVING
    text = (
        f"**Caveat.** Trials spend at most {max(costs):g} epochs each, and every trial that "
        f"trains spends at least {min((c for c in costs if c > 0), default=0.0):g} "
        f"({sum(c == 0 for c in own)} of the {len(own)} trials of `{label}` spend none), so "
        f"the first scored point ({first} trials) already costs about {np.median(spent):.0f} "
        f"epochs for `{label}` (median over its {len(spent)} studies; {_span(spent)}). "
        f"So a {TARGET_SAVING:g}x saving ({allowance:.0f} of the paper preset's "
        f"{level['epochs']:.0f} epochs) "
    )
    inside = [(seed, e) for seed, e in firsts if e["epochs"] <= allowance + 1e-9]
    if not inside:
        return text + "would have to come before any scored point: the target cannot be shown "
    shown = "; ".join(
        f"seed {seed}: {e['epochs']:.0f} epochs, test "
        + (f"{e['score']:.4f}" if e.get("score") is not None else "no plan yet")
        for seed, e in inside
    )
    return text + (
        f"leaves at most that first point, and only {len(inside)} of {len(firsts)} studies "
        f"{'has' if len(inside) == 1 else 'have'} it within {allowance:.0f} epochs ({shown}; "
        "threshold "
        f"{level['threshold']:.4f}): for the others the target cannot be shown "
    )


def caveat(records: Sequence[Mapping[str, Any]], level: Mapping[str, Any]) -> str | None:
    """Why the epoch-saving target can hardly show on this task, from the records.

    Every number is computed: the largest and smallest non-zero per-trial epochs, the epochs
    of the target row's first scored point, the epochs a ``TARGET_SAVING``-fold saving leaves,
    the total epochs of the target row and of its sampler without a pruner, and the pruned
    trials per study.

    Args:
        records: The scored records of the report.
        level: :func:`level_of` the paper preset's records.

    Returns:
        The paragraph, or ``None`` without target-row records at the full budget.
    """
    mine = [r for r in records if r["method"] == TARGET_METHOD and final_score(r) is not None]
    mine = sorted((r for r in mine if r.get("epochs_cumulative")), key=_row_order)
    if not mine:
        return None
    costs = [c for r in records for c in trial_costs(r)]
    text = _first_point_text(mine, level, costs) + "on this cut-down task. "
    after = [final_total(r, "epochs") for r in mine]
    twin = _full_fidelity_twin(TARGET_METHOD)
    before = [
        final_total(r, "epochs")
        for r in records
        if r["method"] == twin and final_score(r) is not None
    ]
    cut = f"from {np.median(before):.0f} (`{_label(twin)}`) " if before else ""
    pruner = _PRUNER_NAME.get(METHODS[TARGET_METHOD].pruner, "The pruner")
    return text + (
        f"{pruner} cut the median total epochs {cut}to about {np.median(after):.0f} "
        f"(`{_label(TARGET_METHOD)}`; {_span(after)} per study), pruning "
        f"{_span([r['pruned'] for r in mine])} of {mine[0]['budget']} trials per study."
    )


def library_versions(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping]]:
    """The records by library version (without a path), most studies first.

    Args:
        records: The scored records.

    Returns:
        Version -> its records in row and seed order.
    """
    versions: dict[str, list[Mapping]] = {}
    for record in sorted(records, key=_row_order):
        version = library_label(record.get("library", "unrecorded"))
        versions.setdefault(version, []).append(record)
    return dict(sorted(versions.items(), key=lambda item: (-len(item[1]), item[0])))


def version_note(records: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """The note on the studies' library versions and the methods whose rows it marks.

    Args:
        records: The scored records.

    Returns:
        One line when every study ran on the same version; else a footnote listing each
        version's rows and seeds, and the methods with a study off the most common version
        (their rows are marked :data:`MARK`).
    """
    versions = library_versions(records)
    if len(versions) <= 1:
        version = next(iter(versions), "unrecorded")
        return f"All {len(records)} studies ran on the same library version, `{version}`.", []
    common = next(iter(versions))
    off = {r["method"] for v, mine in versions.items() if v != common for r in mine}
    marked = [m for m in dict.fromkeys(r["method"] for r in versions[common]) if m in off]
    marked += sorted(off - set(marked))
    lines = [
        f"{MARK} **Mixed library versions**: the studies ran on {len(versions)} library "
        f"versions; rows marked {MARK} have studies on a version other than the most common "
        f"one (`{common}`).\n"
    ]
    for version, mine in versions.items():
        seeds: dict[str, list[int]] = {}
        for record in mine:
            seeds.setdefault(record["method"], []).append(record["seed"])
        rows = "; ".join(
            f"`{_label(m)}` seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"
            for m, s in seeds.items()
        )
        count = f"{len(mine)} stud{'ies' if len(mine) > 1 else 'y'}"
        lines.append(f"- `{version}` ({count}): {rows}")
    return "\n".join(lines), marked


def _mark(rows: Sequence[Sequence[str]], marked: Sequence[str]) -> list[list[str]]:
    labels = {_label(m) for m in marked}
    return [[f"{r[0]} {MARK}", *r[1:]] if r[0] in labels else list(r) for r in rows]


def failed_note(records: Sequence[Mapping[str, Any]]) -> str:
    """What the records say about failed trials' epochs.

    Args:
        records: The scored records; those scored since failed trials count carry
            ``failed`` and ``failed_epochs``.

    Returns:
        The sentences for the method paragraph.
    """
    counted = [r for r in records if "failed" in r]
    old = len(records) - len(counted)
    text = ""
    if counted:
        failed = sum(r["failed"] for r in counted)
        epochs = sum(r.get("failed_epochs", 0.0) for r in counted)
        text = (
            f"The {len(counted)} records scored with failed trials counted hold {failed} "
            f"failed trial(s), {epochs:g} epochs. "
        )
    if old:
        which = "All" if not counted else f"{old} of"
        text += (
            f"**{which} {len(records)} records were scored before failed trials were "
            "counted** (no `failed` field): their cumulative epochs and seconds leave out any "
            "FAIL trial of their studies, and the records do not say whether there were any "
            "(re-running `score` counts them)."
        )
    return text.strip()


def _method_text(payload: Mapping[str, Any]) -> str:
    level = payload["level"]
    failed = f" {payload['failed_note']}" if payload.get("failed_note") else ""
    return (
        "**Method.** Every method runs its study to the budget on the same genes, folds and "
        "training seed per study seed. Cumulative training epochs count a COMPLETE trial's "
        "`epochs` user attr (mean over its training seeds; 0 for a plan that trains nothing), "
        "a PRUNED trial's reported epochs, and a FAIL trial's `epochs` user attr or else its "
        "reported epochs (a failed trial does not count towards the budget; its cost counts "
        "from the next finished trial on); seconds are `wall_time_s`, or a pruned or failed "
        f"trial's start to completion.{failed} At every "
        f"{payload['step']} trials and at the full budget ({payload['budget']} trials), the "
        "trial that `biotune_optuna.studies.recommend` picks among the first B "
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
        f"{payload['step']} trials, so 'to level' is rounded up to the next point."
    )


def _header(payload: Mapping[str, Any]) -> str:
    return (
        "# Compute to quality: training spent until the recommended plan matches the paper "
        "preset's final plan on the test split\n\n"
        f"{payload['status']}\n\n"
        + (f"{payload['note']}\n\n" if payload.get("note") else "")
        + f"{POWERED}\n\n"
        + f"Task: `{payload['spec']}`. {payload['task_cut']}\n\n"
        + f"{_method_text(payload)}\n\n"
        f"**Targets**: `{METHODS[TARGET_METHOD].label}` reaches the level with >= "
        f"{TARGET_SAVING:g}x fewer epochs than the paper preset's full budget, and its score "
        "is above every other row's at the same epoch budget.\n\n"
        + (f"{payload['caveat']}\n\n" if payload.get("caveat") else "")
    )


def render_markdown(payload: Mapping[str, Any]) -> str:
    """The markdown of a payload; commands and library versions made path-free on read.

    Args:
        payload: :func:`report_payload` with what :func:`report` adds (an older JSON's
            payload renders too).

    Returns:
        The markdown text.
    """
    versions = f"{payload['versions']}\n\n" if payload.get("versions") else ""
    commands = "\n".join(f"    {relative_command(c)}" for c in payload["commands"])
    return (
        _header(payload)
        + "## Epochs and seconds to the level\n\n"
        + _markdown(*payload["table"])
        + f"\n{versions}"
        + "## Test macro accuracy at equal epoch budgets\n\n"
        f"Budgets: `{METHODS[TARGET_METHOD].label}`'s median cumulative epochs at its budget "
        "points; a cell is the median [IQR] over seeds of the score at the last budget point "
        "that spent at most that many epochs (n = seeds with such a point; – none).\n\n"
        + _markdown(*payload["equal_table"])
        + "\n## Targets\n\n"
        + "\n".join(payload["targets"])
        + f"\n\n## Commands\n\nRun from the repository root.\n\n{commands}\n\n"
        f"Tables written at commit {payload['commit']} of the benchmark with library "
        f"{library_label(payload['library'])}; {payload['machine']}. Each study's library "
        "version is in the JSON (`records[].library`).\n"
    )


def write_outputs(payload: Mapping[str, Any], stem: Path | None = None) -> str:
    """Write ``<stem>.json`` (the payload) and ``<stem>.md`` (its tables).

    Args:
        payload: What the outputs show.
        stem: The outputs' path without suffix (:data:`STEM` by default).

    Returns:
        The markdown.
    """
    stem = STEM if stem is None else stem
    text = render_markdown(payload)
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
    versions, marked = version_note(records)
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
        "table": [header, _mark(rows, marked)],
        "numbers": numbers,
        "epoch_budgets": epoch_budgets,
        "equal_table": [equal_header, _mark(equal_rows, marked)],
        "equal_medians": equal,
        "targets": targets(numbers, equal, epoch_budgets),
        "status": status,
        "caveat": caveat(records, level),
        "versions": versions,
        "marked": marked,
        "failed_note": failed_note(records),
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
    """The imported ``biotune_optuna``'s checkout, without its path: commit, and how many of
    its package files differ from it (the other engineer's work in progress).

    Returns:
        ``"<commit>"``, ``"<commit> + N uncommitted file(s)"`` or ``"not a git checkout"``.
    """
    import biotune_optuna

    root = Path(biotune_optuna.__file__).resolve().parents[1]
    try:
        git = functools.partial(
            subprocess.run, cwd=root, capture_output=True, text=True, check=True
        )
        commit = git(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = git(["git", "status", "--porcelain", "biotune_optuna"]).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return commit + (f" + {len(dirty)} uncommitted file(s)" if dirty else "")


def run_one(base: Any, method: str, seed: int) -> None:
    """Run (or resume) one method's study for one seed to its budget."""
    from biotune_optuna.studies import prepare_study

    spec = method_spec(base, method, seed)
    study, objective = prepare_study(spec)
    objective.on_plan = None
    if "library" not in study.user_attrs:
        study.set_user_attr("library", library_version())
    ran, seconds = paper_table.run_timed(study, objective, spec.budget)
    print(
        f"{METHODS[method].label} seed {seed} ({spec.name}): {ran} trials in {seconds:.1f} s, "
        f"best {study.best_value:.4f}",
        flush=True,
    )


def score_one(base: Any, method: str, seed: int, objective: Any, step: int) -> Any:
    """Score one study (if it exists) into the records file; return the objective built."""
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import load_study
    from biotune_optuna.studies._session import study_exists

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
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    record = study_record(
        trials,
        method,
        seed,
        spec.budget,
        score,
        direction=study.direction,
        step=step,
        failed=sorted(failed, key=lambda t: t.number),
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


def report(args: argparse.Namespace, stem: Path | None = None) -> None:
    """Write the tables from the records file, and the commands that make them.

    The commands are those the previous ``<stem>.json`` recorded for the same methods and
    seeds (made relative to the repository root), else built from ``args``; the records are
    published with their library versions without a path.

    Args:
        args: The parsed command line.
        stem: The outputs' path without suffix (:data:`STEM` by default).
    """
    stem = STEM if stem is None else stem
    records = [r for r in load_records() if r["method"] in args.methods]
    records = [{**r, "library": library_label(r.get("library", "unrecorded"))} for r in records]
    records = [r for r in records if r["seed"] in args.seeds]
    payload = report_payload(records, args.methods, args.seeds)
    if payload is None:
        print("no paper preset study at its full budget yet: no level", flush=True)
        return
    previous_path = stem.with_suffix(".json")
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else None
    spec = args.spec.resolve()
    budget = max((r["budget"] for r in records), default=0)
    payload.update(
        spec=str(spec.relative_to(HERE.parent)) if spec.is_relative_to(HERE.parent) else str(spec),
        task_cut=sampler_race.spec_comments(spec),
        step=args.step,
        budget=budget,
        final_seeds=list(sampler_race.FINAL_SEEDS),
        commands=recorded_commands(previous, args.methods, args.seeds) or _commands(args),
        note=args.note,
        **_stamp(previous if args.part == "report" else None),
        records=records,
    )
    print(write_outputs(payload, stem))


def _stamp(previous: dict[str, Any] | None) -> dict[str, str]:
    """Where the tables were made: kept from the previous JSON by ``report`` (which only
    rewrites them, so a fresh clone gets the same bytes), measured anew after ``score``."""
    if previous is not None and all(k in previous for k in ("commit", "library", "machine")):
        return {
            "commit": previous["commit"],
            "library": library_label(previous["library"]),
            "machine": previous["machine"],
        }
    return {
        "commit": paper_table._commit(),
        "library": library_version(),
        "machine": paper_table._machine(),
    }


SCRIPT = ".venv/bin/python benchmarks/compute_to_quality.py"
_CD = re.compile(r"^cd\s+\S+\s*&&\s*")
_NICE = re.compile(r"^nice(?:\s+-n\s*-?\d+|\s+-\d+)?\s+")
_ABSOLUTE = re.compile(r"(?<!\S)/\S*?/(?=\.venv/bin/python|benchmarks/)")


def relative_command(command: str) -> str:
    """A command as run from the root of a fresh clone.

    Strips a leading ``cd <dir> &&`` and ``nice -n N`` (in any order, repeatedly) and the
    absolute path before ``.venv/bin/python`` or ``benchmarks/`` anywhere in the command.

    Args:
        command: A command as an older run recorded it.

    Returns:
        The command relative to the repository root.
    """
    text, previous = command.strip(), None
    while text != previous:
        previous = text
        text = _NICE.sub("", _CD.sub("", text))
    return _ABSOLUTE.sub("", text)


def library_label(library: str) -> str:
    """A library version without the checkout's path (older records start with one).

    Args:
        library: ``"<path> at <commit>[ + N uncommitted file(s)]"``, ``"<path> (not a git
            checkout)"``, or already without a path.

    Returns:
        ``"<commit>[ + N uncommitted file(s)]"``, ``"not a git checkout"`` or ``library``.
    """
    if not library.startswith("/"):
        return library
    _, at, version = library.partition(" at ")
    if at:
        return version
    return "not a git checkout" if "not a git checkout" in library else "unrecorded"


def _commands(args: argparse.Namespace) -> list[str]:
    """The run, score and report commands for ``args``' methods and seeds, relative to the
    repository root (the recipe: 1 torch thread, 2 processes, method-major)."""
    options = f"--methods {','.join(args.methods)} --seeds {','.join(map(str, args.seeds))}"
    spec = args.spec.resolve()
    if spec != SPEC.resolve():
        shown = spec.relative_to(HERE.parent) if spec.is_relative_to(HERE.parent) else spec
        options += f" --spec {shown}"
    options += f" --step {args.step}" if args.step != STEP else ""
    recipe = "--parallel 2 --order method"
    return [
        f"{SCRIPT} --threads 1 run {options} {recipe}",
        f"{SCRIPT} --threads 1 score {options} {recipe}",
        f"{SCRIPT} report {options}",
    ]


def recorded_commands(
    previous: Mapping[str, Any] | None, methods: Sequence[str], seeds: Sequence[int]
) -> list[str] | None:
    """The commands a previous JSON recorded for the same methods and seeds, made relative.

    Args:
        previous: The previous ``<stem>.json`` payload, if any.
        methods: The methods of this report.
        seeds: The seeds of this report.

    Returns:
        The recorded commands through :func:`relative_command`, or ``None`` when there are
        none for these methods and seeds.
    """
    if not previous or not previous.get("commands"):
        return None
    if previous.get("methods") != list(methods) or previous.get("seeds") != list(seeds):
        return None
    return [relative_command(c) for c in previous["commands"]]


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
