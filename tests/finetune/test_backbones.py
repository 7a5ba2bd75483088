"""Backbones: the offline EfficientNet-Lite0 is really ImageNet-trained; other sources load."""

from __future__ import annotations

from pathlib import Path
import sys

import pytest
import torch

from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune._backbones import load_efficientnet_lite0


def test_offline_lite0_classifies_the_coffee_picture_as_espresso() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    import torchvision.transforms.v2.functional as F

    model = load_efficientnet_lite0()
    image = torch.as_tensor(skimage_data.coffee()).permute(2, 0, 1).float() / 255
    x = F.center_crop(F.resize(image, [224], antialias=True), [224])
    x = (x - 0.5) / 0.5
    with torch.no_grad():
        probabilities = model(x[None]).softmax(-1)[0]
    assert int(probabilities.argmax()) == 967  # espresso
    assert float(probabilities[967]) > 0.8


def test_default_backbone_has_a_new_head_and_the_lite0_normalisation() -> None:
    backbone = load_backbone(num_classes=7)
    assert backbone.name == "efficientnet_lite0"
    assert backbone.mean == backbone.std == (0.5, 0.5, 0.5)
    assert backbone.model.classifier.out_features == 7
    reference = load_efficientnet_lite0()
    torch.testing.assert_close(backbone.model.conv_stem.weight, reference.conv_stem.weight)
    before = backbone.model.classifier.weight.clone()
    torch.manual_seed(1)
    backbone.reset_head(backbone.model)
    assert not torch.equal(before, backbone.model.classifier.weight)


def test_torchvision_and_timm_sources_without_weights() -> None:
    backbone = load_backbone("torchvision:resnet18", weights=None, num_classes=4)
    assert backbone.head == ("fc",) and backbone.model.fc.out_features == 4
    assert backbone.mean == (0.485, 0.456, 0.406)
    backbone = load_backbone("timm:resnet18", weights=None, num_classes=4)
    assert backbone.model.get_classifier().out_features == 4
    assert backbone.layout.rule.startswith("timm.")


def test_weight_names_are_checked_before_any_download() -> None:
    with pytest.raises(ValueError, match="has no weights 'NOPE'"):
        load_backbone("torchvision:resnet18", weights="NOPE", num_classes=4)
    with pytest.raises(ValueError, match="unknown torchvision model"):
        load_backbone("torchvision:resnet9000", weights=None, num_classes=4)
    with pytest.raises(ValueError, match="unknown timm model"):
        load_backbone("timm:resnet9000", weights=None, num_classes=4)
    with pytest.raises(ValueError, match="unknown backbone"):
        load_backbone("resnet50", num_classes=4)


def test_user_factory_with_a_state_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "my_models.py"
    module.write_text(
        "from torch import nn\n"
        "def small():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(4, 1000))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_models", None)
    import my_models  # type: ignore[import-not-found]

    weights = my_models.small().state_dict()
    torch.save(weights, tmp_path / "w.pt")
    backbone = load_backbone("my_models:small", num_classes=3, state_dict=tmp_path / "w.pt")
    torch.testing.assert_close(backbone.model[0].weight, weights["0.weight"])
    assert backbone.head == ("4",) and backbone.model[4].out_features == 3
    assert backbone.blocks == ("0", "4")
    with pytest.raises(ValueError, match="cannot import model factory"):
        load_backbone("my_models:missing", num_classes=3)
