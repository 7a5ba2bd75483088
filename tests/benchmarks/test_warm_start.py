"""The warm-start benchmark: its entries' plans, resumption, and a report that regenerates."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import load_benchmark


warm = load_benchmark("warm_start")


def test_each_entry_starts_from_its_source() -> None:
    assert warm.entry_plans("cold", "textures", 5) is None
    dev = warm.entry_plans("warm-dev", "textures", 5)
    other = warm.entry_plans("warm-other", "textures", 3)
    worst = warm.entry_plans("misleading", "textures", 5)
    assert len(dev) == 5 and len(other) == 3 and len(worst) == 5
    assert all("digits-contrast" in plan["source"] for plan in dev)
    assert all("digits-noise" in plan["source"] for plan in other)
    assert all(plan["source"].endswith("(worst)") for plan in worst)
    # The best plans of the dev table are better there than its worst.
    assert min(p["value"] for p in dev) > max(p["value"] for p in worst)


def test_the_benchmark_resumes_and_its_report_regenerates_byte_for_byte(tmp_path: Path) -> None:
    output = tmp_path / "warm.json"
    argv = ["run", "--trials", "25", "--every", "5", "--top", "3", "--output", str(output)]
    assert warm.main([*argv, "--seeds", "1"]) == 0
    assert len(json.loads(output.read_text())["studies"]) == 2 * 4
    assert warm.main([*argv, "--seeds", "2"]) == 0  # continues: only seed 1 runs
    data = json.loads(output.read_text())
    assert sorted(data["studies"]) == sorted(
        f"{t}/{e}/{s}" for t in warm.TARGETS for e in warm.ENTRIES for s in range(2)
    )
    assert data["plans"]["textures/cold"] is None
    assert len(data["plans"]["digits-noise/warm-dev"]) == 3
    assert all("--top 3" in command for command in data["commands"])

    assert warm.main(["report", "--output", str(output)]) == 0
    markdown = output.with_suffix(".md").read_text()
    assert warm.main(["report", "--output", str(output)]) == 0
    assert output.with_suffix(".md").read_text() == markdown
    assert "## textures" in markdown and "## digits-noise" in markdown
    assert "warm-dev@25 − cold@25" in markdown
