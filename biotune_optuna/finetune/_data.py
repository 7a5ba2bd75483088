"""Image classification data: train/val/test splits and the paper's stratified folds.

Every dataset here yields ``(image, label)`` with the image a float tensor in ``[0, 1]``, shape
``(3, size, size)``; normalisation is the backbone's business (the engine applies it on the
device). Sources:

- :func:`digits`: scikit-learn's bundled ``load_digits`` upsampled to RGB (offline default).
- :func:`torchvision_dataset`: torchvision datasets by name (Flowers102, CIFAR10, DTD, …).
- :func:`image_folder`: an ``ImageFolder`` tree, with or without ``train/``, ``val/``, ``test/``.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data import Subset


__all__ = [
    "ClassificationData",
    "TensorImages",
    "digit_strokes",
    "digits",
    "image_folder",
    "image_transform",
    "n_folds_for",
    "split_tensor_task",
    "stratified_folds",
    "torchvision_dataset",
]


class TensorImages(Dataset):
    """Images held in memory as one tensor (``N×3×H×W``, float in ``[0, 1]``) with labels.

    The engine slices it directly instead of going through a ``DataLoader``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if images.ndim != 4 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"expected N×C×H×W images and N labels, got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


@dataclasses.dataclass
class ClassificationData:
    """Train, validation and test splits of one classification task.

    Attributes:
        train: The training split.
        val: The validation split (selection happens here).
        test: The test split, used once per seed after the search.
        train_labels: Labels of ``train`` (for stratified folds).
        val_labels: Labels of ``val``.
        test_labels: Labels of ``test``.
        classes: Class names; ``len(classes)`` is the number of classes.
        name: A short description, e.g. ``"digits@64px"``.
    """

    train: Dataset
    val: Dataset
    test: Dataset | None
    train_labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray | None
    classes: list[str]
    name: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def limit(
        self, *, max_train: int | None = None, max_val: int | None = None, seed: int = 0
    ) -> ClassificationData:
        """A stratified subset of at most ``max_train`` train and ``max_val`` val examples.

        For quick runs (smoke tests, notebooks on a CPU); the test split is kept whole.
        """
        train, train_labels = _limit(self.train, self.train_labels, max_train, seed)
        val, val_labels = _limit(self.val, self.val_labels, max_val, seed)
        name = self.name
        if len(train_labels) < len(self.train_labels) or len(val_labels) < len(self.val_labels):
            name = f"{self.name} ({len(train_labels)} train, {len(val_labels)} val)"
        return dataclasses.replace(
            self,
            train=train,
            val=val,
            train_labels=train_labels,
            val_labels=val_labels,
            name=name,
        )


def _limit(
    dataset: Dataset, labels: np.ndarray, limit: int | None, seed: int
) -> tuple[Dataset, np.ndarray]:
    if limit is None or limit >= len(labels):
        return dataset, labels
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(labels))
    if limit < n_classes:
        raise ValueError(f"cannot keep {limit} examples of {n_classes} classes stratified")
    keep, _ = train_test_split(
        np.arange(len(labels)), train_size=limit, stratify=labels, random_state=seed
    )
    keep = np.sort(keep)
    if isinstance(dataset, TensorImages):
        index = torch.as_tensor(keep)
        return TensorImages(dataset.images[index], dataset.labels[index]), labels[keep]
    return Subset(dataset, keep.tolist()), labels[keep]


def n_folds_for(train_fraction: float) -> int:
    """Number of folds, ``ceil(1 / train_fraction)`` (0.5 → 2; arXiv:2508.15367, §III)."""
    if not 0 < train_fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    return math.ceil(1.0 / train_fraction - 1e-9)


def stratified_folds(labels: np.ndarray, n_folds: int, *, seed: int = 0) -> list[np.ndarray]:
    """Cut a split into ``n_folds`` disjoint stratified folds (sorted index arrays).

    With one fold the whole split is returned.
    """
    labels = np.asarray(labels)
    if n_folds == 1:
        return [np.arange(len(labels))]
    from sklearn.model_selection import StratifiedKFold

    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < n_folds:
        raise ValueError(
            f"cannot cut {n_folds} stratified folds: a class has only {counts.min()} examples"
        )
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [np.sort(test) for _, test in splitter.split(np.zeros(len(labels)), labels)]


