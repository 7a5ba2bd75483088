"""The budget-aware benchmark: simulated workers, resumption, a report that regenerates."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import load_benchmark


fidelity = load_benchmark("fidelity_race")
TABLE = Path(__file__).resolve().parents[2] / "benchmarks" / "tables" / "textures.json.gz"


def test_the_entries_are_the_compute_tables_and_the_budget_aware_mode() -> None:
    entries = fidelity.fidelity_entries(8)
    assert set(fidelity.COMPUTE_TABLE) | {fidelity.NEW} <= set(entries)
    new = entries[fidelity.NEW]
    assert (new.sampler, new.pruner, dict(new.pruner_options)) == (
        "biotune-plus", "rungs", {"max_resource": 8}
    )  # fmt: skip
    assert entries["biotune"].pruner == "none"


def test_the_race_resumes_and_its_report_regenerates_byte_for_byte(tmp_path: Path) -> None:
    output = tmp_path / "fidelity.json"
    argv = ["run", "--tables", str(TABLE), "--entries", "biotune", fidelity.NEW]
    argv += ["--workers", "1", "4", "--share", "0.15", "--output", str(output)]
    assert fidelity.main([*argv, "--seeds", "1"]) == 0
    assert fidelity.main([*argv, "--seeds", "2"]) == 0  # continues: only seed 1 runs
    data = json.loads(output.read_text())
    assert sorted(data["studies"]) == sorted(
        f"textures/{e}/{w}/{s}" for e in ("biotune", fidelity.NEW) for w in (1, 4) for s in (0, 1)
    )
    assert all("--share 0.15" in command for command in data["commands"])
    for key, study in data["studies"].items():
        assert study["curve"][-1][0] >= 0.15 * 1120 - 1e-9  # it trained the budget
        assert study["idle_s"] <= 0.05 * int(key.split("/")[2]) * study["makespan_s"]
    assert fidelity.main(["report", "--input", str(output)]) == 0
    markdown = output.with_suffix(".md").read_text()
    assert fidelity.main(["report", "--input", str(output)]) == 0
    assert output.with_suffix(".md").read_text() == markdown
    assert "## Test tables: textures, one worker" in markdown
    assert "epochs to the paper protocol's level" in markdown
    assert "simulated time to the level with many workers" in markdown
