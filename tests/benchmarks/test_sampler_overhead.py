"""The sampler-overhead benchmark: no machine's directories, interleaved runs, ratio intervals."""

from __future__ import annotations

import json
from pathlib import Path
import statistics

from tests.benchmarks import load_benchmark


overhead = load_benchmark("sampler_overhead")


def test_the_interpreter_inside_the_repository_is_published_relative_to_it() -> None:
    venv_python = overhead.REPO_ROOT / ".venv" / "bin" / "python"
    assert overhead._in_repo(str(venv_python)) == ".venv/bin/python"
    assert overhead._in_repo("/usr/bin/python3") == "/usr/bin/python3"  # outside: as it is


def test_an_interleaved_run_keeps_its_windows_and_report_rewrites_the_same_markdown(
    tmp_path: Path,
) -> None:
    argv = ["--interleave", "--samplers", "biotune,tpe", "--storages", "memory"]
    overhead.main([*argv, "--checkpoints", "4,6", "--window", "3", "--output-dir", str(tmp_path)])
    data = json.loads((tmp_path / "sampler_overhead.json").read_text(encoding="utf-8"))
    assert [(r["sampler"], r["n_trials"]) for r in data["results"]] == [("biotune", 6), ("tpe", 6)]
    assert all(len(r["window_ms"]["6"]) == 3 for r in data["results"])
    written = (tmp_path / "sampler_overhead.md").read_text(encoding="utf-8")
    assert "side by side" in written and "| memory | " in written
    ratio = data["biotune_over_tpe"]["memory"]["6"]
    assert ratio["low"] <= ratio["high"] and ratio["mean_low"] <= ratio["mean_high"]
    assert f"{ratio['ratio']:.2f}x" in written and f"(mean {ratio['mean_ratio']:.2f}x" in written
    assert "biotune_plus_over_tpe" in data and data["biotune_plus_over_tpe"] == {}
    (tmp_path / "sampler_overhead.md").unlink()
    overhead.main(["report", "--output-dir", str(tmp_path)])
    assert (tmp_path / "sampler_overhead.md").read_text(encoding="utf-8") == written


def test_the_ratio_interval_holds_the_ratio_of_the_medians() -> None:
    num, den = [2.0, 2.2, 1.9, 2.1, 5.0], [1.0, 1.1, 0.9, 1.05, 1.0]
    low, high = overhead.ratio_interval(num, den, 500)
    assert low <= statistics.median(num) / statistics.median(den) <= high
    assert (low, high) == overhead.ratio_interval(num, den, 500)  # seeded
    assert overhead.ratio_interval([1.0] * 4, [2.0] * 4, 50) == (0.5, 0.5)
