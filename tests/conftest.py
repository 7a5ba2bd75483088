from __future__ import annotations

from pathlib import Path
import re

import pytest


pytest.register_assert_rewrite("optuna.testing.pytest_samplers")

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def copy_spec(
    name: str, directory: Path, *, data: dict[str, int] | None = None, **protocol: int
) -> Path:
    """A copy of ``studies/<name>.toml`` in ``directory`` (so its SQLite file lands there),
    optionally with fewer images (``[data] max_*``) and other ``[protocol]`` values."""
    text = (STUDIES / f"{name}.toml").read_text()
    for key, value in protocol.items():
        text, n = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        if not n:
            text = text.replace("[protocol]", f"[protocol]\n{key} = {value}", 1)
    if data:
        lines = "\n".join(f"{k} = {v}" for k, v in data.items())
        text = re.sub(r"(?m)^\[data\].*$", lambda m: f"{m.group(0)}\n{lines}", text, count=1)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def small_demo_spec(directory: Path) -> Path:
    """The demo spec on 256 train / 128 val digits at 32 px, one epoch: seconds per trial."""
    return copy_spec(
        "demo",
        directory,
        data={"max_train_images": 256, "max_val_images": 128},
        image_size=32,
        max_epochs=1,
    )
