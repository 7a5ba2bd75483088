"""``predict``: classify image files with the model ``retrain`` wrote."""

from __future__ import annotations

import json
from pathlib import Path
import re
import subprocess
import sys

import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.cli._specs import TINY
from tests.conftest import copy_spec


#: ``<path>: <class> (<probability>)[, <class> (<probability>)...]``
LINE = re.compile(r"^(?P<path>.+?): (?P<top>\S+ \(\d\.\d{4}\)(, \S+ \(\d\.\d{4}\))*)$")


def _digit_images(directory: Path, *, image_size: int, count: int) -> dict[Path, str]:
    """``count`` digits of the test split (the spec's split: seed 0) as PNG files, with their
    classes."""
    from torchvision.transforms.v2.functional import to_pil_image

    from biotune_optuna.finetune import digits

    data = digits(image_size=image_size, seed=0)
    assert data.test is not None
    directory.mkdir(exist_ok=True)
    images = {}
    for index in range(count):
        image, label = data.test[index]
        path = directory / f"digit{index}.png"
        to_pil_image(image).save(path)
        images[path] = data.classes[label]
    return images


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-seed tiny study, searched and retrained: its spec."""
    directory = tmp_path_factory.mktemp("predict")
    spec = directory / "tiny.toml"
    spec.write_text(TINY.replace("n_seeds = 2", "n_seeds = 1"))
    assert main(["run", str(spec), "-q"]) == 0
    return spec


def test_retrain_with_one_seed_gives_no_spread(
    retrained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retrain", str(retrained)]) == 0
    out = capsys.readouterr().out
    assert "1 seed: test macro accuracy" in out and "no spread with one seed" in out
    assert "±" not in out and "biotune-optuna predict" in out


def test_predict_prints_a_class_and_probability_per_image(
    retrained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (retrained.parent / "retrained" / "tiny" / "results.json").exists():
        assert main(["retrain", str(retrained), "-q"]) == 0
    images = _digit_images(retrained.parent / "images", image_size=16, count=6)
    capsys.readouterr()
    assert main(["predict", str(retrained), *map(str, images), "-q"]) == 0
    out = lines(capsys.readouterr().out)
    assert len(out) == 6
    for line, path in zip(out, images, strict=True):
        match = LINE.match(line)
        assert match is not None and match["path"] == str(path)
        name, probability = match["top"].split(" ")
        assert name in [str(d) for d in range(10)] and 0 <= float(probability[1:-1]) <= 1

    output = retrained.parent / "retrained" / "tiny"
    for model in (output, output / "model_seed0.pt"):  # the one seed, however it is named
        assert main(["predict", str(model), *map(str, images), "-q"]) == 0
        assert lines(capsys.readouterr().out) == out
    assert main(["predict", str(retrained), str(next(iter(images))), "--top-k", "3"]) == 0
    said, line = lines(capsys.readouterr().out)
    assert "model of study `tiny`, trial #" in said and "seed 0" in said
    assert LINE.match(line) and line.count("(") == 3


def test_bad_input_is_one_line_and_exit_2(
    retrained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (retrained.parent / "retrained" / "tiny" / "results.json").exists():
        assert main(["retrain", str(retrained), "-q"]) == 0
    (image,) = _digit_images(tmp_path, image_size=16, count=1)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    output = retrained.parent / "retrained" / "tiny"
    cases = {
        "never retrained": (
            [str(retrained), "--study-name", "other", str(image)],
            "run `biotune-optuna retrain",
        ),
        "missing image": ([str(retrained), str(tmp_path / "none.png")], "no such image file"),
        "not an image": ([str(retrained), str(text)], "is not an image"),
        "not an export": ([str(text), str(image)], "is not a fine-tuned model"),
        "no such export": ([str(tmp_path / "x.pt"), str(image)], "no such file or directory"),
        "spec option": ([str(output), "--sampler", "tpe", str(image)], "--sampler selects"),
        "no such seed": ([str(retrained), "--model-seed", "7", str(image)], "no model of seed 7"),
        "seed of a file": (
            [str(output / "model_seed0.pt"), "--model-seed", "0", str(image)],
            "--model-seed picks a model of a retrain directory",
        ),
    }
    for arguments, message in cases.values():
        assert main(["predict", *arguments]) == 2
        captured = capsys.readouterr()
        err = lines(captured.err)
        assert len(err) == 1 and message in err[0] and captured.out == ""


@pytest.mark.slow
def test_the_demos_model_predicts_digit_files_from_a_fresh_process(tmp_path: Path) -> None:
    # The small demo (real Lite0 weights, 256 train / 128 val digits at 32 px), 3 epochs.
    data = {"max_train_images": 256, "max_val_images": 128}
    spec = copy_spec("demo", tmp_path, data=data, image_size=32, max_epochs=3)
    assert main(["run", str(spec), "--trials", "3", "-q"]) == 0
    assert main(["retrain", str(spec), "-q"]) == 0
    images = _digit_images(tmp_path / "images", image_size=32, count=360)  # the test split
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune_optuna.cli",
            "predict",
            str(spec),
            "-q",
            *map(str, images),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    predicted = {}
    for line in lines(done.stdout):
        match = LINE.match(line)
        assert match is not None
        predicted[Path(match["path"])] = match["top"].split(" ")[0]
    accuracy = sum(predicted[path] == label for path, label in images.items()) / len(images)
    results = json.loads(
        (tmp_path / "retrained" / "biotune-lite0-digits" / "results.json").read_text()
    )
    tested = results["test_top1_accuracy_per_seed"][0]
    print(
        f"demo export: {accuracy:.4f} of {len(images)} digit files right (retrain: {tested:.4f})"
    )
    assert accuracy > 0.5
    assert abs(accuracy - tested) <= 0.05  # the files as the test split: 8-bit PNGs, no more
