"""What the CLI tests share: a tiny fine-tuning spec, and the non-blank lines of an output."""

from __future__ import annotations

from pathlib import Path


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
