"""Tables of a sampler race: per task and budget, median [IQR] over seeds and mean rank.

Shared by ``benchmarks/sampler_race.py`` (the fine-tune race) and the other race benchmarks,
which hand :func:`race_tables` one record per study (task × sampler × seed):

- ``task`` (str), ``sampler`` (str), ``seed`` (int), ``trials`` (int, finished trials);
- ``score_at``: ``{str(budget): float}``, what the user gets from the study's recommended plan
  after that many trials (the fine-tune race: its test accuracy after retraining; a synthetic
  landscape: its true value);
- ``best_val_at``: ``{str(budget): float}``, the best value the study observed by then (the
  optimistic number: the luckiest of noisy draws);
- ``duplicates`` (int): trials that repeat an earlier trial's configuration, of all ``trials``;
  ``distinct`` (int): ``trials - duplicates``; optionally ``duplicates_at``
  ``{str(budget): int}`` (among the first ``budget`` trials), else the duplicate share is only
  shown at the budget equal to ``trials``;
- ``curve``: best value after each trial (not tabulated);
- optional: ``problem`` (a task of several problems: ranks are taken per problem × seed),
  ``direction`` (``"maximize"``, the default, or ``"minimize"``: of the score and
  the observed values alike), ``score_name`` and ``value_name`` (words for the headers).

Imports numpy only, so that tests and other benchmarks can use it without torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

import numpy as np


__all__ = ["average_ranks", "format_median_iqr", "mean_ranks", "race_tables"]

MISSING = "–"


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _number(value: float) -> str:
    """4 decimals in the usual range, 4 significant digits for very small or large values."""
    if value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    return f"{value:.4f}"


def format_median_iqr(values: Iterable[Any], *, percent: bool = False) -> str:
    """``median [q1, q3]`` of the finite values (just the median for one value, ``–`` for none).

    Quartiles are numpy's linear interpolation, as in ``biotune-optuna compare``.
    """
    finite = _finite(values)
    if not finite:
        return MISSING
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    show = (lambda v: f"{v:.1f}") if percent else _number
    if len(finite) == 1:
        return show(median)
    return f"{show(median)} [{show(q1)}, {show(q3)}]"


def average_ranks(
    scores: Mapping[str, float], *, higher_is_better: bool = True
) -> dict[str, float]:
    """Rank of each key by its score, 1 = best, tied scores sharing the mean of their ranks.

    Keys whose score is missing or not finite are left out.
    """
    items = [(k, float(v)) for k, v in scores.items() if v is not None and math.isfinite(v)]
    items.sort(key=lambda kv: -kv[1] if higher_is_better else kv[1])
    ranks: dict[str, float] = {}
    start = 0
    while start < len(items):
        end = start
        while end + 1 < len(items) and items[end + 1][1] == items[start][1]:
            end += 1
        for key, _ in items[start : end + 1]:
            ranks[key] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def mean_ranks(
    records: Sequence[Mapping[str, Any]], budget: int, samplers: Sequence[str]
) -> tuple[dict[str, float], int]:
    """Mean rank of each sampler at ``budget`` and the number of cells it is the mean over.

    A cell is a seed (a problem × seed where records have a ``problem``); the ranks are taken
    within each cell among the samplers (of ``samplers``) that have a score at ``budget``
    anywhere, over the cells where every one of them has one, so that each mean is over the
    same cells. Ties share the mean of their ranks; 1 = best.
    """
    cells: dict[tuple[Any, int], dict[str, float]] = {}
    higher = True
    for record in records:
        score = record.get("score_at", {}).get(str(budget))
        if record["sampler"] not in samplers or score is None or not math.isfinite(score):
            continue
        higher = record.get("direction", "maximize") != "minimize"
        cell = (record.get("problem"), int(record["seed"]))
        cells.setdefault(cell, {})[record["sampler"]] = float(score)
    present = {s for scores in cells.values() for s in scores}
    complete = [scores for scores in cells.values() if present <= scores.keys()]
    totals = dict.fromkeys(present, 0.0)
    for scores in complete:
        for sampler, rank in average_ranks(scores, higher_is_better=higher).items():
            totals[sampler] += rank
    if not complete:
        return {}, 0
    return {s: total / len(complete) for s, total in totals.items()}, len(complete)


def _duplicates_at(record: Mapping[str, Any], budget: int) -> tuple[int, int] | None:
    """Duplicates and trials among the record's first ``budget`` trials (``None``: unknown,
    or the study has fewer trials)."""
    trials = int(record.get("trials", 0))
    if trials < max(budget, 1):
        return None
    at = record.get("duplicates_at")
    if at is not None and str(budget) in at:
        return int(at[str(budget)]), budget
    if budget == trials and record.get("duplicates") is not None:
        return int(record["duplicates"]), trials
    return None


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _budget_table(
    records: Sequence[Mapping[str, Any]], budget: int, samplers: Sequence[str]
) -> str:
    first = records[0]
    score_name = first.get("score_name", "score of the recommended plan")
    value_name = first.get("value_name", "best value observed")
    header = [
        "sampler",
        "n",
        f"{score_name} (median [IQR])",
        "mean rank",
        f"{value_name} (optimistic; median [IQR])",
        "duplicates % (median [IQR])",
        "distinct configurations (median)",
    ]
    ranks, n_cells = mean_ranks(records, budget, samplers)
    rows = []
    for sampler in samplers:
        mine = [r for r in records if r["sampler"] == sampler]
        if not mine:
            continue
        scores = [r.get("score_at", {}).get(str(budget)) for r in mine]
        best = [r.get("best_val_at", {}).get(str(budget)) for r in mine]
        counted = [c for c in (_duplicates_at(r, budget) for r in mine) if c is not None]
        shares = [100.0 * d / n for d, n in counted]
        distinct = [n - d for d, n in counted]
        rows.append(
            [
                sampler,
                str(len(_finite(scores))),
                format_median_iqr(scores),
                f"{ranks[sampler]:.2f}" if sampler in ranks else MISSING,
                format_median_iqr(best),
                format_median_iqr(shares, percent=True),
                f"{np.median(distinct):.0f}" if distinct else MISSING,
            ]
        )
    return f"Mean ranks over {n_cells} cells.\n\n{_markdown(header, rows)}"


def _rank_summary(
    records: Sequence[Mapping[str, Any]], budgets: Sequence[int], samplers: Sequence[str]
) -> str:
    ranks = {b: mean_ranks(records, b, samplers)[0] for b in budgets}
    header = ["sampler", *[f"mean rank after {b} trials" for b in budgets]]
    rows = []
    for sampler in samplers:
        if not any(r["sampler"] == sampler for r in records):
            continue
        cells = [f"{ranks[b][sampler]:.2f}" if sampler in ranks[b] else MISSING for b in budgets]
        rows.append([sampler, *cells])
    return _markdown(header, rows)


def race_tables(
    records: Sequence[Mapping[str, Any]], budgets: Sequence[int], samplers: Sequence[str]
) -> str:
    """Markdown tables of race records: one ``##`` section per task (in first-seen order).

    Each section has the mean ranks per budget, then one table per budget: per sampler the
    number of studies scored, the score's median [IQR] over them, the mean rank (see
    :func:`mean_ranks`), the best observed value (labelled optimistic), the duplicate share
    and the distinct configurations.

    Args:
        records: One mapping per study (keys in the module docstring); any task names.
        budgets: Trial budgets, one table each.
        samplers: The rows, in this order, and the samplers ranked; records of other samplers
            are left out (so one set of records can give a race table and an ablation table).

    Returns:
        The markdown text.
    """
    tasks: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if record["sampler"] in samplers:
            tasks.setdefault(str(record["task"]), []).append(record)
    parts = []
    for task, mine in tasks.items():
        lower = mine[0].get("direction", "maximize") == "minimize"
        seeds = sorted({int(r["seed"]) for r in mine})
        problems = {r.get("problem") for r in mine} - {None}
        unit = "problem × seed" if problems else "seed"
        parts.append(
            f"## {task}\n\n"
            f"{len(mine)} studies, seeds {', '.join(map(str, seeds))}"
            f"{f', {len(problems)} problems' if problems else ''}; score: "
            f"{'lower' if lower else 'higher'} is better. Cells: median [IQR] over the studies "
            f"(one per {unit}). Mean rank: samplers ranked within each {unit} by the score "
            "(ties share their mean rank, 1 = best), averaged over the cells where every "
            "sampler shown has a score.\n\n"
            f"{_rank_summary(mine, budgets, samplers)}\n"
        )
        for budget in budgets:
            parts.append(f"### After {budget} trials\n\n{_budget_table(mine, budget, samplers)}\n")
    return "\n".join(parts)
