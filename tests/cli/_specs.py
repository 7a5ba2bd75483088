"""What the CLI tests share: a tiny fine-tuning spec, the non-blank lines of an output, and a
command's output on a sibling study."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune_optuna.cli import main
from tests.conftest import copy_spec


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()]


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


def sibling_output(
    directory: Path, capsys: pytest.CaptureFixture[str], command: str, *selection: str
) -> str:
    """What ``command`` prints on the synthetic spec's sibling study ``selection`` (e.g.
    ``--seed 1``), after 12 trials of the spec's own study and 12 of that sibling."""
    spec = str(copy_spec("synthetic", directory))
    for extra in ([], list(selection)):
        assert main(["run", spec, "--trials", "12", "-q", *extra]) == 0
    capsys.readouterr()
    assert main([command, spec, *selection]) == 0
    return capsys.readouterr().out
