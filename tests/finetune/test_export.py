"""The self-contained export of a fine-tuned model, and the model it loads back as."""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
from typing import Any

import numpy as np
from PIL import Image
import pytest
import torch
from torch import nn

import biotune_optuna
from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune import load_finetuned
from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._data import image_folder
from biotune_optuna.finetune._export import FineTunedModel
from biotune_optuna.finetune._export import save_finetuned
from tests.finetune._exports import damage
from tests.finetune._exports import DIGITS
from tests.finetune._exports import png_header
from tests.finetune._exports import rewritten
from tests.finetune._exports import timm_export
from tests.finetune.conftest import tiny_cnn


CLASSES = [f"class {i}" for i in range(5)]


def _trained_tiny(seed: int = 0) -> Backbone:
    """The tests' tiny CNN as a spec loads it, with random weights and batch-norm statistics
    (so that eval mode and train mode differ)."""
    torch.manual_seed(seed)
    backbone = load_backbone(
        "tests.finetune.conftest:tiny_cnn", num_classes=len(CLASSES), weights=None, head="3"
    )
    for module in backbone.model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return backbone


def _save(backbone: Backbone, path: Path, **results: float) -> Path:
    return save_finetuned(
        backbone.model,
        path,
        backbone=backbone,
        classes=CLASSES,
        image_size=16,
        plan={"strategy": "biotune", "blocks": list(backbone.blocks)},
        head="3",
        results={"study": "tiny", "trial": 3, **results},
    )


def _logits(backbone: Backbone, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std).view(1, 3, 1, 1)
    with torch.no_grad():
        return backbone.model.eval()((images - mean) / std)


def test_a_round_trip_gives_the_same_logits_in_eval_mode(tmp_path: Path) -> None:
    backbone = _trained_tiny()
    path = _save(backbone, tmp_path / "model_seed0.pt", val_macro_accuracy=0.5)
    model = biotune_optuna.load_finetuned(path, model_factory=tiny_cnn)  # the top-level name
    assert isinstance(model, FineTunedModel)
    assert not any(module.training for module in model.modules())
    images = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(images), _logits(backbone, images))
    assert model.class_names == CLASSES and model.image_size == 16
    assert model.mean == backbone.mean and model.std == backbone.std
    assert model.source == "tests.finetune.conftest:tiny_cnn"
    assert model.plan["strategy"] == "biotune" and model.results["trial"] == 3


def test_the_export_holds_plain_types_and_tensors_only(tmp_path: Path) -> None:
    backbone = _trained_tiny()
    record = torch.load(_save(backbone, tmp_path / "m.pt"), weights_only=True)
    assert record["format"] == "biotune_optuna.finetuned" and record["version"] == 1
    assert record["blocks"] == {"0": ["0"], "1": ["1"], "2": ["2"], "3": ["3"]}
    assert record["head_modules"] == ["3"] and record["num_classes"] == 5
    assert record["class_names"] == CLASSES and record["image_size"] == 16
    assert record["mean"] == list(backbone.mean) and record["results"]["study"] == "tiny"
    assert set(record["state_dict"]) == set(backbone.model.state_dict())


def test_lora_adapters_are_merged_into_the_exported_weights(tmp_path: Path) -> None:
    from peft import inject_adapter_in_model
    from peft import LoraConfig

    backbone = _trained_tiny()
    adapted = inject_adapter_in_model(
        LoraConfig(r=2, lora_alpha=4, target_modules=["0.0", "1.0"]), backbone.model
    )
    for name, param in adapted.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(param)  # peft starts B at zero: make the adapters count
    images = torch.rand(4, 3, 16, 16)
    expected = _logits(backbone, images)
    model = load_finetuned(_save(backbone, tmp_path / "lora.pt"), model_factory=tiny_cnn)
    with torch.no_grad():
        assert torch.allclose(model(images), expected, atol=1e-5)
    assert any("lora_" in name for name, _ in adapted.named_parameters())  # left as it was


