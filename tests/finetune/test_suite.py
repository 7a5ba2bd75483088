"""The offline task suite: deterministic members, real shifts, usable as a spec's data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biotune_optuna.finetune import digits
from biotune_optuna.finetune._suite import suite_task
from biotune_optuna.finetune._suite import SUITE_TASKS
from biotune_optuna.studies import load_spec
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._objectives import load_data
from tests.conftest import MINIMAL_SPEC


TASKS = sorted(SUITE_TASKS)

MINIMAL = MINIMAL_SPEC + "[protocol]\nimage_size = 16\n"


def test_the_suite_has_four_kinds_of_shift() -> None:
    assert TASKS == ["digits-contrast", "digits-noise", "digits-on-texture", "textures"]
    assert len({task.shift for task in SUITE_TASKS.values()}) == 4


@pytest.mark.parametrize("name", TASKS)
def test_a_task_is_rgb_images_in_stratified_splits(name: str) -> None:
    data = suite_task(name, member=0, image_size=16, seed=0)
    assert data.name == f"suite:{name}#0@16px"
    images = torch.cat([data.train.images, data.val.images, data.test.images])
    assert images.shape[1:] == (3, 16, 16) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert float(images.std()) > 0.05  # not blank
    counts = np.bincount(data.train_labels, minlength=data.num_classes)
    assert counts.min() > 0.8 * counts.max()  # stratified, every class present
    assert len(data.val_labels) == len(data.test_labels)


@pytest.mark.parametrize("name", TASKS)
def test_a_member_is_deterministic_and_members_differ(name: str) -> None:
    first = suite_task(name, member=3, image_size=16)
    again = suite_task(name, member=3, image_size=16)
    other = suite_task(name, member=4, image_size=16)
    assert torch.equal(first.train.images, again.train.images)
    assert np.array_equal(first.train_labels, again.train_labels)
    assert not torch.equal(first.train.images, other.train.images)


def test_members_of_textures_draw_other_photos() -> None:
    drawn = {tuple(suite_task("textures", member=m, image_size=8).classes) for m in range(4)}
    assert len(drawn) > 1 and all(len(classes) == 8 for classes in drawn)


def test_the_shifts_change_the_digits_not_their_labels() -> None:
    plain = digits(image_size=16, seed=1)
    for name in ("digits-contrast", "digits-noise", "digits-on-texture"):
        shifted = suite_task(name, image_size=16, seed=1)
        assert np.array_equal(shifted.train_labels, plain.train_labels)
        difference = (shifted.train.images - plain.train.images).abs().mean()
        assert float(difference) > 0.1, name


def test_the_contrast_task_is_in_colour_and_low_contrast() -> None:
    images = suite_task("digits-contrast", image_size=16).train.images
    channels = images.mean(dim=(2, 3))
    assert float((channels.max(1).values - channels.min(1).values).mean()) > 0.1  # coloured
    spread = images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3))
    assert float(spread.median()) < 0.6  # digits at 0..1 span 1


def test_unknown_tasks_and_negative_members_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown suite task 'bricks'; known: textures"):
        suite_task("bricks")
    with pytest.raises(ValueError, match="member must be >= 0"):
        suite_task("textures", member=-1)


def test_a_spec_names_a_task_and_its_member(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(MINIMAL + '[data]\nsource = "suite:digits-noise"\nmember = 2\n')
    spec = load_spec(path)
    assert spec.data is not None and (spec.data.source, spec.data.member) == (
        "suite:digits-noise",
        2,
    )
    data = load_data(spec)
    assert data.name.startswith("suite:digits-noise#2@16px")
    assert torch.equal(
        data.val.images, suite_task("digits-noise", member=2, image_size=16).val.images
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('source = "suite:bricks"', "[data] source: use one of digits, suite:textures"),
        ('source = "suite:textures"\nroot = "x"', "[data] root: not used by suite:textures"),
        ('source = "digits"\nmember = 1', "[data] member: only a suite:<task> source has"),
        ('source = "suite:textures"\nmember = -1', "[data] member:"),
    ],
)
def test_a_bad_suite_source_is_one_line(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(MINIMAL + "[data]\n" + data + "\n")
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert message in str(error.value) and "\n" not in str(error.value)
