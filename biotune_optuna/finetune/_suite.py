"""An offline task suite in which different blocks of a pretrained CNN matter.

Each task shifts the data away from ImageNet in a different *kind* of way, so the plan that
fine-tunes best (which blocks are trained, at which learning-rate multipliers) differs between
them. Everything is generated from data that ships with scikit-learn and scikit-image, so
nothing is downloaded, and every image is a deterministic function of the task's ``member``
(a draw of the family: other photos, other colours, other noise) and its index.

Tasks (``[data] source = "suite:<task>"``, ``[data] member = k``):

- ``textures``: which photo is this grey patch cut from? Low-level texture statistics: no
  colour, no object shape, brightness and contrast redrawn at random. ``member`` chooses 8
  of the 15 photos and the patch scale.
- ``digits-contrast``: digits drawn in low contrast with random foreground and background
  colours, half of them inverted: a colour and contrast shift over a shape task.
- ``digits-noise``: digits blurred and buried in Gaussian noise: a low-level corruption.
- ``digits-on-texture``: digits composited on patches of the texture photos: shape against
  clutter.

Sources and licences (each stated in scikit-image's ``skimage.data`` docstrings): brick, grass,
gravel (CC0Textures, CC0); camera, coffee, chelsea (CC0 by their photographers); cell,
retina (CC0); clock, coins, text, immunohistochemistry, astronaut (public domain or
no known copyright restrictions); hubble_deep_field (NASA, public domain); rocket (SpaceX,
public domain). scikit-learn's ``load_digits`` is the UCI optical digits test set (CC BY 4.0).
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from biotune_optuna.finetune._data import ClassificationData
from biotune_optuna.finetune._data import digit_strokes
from biotune_optuna.finetune._data import split_tensor_task


__all__ = ["SUITE_TASKS", "TEXTURE_PHOTOS", "SuiteTask", "suite_task"]

#: The bundled photos patches are cut from: scikit-image's ``skimage.data`` loader names, all
#: CC0 or public domain (see the module docstring), each at least 300 px on its shorter side.
TEXTURE_PHOTOS = (
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "text",
    "cell",
    "clock",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
)

_TEXTURE_CLASSES = 8
_PATCHES_PER_CLASS = 120


@dataclasses.dataclass(frozen=True)
class SuiteTask:
    """One task of the suite.

    Attributes:
        name: The task's name, as in ``suite:<name>``.
        shift: What differs from ImageNet, in a few words.
        make: ``make(member, image_size) -> (images, labels, classes)``: images ``N×3×S×S`` in
            ``[0, 1]``.
    """

    name: str
    shift: str
    make: Callable[[int, int], tuple[torch.Tensor, np.ndarray, list[str]]]


def _rng(task: str, member: int) -> np.random.Generator:
    """The task member's own random stream (independent of every other task and member)."""
    key = [int.from_bytes(task.encode(), "little") % (2**63), member]
    return np.random.default_rng(key)


def _grey_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as a float grey image in ``[0, 1]``."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return image / 255.0


def _patches(
    photo: np.ndarray, count: int, crop: int, image_size: int, rng: np.random.Generator
) -> torch.Tensor:
    """``count`` random ``crop``-pixel patches of ``photo``, flipped and rotated at random,
    resized (antialiased) to ``image_size``: ``count×1×S×S``."""
    height, width = photo.shape
    rows = rng.integers(0, height - crop + 1, size=count)
    cols = rng.integers(0, width - crop + 1, size=count)
    turns = rng.integers(0, 4, size=count)
    flips = rng.random(count) < 0.5
    out = []
    for row, col, turn, flip in zip(rows, cols, turns, flips):
        patch = np.rot90(photo[row : row + crop, col : col + crop], int(turn))
        out.append(np.ascontiguousarray(patch[:, ::-1] if flip else patch))
    stack = torch.from_numpy(np.stack(out))[:, None]
    return F.interpolate(stack, size=(image_size, image_size), mode="bilinear", antialias=True)


