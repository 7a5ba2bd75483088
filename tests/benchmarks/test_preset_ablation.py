"""The preset ablation: dev tables only, one option off per variant, resumable, same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks import load_benchmark
from tests.studies.test_plan_table import fake_table


ablation = load_benchmark("preset_ablation")


def test_each_variant_switches_exactly_one_option_of_the_preset() -> None:
    from biotune_optuna.samplers._registry import create_sampler

    entries = ablation.ablation_entries(8)
    assert entries["biotune-plus"].sampler_options == {}
    for key, (_, options) in ablation.VARIANTS.items():
        create_sampler("biotune-plus", seed=0, options=options)  # every variant is valid
        assert entries[key].sampler == "biotune-plus"
    assert {"gp", "tpe", "biotune"} <= set(entries)


def test_a_test_table_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_table(epochs=4).save(tmp_path / "textures.json.gz")
    argv = [
        "run",
        "--tables",
        str(tmp_path / "textures.json.gz"),
        "--output",
        str(tmp_path / "a.json"),
    ]
    assert ablation.main(argv) == 2
    assert "not a dev table" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


def test_the_ablation_resumes_and_its_report_regenerates_byte_for_byte(tmp_path: Path) -> None:
    fake_table(epochs=4).save(tmp_path / "digits-contrast.json.gz")
    output = tmp_path / "ablation.json"
    argv = ["run", "--tables", str(tmp_path / "digits-contrast.json.gz"), "--output", str(output)]
    argv += ["--entries", "biotune-plus", "surrogate-tpe", "tpe", "--trials", "20"]
    argv += ["--budgets", "10", "20"]
    assert ablation.main([*argv, "--seeds", "2"]) == 0
    assert len(json.loads(output.read_text())["studies"]) == 3 * 2
    assert ablation.main([*argv, "--seeds", "3"]) == 0  # continues: only the third seed runs
    data = json.loads(output.read_text())
    assert len(data["studies"]) == 3 * 3 and data["seeds"] == 3
    assert data["entries"]["digits-contrast/surrogate-tpe"]["sampler_options"] == {
        "surrogate": "tpe"
    }
    assert all("benchmarks/preset_ablation.py run" in c for c in data["commands"])

    assert ablation.main(["report", "--input", str(output)]) == 0
    markdown = output.with_suffix(".md").read_text()
    assert ablation.main(["report", "--input", str(output)]) == 0
    assert output.with_suffix(".md").read_text() == markdown
    assert "`biotune-plus` against each other entry" in markdown
    assert "− GP surrogate (TPE ranks = the preset before)" in markdown
