"""The recommendation-noise benchmark: resumes, records its command, reports from its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import load_benchmark


bench = load_benchmark("recommendation_noise")


def test_a_run_resumes_and_its_report_regenerates_from_the_json(tmp_path: Path) -> None:
    output = tmp_path / "rn.json"
    argv = ["run", "--seeds", "1", "--tasks", "synthetic-6", "--output", str(output)]
    assert bench.main(argv) == 0
    data = json.loads(output.read_text())
    assert set(data["studies"]) == {f"synthetic-6/{s}/0" for s in bench.SAMPLER_NAMES}
    assert data["command"].startswith("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/")
    cell = data["studies"]["synthetic-6/random/0"]["140"]
    assert set(cell) == {"auto", "smoothed", "max"} and cell["max"]["applied"] == "max"
    assert cell["auto"]["applied"] in ("observed", "smoothed")
    assert cell["max"]["above_observed"] is False  # the best value is never above itself
    first = output.with_suffix(".md").read_text()
    assert "| synthetic-6 | 140 | 3 |" in first and "| synthetic-6 | 140 | max | 3 |" in first
    stamp = output.stat().st_mtime_ns
    assert bench.main(argv) == 0  # resumes: nothing left to run
    assert json.loads(output.read_text())["studies"] == data["studies"]
    assert bench.main(["report", "--output", str(output)]) == 0
    assert output.with_suffix(".md").read_text() == first and stamp <= output.stat().st_mtime_ns