def _standardised(patches: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Patches with their brightness and contrast taken out and redrawn at random, so that
    only texture tells the photos apart (a photo's mean grey level would give it away)."""
    mean = patches.mean(dim=(1, 2, 3), keepdim=True)
    std = patches.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    n = patches.shape[0]
    level = torch.from_numpy(rng.uniform(0.35, 0.65, size=(n, 1, 1, 1)).astype(np.float32))
    gain = torch.from_numpy(rng.uniform(0.12, 0.22, size=(n, 1, 1, 1)).astype(np.float32))
    return (level + gain * (patches - mean) / std).clamp_(0, 1)


def _textures(member: int, image_size: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    rng = _rng("textures", member)
    chosen = sorted(rng.choice(len(TEXTURE_PHOTOS), size=_TEXTURE_CLASSES, replace=False))
    crop = int(rng.integers(48, 97))
    images, labels = [], []
    for label, index in enumerate(chosen):
        photo = _grey_photo(TEXTURE_PHOTOS[index])
        images.append(_patches(photo, _PATCHES_PER_CLASS, crop, image_size, rng))
        labels.append(np.full(_PATCHES_PER_CLASS, label, dtype=np.int64))
    grey = _standardised(torch.cat(images), rng)
    classes = [TEXTURE_PHOTOS[i] for i in chosen]
    return grey.expand(-1, 3, -1, -1).contiguous(), np.concatenate(labels), classes


def _digits_contrast(member: int, image_size: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    rng = _rng("digits-contrast", member)
    strokes, labels, classes = digit_strokes(image_size)
    n = len(labels)
    contrast = float(rng.uniform(0.15, 0.35))
    background = torch.from_numpy(rng.uniform(0.2, 0.8, size=(n, 3, 1, 1)).astype(np.float32))
    direction = torch.from_numpy(rng.normal(size=(n, 3, 1, 1)).astype(np.float32))
    direction = direction / direction.norm(dim=1, keepdim=True)
    invert = torch.from_numpy(rng.random(n) < 0.5)[:, None, None, None]
    strokes = torch.where(invert, 1 - strokes, strokes)
    images = background + contrast * direction * strokes
    return images.clamp_(0, 1), labels, classes


def _digits_noise(member: int, image_size: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    rng = _rng("digits-noise", member)
    strokes, labels, classes = digit_strokes(image_size)
    sigma = float(rng.uniform(0.8, 1.6)) * image_size / 32
    noise_sd = float(rng.uniform(0.25, 0.45))
    radius = max(1, round(2 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(strokes, kernel.view(1, 1, 1, -1), padding=(0, radius))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    shape = (len(labels), 3, image_size, image_size)
    noise = torch.from_numpy(rng.normal(0, noise_sd, size=shape))
    images = blurred.expand(-1, 3, -1, -1) + noise.float()
    return images.clamp_(0, 1), labels, classes


def _digits_on_texture(
    member: int, image_size: int
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    rng = _rng("digits-on-texture", member)
    strokes, labels, classes = digit_strokes(image_size)
    n = len(labels)
    photos = rng.choice(len(TEXTURE_PHOTOS), size=4, replace=False)
    which = rng.integers(0, len(photos), size=n)
    backgrounds = torch.empty(n, 1, image_size, image_size)
    for k, index in enumerate(photos):
        rows = np.flatnonzero(which == k)
        photo = _grey_photo(TEXTURE_PHOTOS[index])
        backgrounds[rows] = _patches(photo, len(rows), 64, image_size, rng)
    ink = torch.from_numpy(rng.random(n) < 0.5).float()[:, None, None, None]
    images = backgrounds * (1 - 0.8 * strokes) + 0.8 * strokes * ink
    return images.clamp_(0, 1).expand(-1, 3, -1, -1).contiguous(), labels, classes


#: The suite by name: each task shifts the data from ImageNet in another kind of way.
SUITE_TASKS: dict[str, SuiteTask] = {
    task.name: task
    for task in (
        SuiteTask("textures", "low-level texture, no colour or shape", _textures),
        SuiteTask("digits-contrast", "colour and low contrast over shape", _digits_contrast),
        SuiteTask("digits-noise", "blur and heavy noise over shape", _digits_noise),
        SuiteTask("digits-on-texture", "shape against textured clutter", _digits_on_texture),
    )
}


def suite_task(
    name: str,
    *,
    member: int = 0,
    image_size: int = 32,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ClassificationData:
    """A task of the offline suite, deterministic from ``member`` and ``seed``.

    Args:
        name: One of :data:`SUITE_TASKS` (``textures``, ``digits-contrast``, ``digits-noise``,
            ``digits-on-texture``).
        member: Which member of the task's family: another draw of photos, colours, noise
            levels. Results can be checked on members nobody tuned on.
        image_size: Side of the square images.
        val_fraction: Share held out for validation (stratified).
        test_fraction: Share held out for test (stratified).
        seed: Seed of the split.

    Raises:
        ValueError: If ``name`` is not a task of the suite or ``member`` is negative.
    """
    task = SUITE_TASKS.get(name)
    if task is None:
        raise ValueError(f"unknown suite task {name!r}; known: {', '.join(SUITE_TASKS)}")
    if member < 0:
        raise ValueError(f"member must be >= 0, got {member}")
    images, labels, classes = task.make(member, image_size)
    label = f"suite:{name}#{member}@{image_size}px"
    return split_tensor_task(
        images, labels, classes, fractions=(val_fraction, test_fraction), seed=seed, name=label
    )
