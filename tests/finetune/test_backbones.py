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


# ------------------------------------------------------------------------------------------
# Issue 17, item 6: weights already on disk, for nodes without a network.


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub cache (``$TORCH_HOME``) and a hub that fails instead of downloading."""
    from urllib.error import URLError

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise URLError(f"no network in the tests ({url})")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "torch"


def _imagenet_resnet18(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised 1000-class ResNet-18's state dict: the shapes of ImageNet's."""
    from torchvision.models import resnet18

    torch.manual_seed(seed)
    return resnet18(weights=None).state_dict()


def test_a_torchvision_model_loads_a_local_state_dict_before_its_new_head(
    tmp_path: Path, no_network: Path
) -> None:
    weights = _imagenet_resnet18()
    module = {f"module.{k}": v for k, v in weights.items()}  # saved from a DataParallel
    for i, saved in enumerate([weights, {"state_dict": weights, "epoch": 3}, {"model": module}]):
        path = tmp_path / f"r18-{i}.pth"
        torch.save(saved, path)
        backbone = load_backbone(
            "torchvision:resnet18", weights=None, num_classes=3, state_dict=path
        )
        torch.testing.assert_close(backbone.model.conv1.weight, weights["conv1.weight"])
        torch.testing.assert_close(
            backbone.model.layer4[1].bn2.running_var, weights["layer4.1.bn2.running_var"]
        )
        assert backbone.head == ("fc",) and backbone.model.fc.out_features == 3
        assert backbone.mean == (0.485, 0.456, 0.406) and backbone.std == (0.229, 0.224, 0.225)
    backbone = load_backbone(
        "torchvision:resnet18", weights=None, num_classes=3, state_dict=path, mean=(0.5,) * 3
    )
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.std == (0.229, 0.224, 0.225)
    assert not list(no_network.rglob("*.pth"))  # nothing went through the hub


def test_a_timm_model_loads_a_local_state_dict(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    weights = timm.create_model("resnet18", pretrained=False).state_dict()
    torch.save(weights, tmp_path / "timm-r18.pth")
    backbone = load_backbone(
        "timm:resnet18", weights=None, num_classes=4, state_dict=tmp_path / "timm-r18.pth"
    )
    torch.testing.assert_close(backbone.model.conv1.weight, weights["conv1.weight"])
    assert backbone.model.get_classifier().out_features == 4


def test_local_state_dicts_that_cannot_be_used_are_one_line_errors(
    tmp_path: Path, no_network: Path
) -> None:
    from torchvision.models import resnet18

    path = tmp_path / "r18.pth"
    torch.save(_imagenet_resnet18(), path)
    finetuned = tmp_path / "r18-10-classes.pth"
    torch.save(resnet18(weights=None, num_classes=10).state_dict(), finetuned)
    for source, weights, file, match in [
        ("torchvision:resnet18", "DEFAULT", path, "replaces the downloaded weights 'DEFAULT'; "),
        ("timm:resnet18", True, path, "pass weights=None with a state_dict"),
        ("efficientnet_lite0", None, path, "not for 'efficientnet_lite0'"),
        ("torchvision:resnet18", None, tmp_path / "nowhere.pth", "no such file: .*nowhere"),
        ("torchvision:resnet18", None, finetuned, "does not fit ResNet: wrong shape fc.weight"),
    ]:
        with pytest.raises(ValueError, match=f"^state_dict: .*{match}") as error:
            load_backbone(source, weights=weights, num_classes=3, state_dict=file)
        assert "\n" not in str(error.value)


def test_torchvision_weights_come_from_the_hub_cache_without_a_network(no_network: Path) -> None:
    from torchvision.models import ResNet18_Weights

    with pytest.raises(RuntimeError, match=r"^weights: cannot download ResNet18_Weights") as error:
        load_backbone("torchvision:resnet18", weights="IMAGENET1K_V1", num_classes=3)
    file_name = Path(ResNet18_Weights.IMAGENET1K_V1.url).name  # resnet18-f37072fd.pth
    cache = no_network / "hub" / "checkpoints"
    assert f"copy {file_name} into {cache}/" in str(error.value)
    assert "\n" not in str(error.value)

    weights = _imagenet_resnet18(seed=1)  # not the real ones: the hash is not checked in cache
    torch.save(weights, cache / file_name)
    for name in ("IMAGENET1K_V1", "DEFAULT"):  # DEFAULT is IMAGENET1K_V1 for ResNet-18
        backbone = load_backbone("torchvision:resnet18", weights=name, num_classes=3)
        torch.testing.assert_close(backbone.model.conv1.weight, weights["conv1.weight"])
        assert backbone.model.fc.out_features == 3
        assert backbone.mean == (0.485, 0.456, 0.406)


_DIGEST_OF_MODELS = """
import hashlib, sys
import torch
from biotune_optuna.finetune import load_backbone
torch.manual_seed(int(sys.argv[1]))  # whatever the process drew before
for source in ("tests.finetune.conftest:tiny_cnn", "torchvision:resnet18", "efficientnet_lite0"):
    backbone = load_backbone(source, weights=None, num_classes=3)
    digest = hashlib.sha256()
    for name, tensor in backbone.model.state_dict().items():
        digest.update(name.encode() + tensor.numpy().tobytes())
    print(source, digest.hexdigest())
"""


def test_a_backbone_not_pretrained_is_the_same_in_every_process() -> None:
    import subprocess

    def digests(state: int) -> str:
        command = [sys.executable, "-c", _DIGEST_OF_MODELS, str(state)]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    first = digests(1)
    assert len(first.splitlines()) == 3
    assert digests(2) == first


def test_backbones_know_whether_they_are_pretrained_and_keep_the_callers_generator() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    random_one = load_backbone("torchvision:resnet18", weights=None, num_classes=4)
    assert torch.equal(torch.rand(3), expected)  # drawn as if nothing had been built
    assert not random_one.pretrained
    assert load_backbone(num_classes=4).pretrained  # the offline Lite0 weights
    other = load_backbone("torchvision:resnet18", weights=None, num_classes=4, seed=1)
    assert not torch.equal(other.model.conv1.weight, random_one.model.conv1.weight)