def test_preprocess_makes_a_file_into_the_tensor_the_data_pipeline_makes(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    files = {
        "rgb.png": Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)),
        "gray.png": Image.fromarray(rng.integers(0, 256, (30, 20), dtype=np.uint8), mode="L"),
        "alpha.png": Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)),
    }
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for name, image in files.items():
                image.save(tmp_path / split / cls / name)
    data = image_folder(tmp_path, image_size=16)
    model = load_finetuned(_save(_trained_tiny(), tmp_path / "m.pt"), model_factory=tiny_cnn)
    for index, (path, _) in enumerate(data.train.samples):  # type: ignore[attr-defined]
        tensor = model.preprocess(path)
        assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
        assert torch.equal(tensor, data.train[index][0])
        assert torch.equal(model.preprocess(Path(path)), tensor)


def test_predict_names_the_most_probable_classes(tmp_path: Path) -> None:
    backbone = _trained_tiny()
    model = load_finetuned(_save(backbone, tmp_path / "m.pt"), model_factory=tiny_cnn)
    images = torch.rand(70, 3, 16, 16)  # more than one batch
    probabilities = _logits(backbone, images).softmax(dim=1)
    predictions = model.predict(images, top_k=3)
    assert len(predictions) == 70
    for prediction, row in zip(predictions, probabilities, strict=True):
        assert prediction.class_name == CLASSES[int(row.argmax())]
        assert prediction.probability == pytest.approx(float(row.max()), abs=1e-6)
        assert len(prediction.top) == 3 and prediction.top[0][0] == prediction.class_name
        assert prediction.top[0][1] >= prediction.top[1][1] >= prediction.top[2][1]
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(tmp_path / "black.png")
    (single,) = model.predict([tmp_path / "black.png"], top_k=99)
    assert len(single.top) == len(CLASSES)
    (first,) = model.predict(images[0])  # one image, no batch dimension
    assert first.top == predictions[0].top[:1]


def test_a_retrain_directory_loads_its_best_validation_seed(tmp_path: Path) -> None:
    for seed in (0, 1):
        _save(_trained_tiny(seed), tmp_path / f"model_seed{seed}.pt", seed=seed)
    (tmp_path / "results.json").write_text(json.dumps({"best_weights": "model_seed1.pt"}))
    assert load_finetuned(tmp_path, model_factory=tiny_cnn).results["seed"] == 1


@pytest.mark.parametrize(
    "best", ["../elsewhere/model_seed0.pt", "/tmp/model_seed0.pt", "sub/model_seed0.pt", "x.pt", 3]
)
def test_a_retrain_directory_names_only_a_model_seed_file_of_its_own(
    tmp_path: Path, best: object
) -> None:
    """``best_weights`` in results.json is data: only a ``model_seed<k>.pt`` beside it."""
    directory = tmp_path / "retrained"
    directory.mkdir()
    (tmp_path / "elsewhere").mkdir()
    for place in (tmp_path / "elsewhere", directory / "sub", directory):
        place.mkdir(exist_ok=True)
        _save(_trained_tiny(), place / "model_seed0.pt")
    _save(_trained_tiny(), directory / "x.pt")
    (directory / "results.json").write_text(json.dumps({"best_weights": best}))
    with pytest.raises(ValueError, match=r"is not a model_seed<k>\.pt") as caught:
        load_finetuned(directory, model_factory=tiny_cnn)
    assert "\n" not in str(caught.value)


def test_the_exported_program_gives_the_modules_logits(tmp_path: Path) -> None:
    model = load_finetuned(_save(_trained_tiny(), tmp_path / "m.pt"), model_factory=tiny_cnn)
    program_path = model.export_program(tmp_path / "model.pt2", batch_size=2)
    program = torch.export.load(program_path).module()
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(program(images), model(images), atol=1e-6)


