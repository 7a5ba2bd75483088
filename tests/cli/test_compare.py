"""``compare``: a study and its siblings (samplers, seeds), or chosen studies, table and plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.conftest import copy_spec


def test_compare_siblings_or_chosen_studies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    for extra in ([], ["--seed", "1"], ["--sampler", "tpe"], ["--sampler", "tpe", "--seed", "1"]):
        assert main(["run", spec, "--trials", "12", "-q", *extra]) == 0
    capsys.readouterr()

    out_dir = tmp_path / "cmp"
    assert main(["compare", spec, "--budgets", "5,12", "--output", str(out_dir)]) == 0
    table = capsys.readouterr().out
    rows = [line for line in lines(table) if line.startswith(("| biotune", "| tpe"))]
    assert len(rows) == 2 and all("| 2 " in row and "n=2" in row for row in rows)
    assert (out_dir / "compare.md").read_text().count("| tpe") == 1
    assert (out_dir / "best_so_far.png").stat().st_size > 10_000
    assert "plotly" in (out_dir / "best_so_far.html").read_text()[:100_000]

    assert main(["compare", spec, "--study", "biotune-synthetic", "--output", str(out_dir)]) == 0
    assert "| tpe" not in capsys.readouterr().out