def _split(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/val/test indices with the given val and test fractions."""
    from sklearn.model_selection import train_test_split

    val_fraction, test_fraction = fractions
    if val_fraction <= 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val and test fractions must be > 0, >= 0 and sum below 1, got {fractions}"
        )
    indices = np.arange(len(labels))
    test = np.array([], dtype=int)
    if test_fraction > 0:
        indices, test = train_test_split(
            indices, test_size=test_fraction, stratify=labels, random_state=seed
        )
    train, val = train_test_split(
        indices,
        test_size=val_fraction / (1 - test_fraction),
        stratify=labels[indices],
        random_state=seed,
    )
    return np.sort(train), np.sort(val), np.sort(test)


def digits(
    *, image_size: int = 64, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> ClassificationData:
    """scikit-learn's handwritten digits (1797 images of 8×8, 10 classes) as RGB images.

    Bundled with scikit-learn, so it needs no download: the offline default. Images are
    upsampled bilinearly to ``image_size`` and repeated over three channels; the splits are
    stratified with ``seed``.
    """
    strokes, labels, classes = digit_strokes(image_size)
    images = strokes.expand(-1, 3, -1, -1).contiguous()
    return split_tensor_task(
        images,
        labels,
        classes,
        fractions=(val_fraction, test_fraction),
        seed=seed,
        name=f"digits@{image_size}px",
    )


def digit_strokes(image_size: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """scikit-learn's digits as stroke intensities ``N×1×S×S`` in ``[0, 1]``, upsampled
    bilinearly, with their labels and class names."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    strokes = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    strokes = torch.nn.functional.interpolate(
        strokes, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    labels = np.asarray(bunch.target, dtype=np.int64)
    return strokes.clamp_(0, 1), labels, [str(c) for c in bunch.target_names]


def split_tensor_task(
    images: torch.Tensor,
    labels: np.ndarray,
    classes: list[str],
    *,
    fractions: tuple[float, float],
    seed: int,
    name: str,
) -> ClassificationData:
    """Images held in memory, split stratified into train/val/test.

    Args:
        images: ``N×3×S×S`` floats in ``[0, 1]``.
        labels: ``N`` class indices.
        classes: The class names.
        fractions: The val and test fractions.
        seed: Seed of the split.
        name: A short description of the task.
    """
    train, val, test = _split(labels, fractions, seed)

    def part(index: np.ndarray) -> TensorImages:
        return TensorImages(images[torch.as_tensor(index)], labels[index])

    return ClassificationData(
        train=part(train),
        val=part(val),
        test=part(test) if len(test) else None,
        train_labels=labels[train],
        val_labels=labels[val],
        test_labels=labels[test] if len(test) else None,
        classes=classes,
        name=name,
    )


def image_transform(image_size: int) -> Callable[[Any], torch.Tensor]:
    """An image file's pixels as the engine trains on them: RGB, the shorter side resized to
    ``image_size``, center-cropped to a square, float in ``[0, 1]``."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.RGB(),
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def _labels_of(dataset: Dataset) -> np.ndarray:
    for attr in ("targets", "labels", "_labels", "_samples_labels"):
        value = getattr(dataset, attr, None)
        if value is not None and len(value) == len(dataset):  # type: ignore[arg-type]
            return np.asarray(value, dtype=np.int64)
    samples = getattr(dataset, "samples", None) or getattr(dataset, "_samples", None)
    if samples is not None:
        return np.asarray([label for _, label in samples], dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)  # type: ignore[arg-type]


# How each torchvision dataset names its splits: "split" values, or the "train" flag.
_SPLITS: dict[str, dict[str, Any]] = {
    "Flowers102": {
        "train": {"split": "train"},
        "val": {"split": "val"},
        "test": {"split": "test"},
    },
    "DTD": {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}},
    "FGVCAircraft": {
        "train": {"split": "train"},
        "val": {"split": "val"},
        "test": {"split": "test"},
    },
    "CIFAR10": {"train": {"train": True}, "test": {"train": False}},
    "CIFAR100": {"train": {"train": True}, "test": {"train": False}},
    "MNIST": {"train": {"train": True}, "test": {"train": False}},
    "FashionMNIST": {"train": {"train": True}, "test": {"train": False}},
    "KMNIST": {"train": {"train": True}, "test": {"train": False}},
    "USPS": {"train": {"train": True}, "test": {"train": False}},
    "SVHN": {"train": {"split": "train"}, "test": {"split": "test"}},
    "STL10": {"train": {"split": "train"}, "test": {"split": "test"}},
    "OxfordIIITPet": {"train": {"split": "trainval"}, "test": {"split": "test"}},
    "Food101": {"train": {"split": "train"}, "test": {"split": "test"}},
    "EuroSAT": {"all": {}},
    "Caltech101": {"all": {}},
    "StanfordCars": {"train": {"split": "train"}, "test": {"split": "test"}},
    "GTSRB": {"train": {"split": "train"}, "test": {"split": "test"}},
}


def _classes_of(dataset: Dataset, labels: np.ndarray) -> list[str]:
    classes = getattr(dataset, "classes", None) or getattr(dataset, "categories", None)
    if classes is not None and len(classes) > int(labels.max()):
        return [str(c) for c in classes]
    return [str(c) for c in range(int(labels.max()) + 1)]


def _carve_val(
    train: Dataset, labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[Subset, Subset, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    tr, va = train_test_split(index, test_size=val_fraction, stratify=labels, random_state=seed)
    tr, va = np.sort(tr), np.sort(va)
    return Subset(train, tr.tolist()), Subset(train, va.tolist()), labels[tr], labels[va]


def torchvision_dataset(
    name: str,
    *,
    root: str | Path,
    image_size: int = 224,
    download: bool = False,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ClassificationData:
    """A torchvision dataset by class name, with its official splits where it has them.

    Datasets without a validation split get one carved from train (stratified,
    ``val_fraction``); datasets without any split (EuroSAT, Caltech101) are split
    train/val/test. Images are resized, center-cropped to ``image_size`` and made RGB.

    Args:
        name: The torchvision class name, e.g. ``"Flowers102"`` or ``"CIFAR10"``.
        root: Where the data lives (or is downloaded to).
        image_size: Side of the square images.
        download: Let torchvision download the data. Off by default: nothing downloads unless
            asked.
        val_fraction: Fraction carved for validation where there is no official val split.
        test_fraction: Fraction kept for test where there is no official split at all.
        seed: Seed of the carved splits.
    """
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    if cls is None or not isinstance(cls, type):
        known = ", ".join(sorted(_SPLITS))
        raise ValueError(f"unknown torchvision dataset {name!r}; known: {known}")
    splits = _SPLITS.get(name, {"train": {"train": True}, "test": {"train": False}})
    transform = image_transform(image_size)

    def make(**kwargs: Any) -> Dataset:
        try:
            return cls(root=str(root), transform=transform, download=download, **kwargs)
        except RuntimeError as error:
            hint = "" if download else " (download=False: put the files there or allow download)"
            raise FileNotFoundError(f"{name} not found under {root}: {error}{hint}") from None

    if "all" in splits:
        full = make()
        labels = _labels_of(full)
        tr, va, te = _split(labels, (val_fraction, test_fraction), seed)
        train: Dataset = Subset(full, tr.tolist())
        val: Dataset = Subset(full, va.tolist())
        test: Dataset | None = Subset(full, te.tolist())
        train_labels, val_labels, test_labels = labels[tr], labels[va], labels[te]
        classes = _classes_of(full, labels)
    else:
        full_train = make(**splits["train"])
        all_train_labels = _labels_of(full_train)
        if "val" in splits:
            train, val = full_train, make(**splits["val"])
            train_labels, val_labels = all_train_labels, _labels_of(val)
        else:
            train, val, train_labels, val_labels = _carve_val(
                full_train, all_train_labels, val_fraction, seed
            )
        test = make(**splits["test"])
        test_labels = _labels_of(test)
        classes = _classes_of(full_train, all_train_labels)
    return ClassificationData(
        train=train,
        val=val,
        test=test,
        train_labels=train_labels,
        val_labels=val_labels,
        test_labels=test_labels,
        classes=classes,
        name=f"{name}@{image_size}px",
    )


def image_folder(
    root: str | Path,
    *,
    image_size: int = 224,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ClassificationData:
    """An ``ImageFolder`` tree (``root/<class>/<image>``).

    If ``root`` holds ``train/`` and ``val/`` (and optionally ``test/``) trees, they are the
    splits; otherwise the one tree is split stratified into train/val/test.
    """
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    transform = image_transform(image_size)
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = ImageFolder(str(root / "train"), transform=transform)
        val = ImageFolder(str(root / "val"), transform=transform)
        if val.classes != train.classes:
            raise ValueError(f"{root}: train/ and val/ have different classes")
        test = None
        if (root / "test").is_dir():
            test = ImageFolder(str(root / "test"), transform=transform)
            if test.classes != train.classes:
                raise ValueError(f"{root}: train/ and test/ have different classes")
        return ClassificationData(
            train=train,
            val=val,
            test=test,
            train_labels=_labels_of(train),
            val_labels=_labels_of(val),
            test_labels=None if test is None else _labels_of(test),
            classes=list(train.classes),
            name=f"{root.name}@{image_size}px",
        )
    full = ImageFolder(str(root), transform=transform)
    labels = _labels_of(full)
    tr, va, te = _split(labels, (val_fraction, test_fraction), seed)
    return ClassificationData(
        train=Subset(full, tr.tolist()),
        val=Subset(full, va.tolist()),
        test=Subset(full, te.tolist()) if len(te) else None,
        train_labels=labels[tr],
        val_labels=labels[va],
        test_labels=labels[te] if len(te) else None,
        classes=list(full.classes),
        name=f"{root.name}@{image_size}px",
    )
