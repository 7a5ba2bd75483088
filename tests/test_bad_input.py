"""Every kind of bad input: one line naming the problem, exit code 2, nothing created.

The cases the reliability issue lists, each through ``biotune-optuna run`` as a user meets it:
malformed specs, unknown parts, storages that are malformed, unreachable, a directory or a
corrupted file, and a study that exists with other sampler settings.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from biotune_optuna.cli import main


SYNTHETIC = """
[study]
name = "s"
storage = "{storage}"
[sampler]
population_size = 4
n_elites = 1
[budget]
trials = 6
[objective]
kind = "synthetic"
"""

FINETUNE = """
[study]
name = "f"
storage = "sqlite:///f.db"
[budget]
trials = 2
[model]
source = "{model}"
[data]
source = "{data}"
max_train_images = 64
[protocol]
image_size = 16
max_epochs = 1
"""

# (spec text, text the one line must contain)
CASES = {
    "unknown key": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 1\npopsize = 3"),
        "[sampler] popsize",
    ),
    "wrong type": (SYNTHETIC.replace("trials = 6", 'trials = "six"'), "[budget] trials"),
    "zero population": (
        SYNTHETIC.replace("population_size = 4", "population_size = 0"),
        "[sampler] population_size",
    ),
    "negative population": (
        SYNTHETIC.replace("population_size = 4", "population_size = -4"),
        "[sampler] population_size",
    ),
    "elites >= population": (
        SYNTHETIC.replace("n_elites = 1", "n_elites = 4"),
        "n_elites: must be >= 0 and below population_size (4)",
    ),
    "unknown sampler": (
        SYNTHETIC.replace("population_size = 4\nn_elites = 1", 'name = "annealing"'),
        "unknown sampler 'annealing'",
    ),
    "unknown model": (
        FINETUNE.format(model="torchvision:resnet9000", data="digits"),
        "[model] source: 'torchvision:resnet9000'",
    ),
    "unknown model family": (
        FINETUNE.format(model="resnet50", data="digits"),
        "[model] source",
    ),
    "unknown dataset": (
        FINETUNE.format(model="tests.finetune.conftest:tiny_cnn", data="imagenet"),
        "[data] source",
    ),
    "unknown torchvision dataset": (
        FINETUNE.format(
            model="tests.finetune.conftest:tiny_cnn", data="torchvision:NoSuchSet"
        ).replace("[data]", '[data]\nroot = "."'),
        "[data] source: 'torchvision:NoSuchSet'",
    ),
    "code instead of a name": (
        FINETUNE.format(model="__import__('os').system('touch pwned')", data="digits"),
        "[model] source",
    ),
    "malformed sqlite URL": (SYNTHETIC.format(storage="sqlite:/s.db"), "sqlite:///<path>"),
    "a path, not a URL": (SYNTHETIC.format(storage="s.db"), "not a storage URL"),
    "unknown database": (
        SYNTHETIC.format(storage="postgres://me@127.0.0.1/s"),
        "unknown database 'postgres'",
    ),
    "unreachable server": (
        SYNTHETIC.format(storage="postgresql://me:secret@127.0.0.1:1/s"),
        "cannot open storage postgresql://me:***@127.0.0.1:1/s",
    ),
    "missing directory": (SYNTHETIC.format(storage="sqlite:///no/such/s.db"), "does not exist"),
    "directory at the SQLite path": (SYNTHETIC.format(storage="sqlite:///dir.db"), "not a file"),
    "corrupted SQLite file": (
        SYNTHETIC.format(storage="sqlite:///broken.db"),
        "is not an SQLite database",
    ),
    "corrupted journal file": (
        SYNTHETIC.format(storage="journal:///broken.log"),
        "is not an Optuna journal",
    ),
}


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(directory.rglob("*"))
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    text, expected = CASES[case]
    spec = tmp_path / "spec.toml"
    spec.write_text(text.replace("{storage}", "sqlite:///s.db"))
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "broken.db").write_bytes(b"\x00\x01 not a database " * 64)
    (tmp_path / "broken.log").write_text("this is no journal\n")
    monkeypatch.chdir(tmp_path)  # where a `touch pwned` would land
    before = snapshot(tmp_path)
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("biotune-optuna: error: ") and expected in lines[0], lines[0]
    assert "secret" not in err
    assert snapshot(tmp_path) == before, "bad input must create or change nothing"


def test_an_existing_study_with_other_sampler_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.toml"
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec.write_text(SYNTHETIC.format(storage=storage))
    assert main(["run", str(spec), "-q"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    spec.write_text(SYNTHETIC.format(storage=storage).replace("n_elites = 1", "n_elites = 2"))
    assert main(["run", str(spec)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "exists" in err[0] and "n_elites" in err[0], err
    before.pop("spec.toml")
    after = snapshot(tmp_path)
    after.pop("spec.toml")
    assert after == before
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 6
