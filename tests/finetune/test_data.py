"""Data: the offline digits, stratified splits and folds, ImageFolder trees, torchvision names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biotune_optuna.finetune import digits
from biotune_optuna.finetune._data import image_folder
from biotune_optuna.finetune._data import n_folds_for
from biotune_optuna.finetune._data import stratified_folds
from biotune_optuna.finetune._data import torchvision_dataset


def test_digits_are_rgb_images_in_stratified_splits() -> None:
    data = digits(image_size=32, seed=0)
    assert data.num_classes == 10 and data.name == "digits@32px"
    assert data.test is not None and data.test_labels is not None
    sizes = (len(data.train), len(data.val), len(data.test))
    assert sum(sizes) == 1797 and sizes == (1077, 360, 360)
    image, label = data.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert float(image.min()) >= 0 and float(image.max()) <= 1 and float(image.max()) > 0.5
    assert torch.equal(image[0], image[1])  # grey repeated over RGB
    assert label == data.train_labels[0]
    for labels in (data.train_labels, data.val_labels, data.test_labels):
        share = np.bincount(labels, minlength=10) / len(labels)
        assert np.abs(share - 0.1).max() < 0.015
    train = {tuple(x.flatten()[:64].tolist()) for x in data.train.images[:50]}
    test = {tuple(x.flatten()[:64].tolist()) for x in data.test.images}
    assert len(train & test) < 5  # splits do not share images (a few digits are duplicates)


def test_stratified_folds() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    folds = stratified_folds(labels, 2, seed=0)
    assert len(folds) == 2
    assert sorted(np.concatenate(folds).tolist()) == list(range(100))
    for fold in folds:
        assert np.bincount(labels[fold]).tolist() == [5, 10, 15, 20]
    assert [f.tolist() for f in stratified_folds(labels, 2, seed=0)] == [f.tolist() for f in folds]
    assert len(stratified_folds(labels, 1)[0]) == 100
    with pytest.raises(ValueError, match="only 1 examples"):
        stratified_folds(np.array([0, 0, 1]), 2)


def test_n_folds() -> None:
    assert [n_folds_for(f) for f in (1.0, 0.5, 0.34, 0.25)] == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        n_folds_for(0.0)


def _write_images(root: Path, counts: dict[str, int]) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


def test_image_folder_single_tree_is_split(tmp_path: Path) -> None:
    _write_images(tmp_path / "shapes", {"circle": 10, "square": 10})
    data = image_folder(tmp_path / "shapes", image_size=24, val_fraction=0.2, test_fraction=0.2)
    assert data.classes == ["circle", "square"]
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 4)  # type: ignore[arg-type]
    image, label = data.val[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32 and label in (0, 1)
    assert np.bincount(data.val_labels).tolist() == [2, 2]


def test_image_folder_with_split_directories(tmp_path: Path) -> None:
    _write_images(tmp_path / "train", {"a": 4, "b": 4})
    _write_images(tmp_path / "val", {"a": 2, "b": 2})
    data = image_folder(tmp_path, image_size=16)
    assert (len(data.train), len(data.val), data.test) == (8, 4, None)
    assert data.val_labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(FileNotFoundError):
        image_folder(tmp_path / "missing")


def test_torchvision_datasets_never_download_unless_asked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download=False"):
        torchvision_dataset("CIFAR10", root=tmp_path)
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="unknown torchvision dataset"):
        torchvision_dataset("NoSuchSet", root=tmp_path)
