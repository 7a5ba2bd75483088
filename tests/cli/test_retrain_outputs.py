"""``retrain``'s output: one writer at a time, replaced whole, the same in any process."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys
from typing import Any

import pytest
import torch

from biotune_optuna.cli import main
import biotune_optuna.finetune._export
import biotune_optuna.studies._retrain
from tests.cli._specs import tiny_spec


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny spec's study, searched (3 trials)."""
    directory = tmp_path_factory.mktemp("study")
    spec = tiny_spec(directory)
    assert main(["run", str(spec), "-q"]) == 0
    return spec


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_a_second_retrain_is_refused_while_the_first_writes(
    searched: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    evaluate = biotune_optuna.studies._retrain.final_evaluation
    second: list[int] = []

    def while_training(*args: Any, **kwargs: Any) -> Any:
        if not second:  # the first retrain, training: a second one starts (once)
            second.append(-1)
            second[0] = main(["retrain", str(searched), "--output", str(output), "-q"])
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(biotune_optuna.studies._retrain, "final_evaluation", while_training)
    capsys.readouterr()
    assert main(["retrain", str(searched), "--output", str(output), "-q"]) == 0
    captured = capsys.readouterr()
    assert second == [2]
    (error,) = captured.err.splitlines()
    assert error.startswith("biotune-optuna: error: ") and "another retrain" in error
    assert len(captured.out.splitlines()) == 1  # the first one's accuracy
    results = json.loads((output / "results.json").read_text())
    assert sorted(_files(output)) == sorted(["plan.json", "results.json", *results["weights"]])


def test_a_killed_retrain_leaves_the_old_output_whole(
    searched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out"
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "0", "-q"]) == 0
    old = _files(output)
    save = biotune_optuna.finetune._export.save_finetuned
    saved: list[Path] = []

    def dies_after_one_model(model: Any, path: Path, **kwargs: Any) -> Path:
        if saved:
            raise RuntimeError("killed")
        saved.append(save(model, path, **kwargs))
        return saved[-1]

    monkeypatch.setattr(biotune_optuna.finetune._export, "save_finetuned", dies_after_one_model)
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "1", "-q"]) == 1
    assert saved and _files(output) == old  # not one file of the new set
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]

    # Killed between moving the old files aside and the new ones in: the next one puts them back.
    monkeypatch.undo()
    shutil.move(output, tmp_path / ".out.old")
    (tmp_path / ".out.new").mkdir()
    (tmp_path / ".out.new" / "model_seed0.pt").write_bytes(b"half")

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(biotune_optuna.studies._retrain, "final_evaluation", fails)
        assert main(["retrain", str(searched), "--output", str(output), "-q"]) == 1
    assert _files(output) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "2", "-q"]) == 0
    new = _files(output)
    assert json.loads(new["results.json"])["trial"] == 2 and new.keys() == old.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


def test_retrain_will_not_replace_a_directory_it_did_not_write(
    searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["retrain", str(searched), "--output", str(tmp_path), "-q"]) == 2
    (error,) = capsys.readouterr().err.splitlines()
    assert "retrain did not write" in error
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_retrain_will_not_replace_its_output_holding_a_file_of_the_users(
    searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An earlier retrain's directory (``results.json`` in it) where the user put a file of
    their own is not replaced: the whole directory would go, and the file with it."""
    output = tmp_path / "out"
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "0", "-q"]) == 0
    (output / "model.pt2").write_bytes(b"exported")
    before = _files(output)
    capsys.readouterr()
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "1", "-q"]) == 2
    (error,) = capsys.readouterr().err.splitlines()
    assert "'model.pt2'" in error and "retrain did not write" in error and "move it" in error
    assert _files(output) == before


def test_remembered_passwords_leave_the_results_readable(
    searched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords such as ``seed`` or any three digits are scrubbed from free text only: the
    JSON files that are read back keep their keys, numbers and file names."""
    from biotune_optuna.studies import _masking

    digits = {f"{n:03d}" for n in range(1000)}
    monkeypatch.setattr(_masking, "_KNOWN_PASSWORDS", {"seed", "images", *digits})
    output = tmp_path / "out"
    assert main(["retrain", str(searched), "--output", str(output), "--trial", "0", "-q"]) == 0
    results = json.loads((output / "results.json").read_text())
    plan = json.loads((output / "plan.json").read_text())
    assert results["weights"] == [f"model_seed{seed}.pt" for seed in results["seeds"]]
    assert results["best_weights"] == f"model_seed{results['best_seed']}.pt"
    assert sorted(_files(output)) == sorted(["plan.json", "results.json", *results["weights"]])
    for seed, name in zip(results["seeds"], results["weights"], strict=True):
        record = torch.load(output / name, weights_only=True)
        assert record["plan"] == plan and record["results"]["seed"] == seed
        index = results["seeds"].index(seed)
        accuracy = record["results"]["test_macro_accuracy"]
        assert results["test_macro_accuracy_per_seed"][index] == accuracy


_RETRAIN = """
import sys
from biotune_optuna.cli import main
sys.exit(main(["retrain", sys.argv[1], "--output", sys.argv[2], "--trial", "0", "-q"]))
"""


@pytest.mark.slow
def test_a_retrain_gives_the_same_model_in_every_process(searched: Path, tmp_path: Path) -> None:
    outputs = [tmp_path / "one", tmp_path / "two"]
    for output in outputs:
        command = [sys.executable, "-c", _RETRAIN, str(searched), str(output)]
        subprocess.run(command, check=True, capture_output=True)
    one, two = (json.loads((o / "results.json").read_text()) for o in outputs)
    assert one["test_macro_accuracy_per_seed"] == two["test_macro_accuracy_per_seed"]
    for name in one["weights"]:
        a, b = (torch.load(o / name, weights_only=True)["state_dict"] for o in outputs)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
