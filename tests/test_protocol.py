"""The training protocol's settings: validated, and the paper's by default."""

from __future__ import annotations

import pytest

from biotune_optuna.finetune import TrainingProtocol


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"base_lr": -1.0}, "base_lr"),
        ({"augmentation": "mixup"}, "augmentation"),
    ],
)
def test_protocol_validation(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingProtocol(**change)


def test_paper_defaults() -> None:
    p = TrainingProtocol()
    assert (p.base_lr, p.optimizer, p.t_max, p.max_epochs, p.patience) == (
        1e-3,
        "adam",
        100,
        30,
        3,
    )
    assert (p.batch_size, p.image_size, p.n_seeds, p.train_fraction) == (96, 224, 3, 0.5)
    assert not p.always_train_head and not p.mask_only
