"""The console script, from a user's side: run, resume, status, best, compare, retrain."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import optuna
import pytest

from biotune_optuna import recommended_trial
from biotune_optuna.cli import main
from tests.conftest import copy_spec
from tests.conftest import small_demo_spec


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


def test_run_creates_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert main(["run", str(spec), "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "study `biotune-synthetic`" in out
    assert "1 generations = 23 trials (N=10, E=3): 0 finished, running 23 more" in out
    assert "trial  22  gen 1" in out and "recommended trial #" in out and "| block" in out
    storage = f"sqlite:///{tmp_path / 'synthetic.db'}"
    assert len(optuna.load_study(study_name="biotune-synthetic", storage=storage).trials) == 23

    assert main(["run", str(spec), "--generations", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert "running" not in out and "recommended trial #" in out
    study = optuna.load_study(study_name="biotune-synthetic", storage=storage)
    assert len(study.trials) == 36 and max(t.user_attrs["generation"] for t in study.trials) == 2

    assert main(["run", str(spec), "--generations", "2"]) == 0  # nothing left to do
    assert "36 finished, running 0 more" in capsys.readouterr().out


def test_status_best_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    for extra in ([], ["--seed", "1"], ["--sampler", "tpe"], ["--sampler", "tpe", "--seed", "1"]):
        assert main(["run", spec, "--trials", "12", "-q", *extra]) == 0
    capsys.readouterr()

    assert main(["status", spec, "--sampler", "tpe"]) == 0
    out = capsys.readouterr().out
    assert "study `biotune-synthetic-tpe`" in out and "12 (12 complete)" in out
    assert "sampler     tpe" in out and "best        0." in out

    assert main(["best", spec, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "recommended trial #" in out and "freeze threshold" in out
    assert len([line for line in lines(out) if line.startswith("| block")]) == 1 + 6

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


def test_status_generation_of_the_synthetic_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    assert main(["run", spec, "--trials", "14", "-q"]) == 0
    capsys.readouterr()
    assert main(["status", spec]) == 0
    assert "generation  1" in capsys.readouterr().out


BAD = [
    (["run", "{dir}/absent.toml"], "no such spec file"),
    (["status", "{spec}"], "no study `biotune-synthetic`"),
    (["best", "{spec}", "--sampler", "gp"], "no study `biotune-synthetic-gp`"),
    (["compare", "{spec}"], "no study `biotune-synthetic`"),
    (["retrain", "{spec}"], "no study"),
    (["dashboard", "{spec}"], "run {spec}` first"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD, ids=[b[1][:20] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    arguments = [a.format(dir=tmp_path, spec=spec) for a in arguments]
    assert main(arguments) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and message.format(spec=spec) in err[0], err
    assert not (tmp_path / "synthetic.db").exists()


def test_a_bad_spec_and_a_missing_directory_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    spec.write_text(spec.read_text().replace('kind = "synthetic"', 'kind = "synthetic"\nfoo = 1'))
    assert main(["run", str(spec)]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "[objective] foo: unknown key" in err[0]

    spec = copy_spec("synthetic", tmp_path)
    spec.write_text(spec.read_text().replace("sqlite:///synthetic.db", "sqlite:///no/x.db"))
    assert main(["run", str(spec)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.db"))


def test_other_settings_on_an_existing_study_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = copy_spec("synthetic", tmp_path)
    assert main(["run", str(spec), "--trials", "3", "-q"]) == 0
    spec.write_text(spec.read_text().replace('name = "biotune"', 'name = "biotune"\nn_elites = 2'))
    assert main(["run", str(spec), "--trials", "6"]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 1 and "exists" in err[0] and "sampler_options" in err[0]
    storage = f"sqlite:///{tmp_path / 'synthetic.db'}"
    assert len(optuna.load_study(study_name="biotune-synthetic", storage=storage).trials) == 3


def test_bad_arguments_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    for arguments in (
        ["run", "x.toml", "--trials", "0"],
        ["run", "x.toml", "--trials", "3", "--generations", "1"],
        ["run", "x.toml", "--sampler", "bogus"],
        ["run", "x.toml", "--seed", "-1"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(arguments)
        assert exc.value.code == 2
    capsys.readouterr()


TINY = """
[study]
name = "tiny"
storage = "sqlite:///tiny.db"
artifacts = "artifacts"
[sampler]
population_size = 3
n_elites = 1
[budget]
trials = 3
[model]
source = "tests.finetune.conftest:tiny_cnn"
head = "3"
[data]
max_train_images = 128
max_val_images = 64
[protocol]
image_size = 16
max_epochs = 1
n_seeds = 2
batch_size = 32
"""


def tiny_spec(directory: Path) -> Path:
    """A BioTune spec on a 4-block CNN of the tests (random weights) and 128 digits at 16 px."""
    spec = directory / "tiny.toml"
    spec.write_text(TINY)
    return spec


def test_retrain_saves_weights_plan_and_test_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "-q"]) == 0
    capsys.readouterr()
    assert main(["retrain", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "2 seeds: test macro accuracy" in out
    results = json.loads((tmp_path / "retrained" / "tiny" / "results.json").read_text())
    assert results["train_images"] == 128 and results["test_images"] == 360
    assert len(results["test_macro_accuracy_per_seed"]) == 2
    assert all(0 <= a <= 1 for a in results["test_macro_accuracy_per_seed"])
    plan = json.loads((tmp_path / "retrained" / "tiny" / "plan.json").read_text())
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    chosen = recommended_trial(study)  # the recommended plan, not the luckiest evaluation
    assert chosen is not None and results["trial"] == chosen.number
    assert results["recommendation"]["trial"] == chosen.number
    assert plan["importances"] == [chosen.params[f"importance:{b}"] for b in plan["blocks"]]
    import torch

    for name in results["weights"]:
        weights = torch.load(tmp_path / "retrained" / "tiny" / name, weights_only=True)
        assert "3.weight" in weights
    assert len(list((tmp_path / "artifacts").iterdir())) == 2  # plan and results, for the UI

    assert main(["retrain", str(spec), "--trial", "99"]) == 2
    assert "no complete trial #99" in capsys.readouterr().err


def test_strategies_run_as_sibling_studies_and_retrain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "--strategy", "surgical"]) == 0
    out = capsys.readouterr().out
    assert "study `tiny-surgical`" in out
    assert "strategy surgical, searching block; sampler grid" in out and "4 trials" in out
    assert "Strategy `surgical`" in out and "| block " in out
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = optuna.load_study(study_name="tiny-surgical", storage=storage)
    assert sorted(t.params["block"] for t in study.trials) == ["0", "1", "2", "3"]
    assert study.user_attrs["strategy"] == "surgical" and study.user_attrs["sampler"] == "grid"
    attrs = study.trials[0].user_attrs
    assert {"fold", "frozen_blocks", "trainable_fraction", "wall_time_s", "strategy"} <= set(attrs)

    assert main(["run", str(spec), "--strategy", "lora", "-q"]) == 0  # nothing searched: 1 trial
    assert len(optuna.load_study(study_name="tiny-lora", storage=storage).trials) == 1
    assert main(["run", str(spec), "--strategy", "lora"]) == 0
    assert "1 finished, running 0 more" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text(
        TINY.replace("[sampler]\npopulation_size = 3\nn_elites = 1\n", "")
        + "[strategy]\nname = 'surgical'\nblock = 'stage9'\n"
    )
    assert main(["run", str(bad)]) == 2
    assert "[strategy] block: 'stage9' is not one of 0, 1, 2, 3" in capsys.readouterr().err

    assert main(["retrain", str(spec), "--strategy", "surgical", "-q"]) == 0
    plan = json.loads((tmp_path / "retrained" / "tiny-surgical" / "plan.json").read_text())
    chosen = recommended_trial(study)
    assert chosen is not None
    assert plan["strategy"] == "surgical" and plan["block"] == chosen.params["block"]


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


@pytest.mark.slow
def test_finetuning_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's demo, small: real Lite0 weights, 256 digits at 32 px, then resume."""
    spec = str(small_demo_spec(tmp_path))
    assert main(["run", spec, "--generations", "1"]) == 0
    out = capsys.readouterr().out
    assert "running 14 more" in out and "validation macro accuracy" in out
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 14
    assert {t.user_attrs["role"] for t in complete} >= {"init", "exploit", "offspring"}
    # well above chance (0.1) after one epoch on 256 images at 32 px (measured: 0.32)
    assert study.best_value > 0.2
    assert main(["run", spec, "--trials", "16", "-q"]) == 0
    study = optuna.load_study(study_name="biotune-lite0-digits", storage=storage)
    assert len(study.trials) == 16
    assert main(["retrain", spec, "-q"]) == 0
    assert "test macro accuracy" in capsys.readouterr().out


def test_the_cli_and_sampler_packages_import_without_torch() -> None:
    code = (
        "import sys; import biotune_optuna, biotune_optuna.samplers, biotune_optuna.cli, "
        "biotune_optuna.studies; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