def _bad_exports(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files that are no usable export, and what the error says about each."""
    good = _save(_trained_tiny(), tmp_path / "good.pt")
    record = torch.load(good, weights_only=True)
    (tmp_path / "text.pt").write_text("not a model")
    torch.save(_trained_tiny().model.state_dict(), tmp_path / "state_dict.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({**record, "version": 99}, tmp_path / "future.pt")
    wrong = dict(record["state_dict"])
    wrong.pop("3.bias")
    torch.save({**record, "state_dict": wrong}, tmp_path / "misfit.pt")
    (tmp_path / "empty").mkdir()
    return {
        "missing": (tmp_path / "nothing.pt", "no such file or directory"),
        "directory": (tmp_path / "empty", "holds no retrained model"),
        "text": (tmp_path / "text.pt", "is not a fine-tuned model saved by biotune_optuna"),
        "state dict": (tmp_path / "state_dict.pt", "holds a state dict, not a fine-tuned"),
        "list": (tmp_path / "list.pt", "holds a list, not a fine-tuned model"),
        "version": (tmp_path / "future.pt", "export version 99"),
        "misfit": (tmp_path / "misfit.pt", "Missing key(s)"),
    }


def test_what_is_no_export_is_a_one_line_value_error(tmp_path: Path) -> None:
    for path, message in _bad_exports(tmp_path).values():
        with pytest.raises(ValueError) as caught:
            load_finetuned(path, model_factory=tiny_cnn)
        assert message in str(caught.value) and "\n" not in str(caught.value)
    model = load_finetuned(tmp_path / "good.pt", model_factory=tiny_cnn)
    for path, message in (
        (tmp_path / "none.png", "no such image file"),
        (tmp_path / "text.pt", "is not an image"),
    ):
        with pytest.raises(ValueError, match=message):
            model.preprocess(path)


# A file is data, never code: what its source may name (issue 25, item 1).

#: Sources a file may not run: code of the standard library, a module beside the file, names
#: that are not models of torchvision's or timm's registries.
_CODE_SOURCES = (
    "os:abort",
    "sys:exit",
    "os:fork",
    "beside:factory",
    "torchvision:os",
    "torchvision:_C",
    "torchvision:__init__",
    "torchvision:__builtins__",
    "torchvision:fasterrcnn_resnet50_fpn",  # a detection model: not a classifier
    "timm:os",
    "timm:__init__",
    "timm:hf-hub:someone/model",
    "timm:test_efficientnet.__class__",  # timm.is_model takes a tag after a dot
    "efficientnet_lite0:x",
)


def test_a_file_names_no_code_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = timm_export(tmp_path / "good.pt")
    marker = tmp_path / "imported"
    (tmp_path / "beside.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "def factory():\n    raise SystemExit(3)\n"
    )
    monkeypatch.chdir(tmp_path)  # a notebook beside the file: the cwd is on sys.path
    monkeypatch.syspath_prepend(str(tmp_path))
    for source in _CODE_SOURCES:
        path = rewritten(good, tmp_path / "code.pt", source=source)
        with pytest.raises(ValueError) as caught:
            load_finetuned(path)
        message = str(caught.value)
        assert "is not built in" in message and "model_factory=" in message, source
        assert "\n" not in message
    assert not marker.exists() and "beside" not in sys.modules


def test_built_in_sources_load_and_code_loads_only_when_the_caller_names_it(
    tmp_path: Path,
) -> None:
    good = timm_export(tmp_path / "good.pt")
    images = torch.rand(2, 3, 16, 16)
    model = load_finetuned(good)
    assert model.source == "timm:test_efficientnet" and model.class_names == DIGITS
    backbone = _trained_tiny()
    tiny = _save(backbone, tmp_path / "tiny.pt")
    with pytest.raises(
        ValueError, match=re.escape("'tests.finetune.conftest:tiny_cnn' is not built in")
    ):
        load_finetuned(tiny)
    with torch.no_grad():
        expected = _logits(backbone, images)
        assert torch.equal(load_finetuned(tiny, model_factory=tiny_cnn)(images), expected)
        assert torch.equal(load_finetuned(tiny, trust_source=True)(images), expected)
    with pytest.raises(
        ValueError, match=re.escape("model_factory returned int, not an nn.Module")
    ):
        load_finetuned(tiny, model_factory=lambda: 3)


# Damaged bytes (item 8).


def test_a_damaged_export_is_refused(tmp_path: Path) -> None:
    path = timm_export(tmp_path / "model.pt")
    load_finetuned(path)
    member = damage(path)
    with pytest.raises(ValueError) as caught:
        load_finetuned(path)
    assert f"is damaged: {member} does not match its CRC-32" in str(caught.value)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="is not a fine-tuned model"):
        load_finetuned(truncated)


# Every field of the record is checked (item 10).


def test_every_field_of_the_record_is_checked(tmp_path: Path) -> None:
    good = timm_export(tmp_path / "good.pt")
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "no class_names": ({"class_names": ...}, "class_names must be a list of names"),
        "too few names": ({"class_names": DIGITS[:3]}, "holds 3 names for num_classes = 10"),
        "a name twice": ({"class_names": ["1"] * 10}, "names a class twice"),
        "2-channel mean": ({"mean": [0.5, 0.5]}, "mean must be 3 finite numbers"),
        "nan mean": ({"mean": [0.5, float("nan"), 0.5]}, "mean must be 3 finite numbers"),
        "std 0": ({"std": [0.5, 0.0, 0.5]}, "std must be 3 finite numbers and > 0"),
        "image_size 0": ({"image_size": 0}, "image_size must be an integer in [1, 4096]"),
        "image_size 200000": ({"image_size": 200000}, "image_size must be an integer in"),
        "image_size text": ({"image_size": "16"}, "image_size must be an integer in"),
        "num_classes 2^33": ({"num_classes": 2**33}, "holds 10 names for num_classes"),
        "num_classes and names": (
            {"num_classes": 2**33, "class_names": [str(i) for i in range(12)]},
            "holds 12 names for num_classes",
        ),
        "head too small": (
            {"num_classes": 3, "class_names": ["a", "b", "c"]},
            "num_classes is 3, but the head 'classifier' has 10 outputs",
        ),
        "num_classes bool": ({"num_classes": True}, "num_classes must be an integer >= 2"),
        "no source": ({"source": ...}, "source must be a name"),
        "source a list": ({"source": ["os:abort"]}, "source must be a name"),
        "head a number": ({"head": 3}, "head must be a name"),
        "no head weights": ({"head_modules": ["nothing"]}, "names 'nothing', which has no"),
        "blocks": ({"blocks": {"a": [1]}}, "blocks must be a table"),
        "plan": ({"plan": [1]}, "plan must be a table"),
        "results": ({"results": "x"}, "results must be a table"),
        "state_dict": ({"state_dict": {"a": 1}}, "state_dict must be a table of tensors"),
    }
    for name, (fields, message) in cases.items():
        path = rewritten(good, tmp_path / "bad.pt", **fields)
        with pytest.raises(ValueError) as caught:
            load_finetuned(path)
        assert message in str(caught.value) and "\n" not in str(caught.value), name
        assert "export field" in str(caught.value), name


# Images of other bit depths, and too large ones (item 10).


def _digit(tmp_path: Path) -> np.ndarray:
    from biotune_optuna.finetune import digits

    image = digits(image_size=24, seed=0).test[0][0][0]  # type: ignore[index]
    return (image.numpy() * 255).round().astype(np.uint8)


def test_16_bit_and_float_images_are_read_as_their_8_bit_version(tmp_path: Path) -> None:
    model = load_finetuned(timm_export(tmp_path / "m.pt", image_size=16))
    pixels = _digit(tmp_path)
    Image.fromarray(pixels, mode="L").save(tmp_path / "8.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "16.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "16.tif")
    Image.fromarray(pixels.astype(np.float32) / 255).save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "16.png").mode.startswith("I;16")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    expected = model.preprocess(tmp_path / "8.png")
    assert expected.max() > 0.9  # a light digit on black
    for name in ("16.png", "16.tif", "float.tif"):
        tensor = model.preprocess(tmp_path / name)
        assert tensor.shape == expected.shape and tensor.dtype == torch.float32
        assert torch.allclose(tensor, expected, atol=1.01 / 255), name
    Image.fromarray(pixels.astype(np.float32)).save(tmp_path / "float255.tif")
    Image.fromarray(pixels.astype(np.int32) * 1000).save(tmp_path / "32.tif")
    for name, message in (
        ("float255.tif", "floating-point image with values outside [0, 1]"),
        ("32.tif", "32-bit integer image with values outside [0, 65535]"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            model.preprocess(tmp_path / name)


def test_images_beyond_pils_pixel_limit_are_refused(tmp_path: Path) -> None:
    model = load_finetuned(timm_export(tmp_path / "m.pt"))
    for side in (20000, 10000):  # 400 MP (PIL raises), 100 MP (PIL only warns)
        path = png_header(tmp_path / f"{side}.png", side, side)
        with pytest.raises(ValueError) as caught:
            model.preprocess(path)
        assert "is too large an image" in str(caught.value) and "resize it" in str(caught.value)
