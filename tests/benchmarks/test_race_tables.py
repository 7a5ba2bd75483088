"""The race tables' statistics: ranks with ties, cells every sampler shares, median [IQR]."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_race_tables.py"
    spec = importlib.util.spec_from_file_location("_race_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load()


def _record(task: str, sampler: str, seed: int, score: float | None, **extra: Any) -> dict:
    return {
        "task": task,
        "sampler": sampler,
        "seed": seed,
        "trials": 10,
        "score_at": {} if score is None else {"10": score},
        "best_val_at": {"10": 0.9},
        "duplicates": 2,
        "distinct": 8,
        "curve": [],
        **extra,
    }


def test_average_ranks_share_ties_and_follow_the_direction() -> None:
    scores = {"a": 0.9, "b": 0.9, "c": 0.5, "d": math.nan}
    assert tables.average_ranks(scores) == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert tables.average_ranks(scores, higher_is_better=False) == {"c": 1.0, "a": 2.5, "b": 2.5}


def test_mean_ranks_are_over_the_cells_every_sampler_has() -> None:
    records = [
        _record("t", "a", 0, 0.8),
        _record("t", "b", 0, 0.6),
        _record("t", "a", 1, 0.5),
        _record("t", "b", 1, 0.7),
        _record("t", "a", 2, 0.9),  # b has no seed 2: the cell is left out
        _record("t", "c", 0, 1.0),  # not among the samplers asked for
    ]
    ranks, cells = tables.mean_ranks(records, 10, ["a", "b"])
    assert cells == 2
    assert ranks == {"a": 1.5, "b": 1.5}
    minimised = [{**r, "direction": "minimize"} for r in records[:2]]
    assert tables.mean_ranks(minimised, 10, ["a", "b"]) == ({"a": 2.0, "b": 1.0}, 1)


def test_mean_ranks_take_problem_and_seed_as_the_cell() -> None:
    records = [
        _record("t", "a", 0, 0.8, problem="p"),
        _record("t", "b", 0, 0.6, problem="p"),
        _record("t", "a", 0, 0.1, problem="q"),
        _record("t", "b", 0, 0.2, problem="q"),
    ]
    assert tables.mean_ranks(records, 10, ["a", "b"]) == ({"a": 1.5, "b": 1.5}, 2)


def test_median_iqr_uses_linear_quartiles_of_the_finite_values() -> None:
    assert tables.format_median_iqr([1, 2, 3, 4, None, math.nan]) == "2.5000 [1.7500, 3.2500]"
    assert tables.format_median_iqr([0.25]) == "0.2500"
    assert tables.format_median_iqr([]) == "–"
    assert tables.format_median_iqr([1e-5, 3e-5]) == "2e-05 [1.5e-05, 2.5e-05]"


def test_race_tables_one_section_per_task_rows_in_the_given_order() -> None:
    records = [
        _record("fine-tune", "b", 0, 0.6, duplicates_at={"10": 1}),
        _record("fine-tune", "a", 0, 0.8),
        _record("landscape", "a", 0, 0.1),
        _record("landscape", "x", 0, 0.9),  # not asked for: no row, no rank
    ]
    text = tables.race_tables(records, [5, 10], ["a", "b"])
    assert text.count("\n## ") + text.startswith("## ") == 2
    section = text.split("## landscape")[0]
    assert section.index("| a ") < section.index("| b ")
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if "| 1 |" in line}
    assert "0.8000" in rows["a"] and "20.0" in rows["a"]  # 2 of 10 trials repeat
    assert "0.6000" in rows["b"] and "10.0" in rows["b"]  # duplicates_at: 1 of 10
    assert "| x " not in text
    assert "### After 5 trials" in text and "### After 10 trials" in text
