"""The replay-agreement check's statistics and report, on a fake payload (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from biotune_optuna.studies._plan_table import PlanTable
from tests.benchmarks import load_benchmark


check = load_benchmark("replay_agreement")


def _table(differences: list[float]) -> PlanTable:
    """A table of one plan per difference: fold 0's test 0.5, fold 1's 0.5 − difference."""
    plans = {
        f"{k + 1:02d}": {
            "trainable_fraction": 0.5,
            "runs": [[0, 0, 1.0, 0.5, [0.4]], [1, 0, 1.0, 0.5 - d, [0.4]]],
        }
        for k, d in enumerate(differences)
    }
    return PlanTable(
        name="fake",
        blocks=("low", "high"),
        levels=(0.1, 1.0, 10.0),
        base_lr=1e-3,
        n_folds=2,
        seeds=(0,),
        max_epochs=1,
        plans=plans,
    )


def _payload(shift: float, noise_sd_of_runs: float = 0.1) -> dict[str, Any]:
    """Ten cells whose live score is the replay's plus ``shift`` and a small wiggle."""
    wiggles = [0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.005, -0.005, 0.0]
    cells = {}
    for k, wiggle in enumerate(wiggles):
        sampler, seed = ("random", "tpe")[k % 2], k // 2
        replay = 0.5 + 0.01 * k
        cells[f"{sampler}/{seed}"] = {
            "sampler": sampler,
            "seed": seed,
            "seconds": 100.0 + k,
            "live": {
                "score": round(replay + shift + wiggle, 6),
                "table_test": round(replay + wiggle / 2, 6),
                "code": "12",
                "multipliers": {"low": 0.0, "high": 1.3},
            },
            "replay": {"score": replay, "code": "21"},
        }
    table = _table([noise_sd_of_runs, -noise_sd_of_runs, 0.0])
    return {
        "format": 1,
        "cells": cells,
        "reproduced": {"12": {"test": 0.55, "table_test": 0.55, "max_run_difference": 0.0}},
        "noise": check.table_noise(table),
        "table": {
            "file": "benchmarks/tables/fake.json.gz",
            "sha256": "0" * 16,
            "plans": 3,
            "n_folds": 2,
            "seeds": [0],
            "max_epochs": 1,
            "blocks": ["low", "high"],
        },
        "settings": {"trials": 25, "spec": "benchmarks/tables/fake.toml", "table": "0" * 16},
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/replay_agreement.py run",
        "smoke": False,
        "versions": [{"commit": "abc", "optuna": "5.0.0"}],
    }


def test_the_table_noise_is_the_sd_of_the_difference_of_a_plans_two_runs() -> None:
    noise = check.table_noise(_table([0.1, -0.1, 0.0]))
    assert noise["plans"] == 3
    assert noise["run_difference_sd"] == pytest.approx(0.1)
    assert noise["run_sd"] == pytest.approx(0.1 / math.sqrt(2), abs=1e-6)
    assert noise["score_sd"] == pytest.approx(0.05)
    # two independent scores (each the mean of two runs) of one plan: sqrt(2) * 0.05
    assert noise["score_difference_sd"] == pytest.approx(0.1 / math.sqrt(2), abs=1e-6)


def test_scores_within_the_noise_agree() -> None:
    stats = check.agreement(_payload(shift=0.0))
    assert stats["n"] == 10
    assert stats["difference"]["mean"] == pytest.approx(0.0, abs=1e-9)
    low, high = stats["difference"]["ci"]
    assert -stats["noise_sd"] < low < 0 < high < stats["noise_sd"]
    assert stats["difference"]["p"] > 0.05
    assert stats["agree"]
    assert "agrees with reality within" in check.verdict(stats)


def test_a_shift_beyond_the_noise_does_not_agree_and_says_by_how_much() -> None:
    stats = check.agreement(_payload(shift=0.2))
    assert stats["difference"]["mean"] == pytest.approx(0.2, abs=1e-9)
    assert stats["difference"]["wins"] == (10, 0, 0)
    assert stats["difference"]["p"] < 0.01  # ten positive differences: exact p = 2 / 2^10
    assert not stats["agree"]
    text = check.verdict(stats)
    assert "does not agree" in text and "+0.2000" in text and "significant" in text


def test_a_small_but_consistent_shift_is_significant_and_does_not_agree() -> None:
    stats = check.agreement(_payload(shift=0.03))
    low, high = stats["difference"]["ci"]
    assert -stats["noise_sd"] < low and high < stats["noise_sd"]  # within the noise band...
    assert stats["difference"]["p"] < 0.05  # ...but every cell is above
    assert not stats["agree"]


def test_the_snapped_gap_and_the_search_part_add_up_to_the_difference() -> None:
    stats = check.agreement(_payload(shift=0.05))
    total = stats["snap"]["mean"] + stats["search"]["mean"]
    assert total == pytest.approx(stats["difference"]["mean"], abs=1e-9)
    assert stats["expected_abs"] == pytest.approx(stats["noise_sd"] * math.sqrt(2 / math.pi))


def test_interval_and_test_of_degenerate_differences() -> None:
    assert check.bootstrap_ci([0.25, 0.25, 0.25]) == pytest.approx((0.25, 0.25))
    assert check.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0


def test_the_report_is_the_same_bytes_twice_and_its_tables_are_whole(tmp_path: Path) -> None:
    path = tmp_path / "replay_agreement.json"
    path.write_text(json.dumps(_payload(shift=0.2), indent=1, sort_keys=True) + "\n")
    assert check.main(["report", "--input", str(path)]) == 0
    markdown = path.with_suffix(".md").read_text()
    assert check.main(["report", "--input", str(path)]) == 0
    assert path.with_suffix(".md").read_text() == markdown
    assert "does not agree" in markdown and "## Verdict" in markdown
    assert "| random | 0 | – ×1.3 | `12` |" in markdown
    for block in markdown.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:  # every row of a table has as many cells as its header
            assert {row.count("|") for row in rows} == {rows[0].count("|")}, block
