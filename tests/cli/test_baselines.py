"""``baselines``: the table of BioTune against the usual ways of fine-tuning, resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import tiny_spec


def test_baselines_table_resumes_and_keeps_finished_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec(tmp_path)
    arguments = ["baselines", str(spec), "--strategies", "biotune,full,surgical,lora"]
    assert main([*arguments, "--final-seeds", "2"]) == 0
    out = capsys.readouterr().out
    table = (tmp_path / "baselines" / "tiny" / "baselines.md").read_text()
    for label in ("BioTune (best plan)", "Full fine-tuning", "Surgical", "LoRA r=4", "LoRA r=16"):
        assert label in out and label in table
    assert "test macro acc. (mean ± std, 2 seeds)" in table and "Linear probe" not in table
    rows = json.loads((tmp_path / "baselines" / "tiny" / "baselines.json").read_text())["rows"]
    assert len(rows) == 6 and all(len(r["test_macro_accuracy_per_seed"]) == 2 for r in rows)
    by_label = {r["label"]: r for r in rows}
    assert by_label["Full fine-tuning"]["trainable_fraction"] == 1.0
    assert by_label["Surgical (best block on val)"]["search_trials"] == 4
    assert by_label["BioTune (best plan)"]["search_trials"] == 3
    assert (
        0
        < by_label["LoRA r=4"]["trainable_fraction"]
        < by_label["LoRA r=16"]["trainable_fraction"]
    )

    assert main([*arguments, "--final-seeds", "2"]) == 0  # everything kept, nothing trained
    assert capsys.readouterr().out.count("kept from") == 6

    assert main(["baselines", str(spec), "--strategies", "full,adapter"]) == 2
    assert "unknown strategy adapter" in capsys.readouterr().err
