"""The table race benchmark: resumes, records its command, and reports the same bytes twice."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import load_benchmark
from tests.studies.test_plan_table import fake_table


race = load_benchmark("table_race")


def test_a_race_resumes_and_its_report_regenerates_byte_for_byte(tmp_path: Path) -> None:
    for name in ("textures", "digits-contrast"):  # one test table, one dev table
        fake_table(epochs=4).save(tmp_path / f"{name}.json.gz")
    tables = [str(tmp_path / "textures.json.gz"), str(tmp_path / "digits-contrast.json.gz")]
    output = tmp_path / "race.json"
    argv = [
        "run",
        "--tables",
        *tables,
        "--entries",
        "biotune",
        "random",
        "tpe+sh",
        "--seeds",
        "3",
        "--trials",
        "20",
        "--every",
        "10",
        "--budgets",
        "10",
        "20",
        "--output",
        str(output),
    ]
    assert race.main([*argv[:8], "--seeds", "2", *argv[10:]]) == 0
    assert len(json.loads(output.read_text())["studies"]) == 2 * 3 * 2
    assert race.main(argv) == 0  # continues: only the third seed runs
    data = json.loads(output.read_text())
    assert len(data["studies"]) == 2 * 3 * 3
    # both runs are recorded, each once, in order (the second differs only in its seeds)
    assert [c.split("--seeds ")[1][0] for c in data["commands"]] == ["2", "3"]
    assert all(
        c.startswith("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/") for c in data["commands"]
    )
    assert data["tables"]["textures"]["split"] == "test"
    assert data["tables"]["digits-contrast"]["split"] == "dev"

    assert race.main(["report", "--input", str(output)]) == 0
    markdown = output.with_suffix(".md").read_text()
    figures = {p.name: p.read_bytes() for p in tmp_path.glob("*.svg")}
    assert race.main(["report", "--input", str(output)]) == 0
    assert output.with_suffix(".md").read_text() == markdown
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.svg")} == figures
    assert "## Test tables: textures (3 blocks" in markdown
    assert all(f"`{c}`" in markdown for c in data["commands"])
    assert "## Dev tables: digits-contrast" in markdown
    assert "Friedman χ²" in markdown and "Wilcoxon" in markdown
    assert "race_cd_test.svg" in figures and "race_anytime_textures.svg" in figures
    assert "epochs to the paper protocol's level" in markdown


def test_a_race_refuses_another_table_under_a_raced_name(tmp_path: Path) -> None:
    import pytest

    path = tmp_path / "textures.json.gz"
    fake_table(epochs=4).save(path)
    output = tmp_path / "race.json"
    argv = [
        "run",
        "--tables",
        str(path),
        "--entries",
        "random",
        "--seeds",
        "1",
        "--trials",
        "10",
        "--budgets",
        "10",
        "--output",
        str(output),
    ]
    assert race.main(argv) == 0
    fake_table(epochs=5).save(path)
    with pytest.raises(SystemExit, match="another table"):
        race.main(argv)
