"""The replay speed benchmark: the spec it runs, and a report that is the same bytes twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib

from tests.benchmarks import load_benchmark


speed = load_benchmark("replay_speed")


def test_the_measured_spec_is_the_shipped_one_on_a_fresh_storage(tmp_path: Path) -> None:
    shipped = tomllib.loads((speed.ROOT / speed.SPEC).read_text())
    measured = tomllib.loads(speed._spec_for("sqlite:///study.db", tmp_path).read_text())
    assert measured["study"]["storage"] == "sqlite:///study.db"
    table = Path(measured["objective"]["table"])
    assert table.is_absolute() and table.exists()
    assert table == (speed.ROOT / "studies" / shipped["objective"]["table"]).resolve()
    del measured["study"]["storage"], shipped["study"]["storage"]
    del measured["objective"]["table"], shipped["objective"]["table"]
    assert measured == shipped  # nothing else changes: same sampler, budget, objective


def test_the_report_summarises_every_storage_from_the_json(tmp_path: Path) -> None:
    rows = [
        {"what": "start-up", "wall_s": 1.9, "cpu_s": 0.7, "load": 0.1},
        *({"what": "journal", "wall_s": w, "cpu_s": w - 0.5, "load": 0.2} for w in (4, 3, 9)),
        {"what": "sqlite", "wall_s": 10.0, "cpu_s": 9.0, "load": 0.3},
    ]
    data = {
        "command": ".venv/bin/python benchmarks/replay_speed.py run --repeat 3",
        "spec": "studies/table.toml",
        "trials": 140,
        "machine": {"cpus": 2, "machine": "x86_64"},
        "commit": "abc",
        "rows": rows,
    }
    text = speed.report(json.loads(json.dumps(data)))
    assert text == speed.report(data)
    assert "| journal | 3 | 4.0 [3.0, 9.0] | 3.5 [2.5, 8.5] | 0.2, 0.2, 0.2 |" in text
    assert "| sqlite | 1 | 10.0 [10.0, 10.0] |" in text
    assert "/work" not in text and "    .venv/bin/python benchmarks/replay_speed.py" in text


@pytest.mark.slow
def test_a_real_measurement_runs_the_installed_command(tmp_path: Path) -> None:
    data = speed.measure(1)
    assert [row["what"] for row in data["rows"]] == ["start-up", "journal", "sqlite"]
    assert all(row["wall_s"] > 0 and row["cpu_s"] > 0 for row in data["rows"])
