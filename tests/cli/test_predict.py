"""``predict``: classify image files with the model ``retrain`` wrote."""

from __future__ import annotations

import json
from pathlib import Path
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from biotune_optuna.cli import main
from tests.cli._specs import lines
from tests.cli._specs import TINY
from tests.conftest import copy_spec
from tests.finetune._exports import damage
from tests.finetune._exports import png_header
from tests.finetune._exports import rewritten
from tests.finetune._exports import timm_export


#: The tiny study's model comes from the tests' own factory, which ``predict`` imports only when
#: told to trust the file.
TRUST = ("--trust-source",)
#: The sample digits shipped beside the demo spec.
SAMPLES = Path(__file__).parents[2] / "studies" / "samples"

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
    shutil.copytree(SAMPLES, directory / "samples")  # beside the spec, as in studies/
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
    assert main(["predict", str(retrained), *map(str, images), "-q", *TRUST]) == 0
    out = lines(capsys.readouterr().out)
    assert len(out) == 6
    for line, path in zip(out, images, strict=True):
        match = LINE.match(line)
        assert match is not None and match["path"] == str(path)
        name, probability = match["top"].split(" ")
        assert name in [str(d) for d in range(10)] and 0 <= float(probability[1:-1]) <= 1

    output = retrained.parent / "retrained" / "tiny"
    for model in (output, output / "model_seed0.pt"):  # the one seed, however it is named
        assert main(["predict", str(model), *map(str, images), "-q", *TRUST]) == 0
        assert lines(capsys.readouterr().out) == out
    assert main(["predict", str(retrained), str(next(iter(images))), "--top-k", "3", *TRUST]) == 0
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
        assert main(["predict", *arguments, *TRUST]) == 2
        captured = capsys.readouterr()
        err = [line for line in lines(captured.err) if "warning: --trust-source" not in line]
        assert len(err) == 1 and message in err[0] and captured.out == ""


@pytest.mark.slow
def test_the_demos_model_predicts_digit_files_from_a_fresh_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The small demo (real Lite0 weights, 256 train / 128 val digits at 32 px), 3 epochs.
    data = {"max_train_images": 256, "max_val_images": 128}
    spec = copy_spec("demo", tmp_path, data=data, image_size=32, max_epochs=3)
    shutil.copytree(SAMPLES, tmp_path / "samples")  # beside the spec, as in studies/
    assert main(["run", str(spec), "--trials", "3", "-q"]) == 0
    capsys.readouterr()
    assert main(["retrain", str(spec)]) == 0
    (hint,) = re.findall(r"then `(biotune-optuna predict [^`]+)`", capsys.readouterr().out)
    _the_hint_runs_as_written(hint, tmp_path)
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


def _the_hint_runs_as_written(hint: str, tmp_path: Path) -> None:
    """``retrain``'s hint, run by a shell, predicts the ten shipped samples; their 16-bit copies
    are predicted the same (issue 25, items 10 and 13)."""
    from PIL import Image

    python = f"{shlex.quote(sys.executable)} -m biotune_optuna.cli"

    def predicted(command: str) -> dict[str, tuple[str, float]]:
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
        found = [LINE.match(line) for line in lines(done.stdout)[1:]]  # after the model's line
        assert len(found) == 10 and all(found), done.stdout
        return {
            Path(m["path"]).stem: (m["top"].split()[0], float(m["top"].split()[1][1:-1]))
            for m in found
            if m
        }

    shipped = predicted(hint.replace("biotune-optuna", python))
    right = sum(name == f"digit{label}" for name, (label, _) in shipped.items())
    print(f"demo export: {right} of the 10 samples right, by retrain's hint: {hint}")
    for path in sorted(SAMPLES.glob("digit*.png")):
        pixels = np.asarray(Image.open(path)).astype(np.uint16) * 257
        Image.fromarray(pixels).save(tmp_path / f"{path.stem}.png")
    glob = hint.split()[-1]
    deep = predicted(
        hint.replace("biotune-optuna", python).replace(glob, f"{tmp_path}/digit*.png")
    )
    for name, (label, probability) in shipped.items():
        assert deep[name][0] == label and abs(deep[name][1] - probability) < 0.01, name


