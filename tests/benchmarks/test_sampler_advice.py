"""The README's "which sampler" block is what the committed race JSON gives, never hand-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks import load_benchmark


race = load_benchmark("table_race")
advice = load_benchmark("_sampler_advice")
ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_block_regenerates_from_the_committed_race() -> None:
    data = json.loads((ROOT / "benchmarks/results/table_race.json").read_text())
    block = race.advice_block(data)
    assert block is not None
    assert advice.block_of((ROOT / "README.md").read_text()) == block, (
        "README.md's sampler-advice block is stale: run "
        "`.venv/bin/python benchmarks/table_race.py report`"
    )


def test_the_leading_group_keeps_only_entries_not_significantly_worse() -> None:
    rng = [0.01 * ((7 * i) % 11) for i in range(30)]
    scores = {
        "strong": [0.8 + r for r in rng],
        "tied": [0.8 + r - (0.001 if i % 2 else -0.001) for i, r in enumerate(rng)],
        "weak": [0.5 + r for r in rng],
    }
    assert set(advice.leading_group(scores)) == {"strong", "tied"}


def test_the_pick_names_the_entries_leading_at_every_budget() -> None:
    rng = [0.01 * ((7 * i) % 11) for i in range(30)]
    early = {"a": [0.8 + r for r in rng], "b": [0.8 + r for r in rng], "c": [0.5 + r for r in rng]}
    late = {"a": [0.8 + r for r in rng], "b": [0.5 + r for r in rng], "c": [0.4 + r for r in rng]}
    block = advice.advice_block(
        {25: early, 50: late},
        seconds={"a": 2.0, "b": 0.1, "c": 0.1},
        label=str.upper,
        tables=["t"],
        seeds=30,
    )
    assert (
        "- In the leading group at every budget: `A`; the cheapest of them per study: `A`. "
        "Significantly behind the best at every budget: `C`." in block
    )


def test_a_block_replaces_only_the_text_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{advice.START}\nold\n{advice.END}\nafter\n")
    block = f"{advice.START}\nnew\n{advice.END}"
    assert advice.update_readme(readme, block)
    assert readme.read_text() == f"before\n{block}\nafter\n"
    assert not advice.update_readme(readme, block)  # unchanged: not rewritten


def test_a_readme_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="no block"):
        advice.replace_block("no markers here", f"{advice.START}\n{advice.END}")