def _cli(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m biotune_optuna.cli`` in a fresh process (the cwd on its ``sys.path``)."""
    return subprocess.run(
        [sys.executable, "-m", "biotune_optuna.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_a_model_file_chooses_no_code_to_run(tmp_path: Path) -> None:
    # Issue 25, item 1: each of these ran (SIGABRT, a silent exit 0, a fork, the module beside).
    good = timm_export(tmp_path / "good.pt")
    marker = tmp_path / "imported"
    (tmp_path / "beside.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "def factory():\n    raise SystemExit(3)\n"
    )
    image = SAMPLES / "digit3.png"
    for source in ("os:abort", "sys:exit", "os:fork", "beside:factory"):
        path = rewritten(good, tmp_path / "code.pt", source=source)
        done = _cli("predict", str(path), str(image), cwd=tmp_path)
        err = lines(done.stderr)
        assert done.returncode == 2 and done.stdout == "", (source, done)
        assert len(err) == 1 and "is not built in" in err[0] and "--trust-source" in err[0]
    assert not marker.exists()


def test_trust_source_runs_the_files_factory_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from biotune_optuna.finetune import load_backbone
    from biotune_optuna.finetune._export import save_finetuned
    backbone = load_backbone("tests.finetune.conftest:tiny_cnn", num_classes=10, weights=None)
    path = save_finetuned(
        backbone.model,
        tmp_path / "m.pt",
        backbone=backbone,
        classes=list("0123456789"),
        image_size=16,
    )
    image = str(SAMPLES / "digit3.png")
    assert main(["predict", str(path), image]) == 2
    assert "is not built in" in capsys.readouterr().err
    assert main(["predict", str(path), image, "-q", *TRUST]) == 0
    captured = capsys.readouterr()
    assert lines(captured.err) == [
        "biotune-optuna: warning: --trust-source: the model file's source is imported and run "
        "as code; use it only for files you trust"
    ]
    assert LINE.match(captured.out.strip())


def test_bad_files_records_devices_and_images_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Items 8 and 10: each of these was a traceback (exit 1), a NaN (exit 0) or a misread.
    from PIL import Image
    import torch

    good = timm_export(tmp_path / "good.pt")
    image = str(SAMPLES / "digit3.png")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(good.read_bytes())
    damage(damaged)
    Image.fromarray(np.full((8, 8), 2.0, dtype=np.float32)).save(tmp_path / "float.tif")
    cases = {
        "damaged": ([str(damaged), image], "does not match its CRC-32"),
        "no class_names": (
            [str(rewritten(good, tmp_path / "a.pt", class_names=...)), image],
            "export field class_names must be a list of names",
        ),
        "too few names": (
            [str(rewritten(good, tmp_path / "b.pt", class_names=["0"])), image],
            "export field class_names holds 1 names for num_classes = 10",
        ),
        "2-channel mean": (
            [str(rewritten(good, tmp_path / "c.pt", mean=[0.5, 0.5])), image],
            "export field mean must be 3 finite numbers",
        ),
        "image_size 200000": (
            [str(rewritten(good, tmp_path / "d.pt", image_size=200000)), image],
            "export field image_size must be an integer in [1, 4096]",
        ),
        "num_classes 2^33": (
            [str(rewritten(good, tmp_path / "e.pt", num_classes=2**33)), image],
            "export field class_names holds 10 names for num_classes = 8589934592",
        ),
        "std 0": (
            [str(rewritten(good, tmp_path / "f.pt", std=[0.0, 0.0, 0.0])), image],
            "export field std must be 3 finite numbers and > 0",
        ),
        "device tpu": ([str(good), image, "--device", "tpu"], "--device must be 'auto'"),
        "400 MP": (
            [str(good), str(png_header(tmp_path / "big.png", 20000, 20000))],
            "is too large an image",
        ),
        "float image": ([str(good), str(tmp_path / "float.tif")], "values outside [0, 1]"),
    }
    if not torch.cuda.is_available():
        cases["no GPU"] = (
            [str(good), image, "--device", "cuda"],
            "--device 'cuda' was asked for, but this machine has no cuda device",
        )
    for name, (arguments, message) in cases.items():
        assert main(["predict", *arguments]) == 2, name
        captured = capsys.readouterr()
        err = lines(captured.err)
        assert len(err) == 1 and message in err[0] and captured.out == "", (name, err)


def test_a_hint_repeats_the_options_that_select_the_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Item 16: `predict --sampler tpe` said `retrain <spec>`, which retrains another study.
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY)
    image = str(SAMPLES / "digit3.png")
    options = ["--sampler", "tpe", "--seed", "2", "--strategy", "full"]
    assert main(["predict", str(spec), image, *options]) == 2
    err = capsys.readouterr().err
    assert f"`biotune-optuna retrain {spec} --sampler tpe --seed 2 --strategy full`" in err
    assert main(["predict", str(spec), image, "--study-name", "my study"]) == 2
    assert f"`biotune-optuna retrain {spec} --study-name 'my study'`" in capsys.readouterr().err


def test_the_samples_are_the_demos_test_digits() -> None:
    # Item 13: the shipped samples are what studies/samples/README.md says they are.
    from PIL import Image
    from torchvision.transforms.v2.functional import to_pil_image

    from biotune_optuna.finetune import digits
    from biotune_optuna.studies import load_spec

    spec = load_spec(SAMPLES.parent / "demo.toml")
    assert spec.data is not None and spec.data.source == "digits"
    data = digits(image_size=spec.protocol.image_size, seed=spec.data.seed)
    assert data.test is not None
    labels = [int(data.test[i][1]) for i in range(len(data.test))]
    shipped = sorted(SAMPLES.glob("*.png"))
    assert [path.name for path in shipped] == [f"digit{k}.png" for k in range(10)]
    for k, path in enumerate(shipped):
        made = np.asarray(to_pil_image(data.test[labels.index(k)][0][0]))
        with Image.open(path) as image:
            assert image.mode == "L" and np.array_equal(np.asarray(image), made)


def test_the_documented_predict_commands_name_shipped_images() -> None:
    root = SAMPLES.parents[1]
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    commands = re.findall(r"biotune-optuna predict (\S+) ([^\n]+)", text)
    assert len(commands) >= 2
    for _, arguments in commands:
        images = [a for a in arguments.split() if a.endswith((".png", ".jpg"))]
        assert images, arguments
        for image in images:
            assert list(SAMPLES.parents[1].glob(image)), image


def test_retrains_hint_runs_as_written(
    retrained: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Item 13: retrain's hint named IMAGE...; it names the samples beside a digits spec.
    import glob
    import shlex

    monkeypatch.chdir(retrained.parent)
    capsys.readouterr()
    assert main(["retrain", str(retrained)]) == 0
    (hint,) = re.findall(r"then `biotune-optuna (predict [^`]+)`", capsys.readouterr().out)
    assert "samples/digit*.png" in hint and hint.endswith("--trust-source")
    arguments = [
        name for word in shlex.split(hint) for name in (sorted(glob.glob(word)) or [word])
    ]
    assert main([*arguments, "-q"]) == 0
    assert len(lines(capsys.readouterr().out)) == 10


@pytest.mark.parametrize(
    ("source", "trusted"),
    [
        ("tests.finetune.conftest:tiny_cnn", True),
        ("timm:test_efficientnet.__class__", True),  # a tag: not built in, predict refuses it
        ("torchvision:fasterrcnn_resnet50_fpn", True),  # a detector: not built in either
        ("timm:test_efficientnet", False),
        ("torchvision:resnet18", False),
        ("efficientnet_lite0", False),
    ],
)
def test_the_hint_asks_for_trust_exactly_where_predict_does(
    tmp_path: Path, source: str, trusted: bool
) -> None:
    import dataclasses

    from biotune_optuna.cli._predict import predict_hint
    from biotune_optuna.studies import load_spec
    from tests.cli._specs import tiny_spec

    spec = load_spec(tiny_spec(tmp_path))
    assert spec.model is not None
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, source=source))
    hint = predict_hint(spec, tmp_path / "out")
    assert hint.endswith("--trust-source") is trusted, hint
