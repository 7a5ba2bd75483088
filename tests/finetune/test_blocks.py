"""Every block rule: each parameter in exactly one block, blocks in forward order, head last."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune._blocks import block_layout
from biotune_optuna.finetune._blocks import BlockLayout
from tests.finetune.conftest import tiny_cnn


PAPER_BLOCKS = {
    "resnet50": ["stem", "layer1", "layer2", "layer3", "layer4", "fc"],
    "densenet121": [
        "stem",
        "denseblock1",
        "transition1",
        "denseblock2",
        "transition2",
        "denseblock3",
        "transition3",
        "denseblock4",
        "head",
    ],
    "vgg19": ["conv1", "conv2", "conv3", "conv4", "conv5", "classifier"],
    "inception_v3": [
        "stem",
        "Mixed_5b",
        "Mixed_5c",
        "Mixed_5d",
        "Mixed_6a",
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "AuxLogits",
        "Mixed_7a",
        "Mixed_7b",
        "Mixed_7c",
        "fc",
    ],
}


def _owners(model: nn.Module, layout: BlockLayout) -> dict[int, int]:
    owner = {}
    for index in range(len(layout)):
        for module in layout.modules(model, index):
            for sub in module.modules():
                owner[id(sub)] = index
    return owner


def assert_layout_invariants(
    model: nn.Module, layout: BlockLayout, x: torch.Tensor, head: tuple[str, ...]
) -> None:
    # Every parameter exactly once: the counts add up to the model's.
    counts = layout.parameter_counts(model)
    assert all(c > 0 for c in counts)
    assert sum(counts) == sum(p.numel() for p in model.parameters())
    assert len({id(p) for i in range(len(layout)) for p in layout.parameters(model, i)}) == len(
        list(model.parameters())
    )
    # The new head is in the last block.
    last = {id(p) for p in layout.parameters(model, len(layout) - 1)}
    for path in head:
        if path == "AuxLogits.fc":
            continue
        assert all(id(p) in last for p in model.get_submodule(path).parameters()), path
    # Forward order: the blocks whose modules run are met in non-decreasing order.
    owner = _owners(model, layout)
    order: list[int] = []

    def record(module: nn.Module, args: object) -> None:
        order.append(owner[id(module)])

    hooks = [
        m.register_forward_pre_hook(record)
        for m in model.modules()
        if id(m) in owner and any(True for _ in m.parameters(recurse=False))
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert order == sorted(order), order
    with_modules = [i for i, b in enumerate(layout.blocks) if b.modules]
    assert sorted(set(order)) == with_modules
    # The sequential view, where there is one, computes the model's forward pass.
    if layout.stages is not None:
        model.eval()
        with torch.no_grad():
            expected = model(x)
            y = x
            for _, stage in layout.stages:
                y = stage(y)
        torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(PAPER_BLOCKS))
def test_paper_backbones_have_exactly_the_papers_blocks(name: str) -> None:
    backbone = load_backbone(f"torchvision:{name}", weights=None, num_classes=5)
    assert list(backbone.blocks) == PAPER_BLOCKS[name]
    size = 299 if name == "inception_v3" else 32
    model = backbone.model
    if name == "inception_v3":
        model.train()  # the auxiliary classifier runs in training mode only
        assert backbone.head == ("fc", "AuxLogits.fc")
    x = torch.rand(2, 3, size, size)
    assert_layout_invariants(model, backbone.layout, x, backbone.head)
    out = backbone.model.eval()(x)
    assert out.shape == (2, 5)


@pytest.mark.parametrize(
    ("name", "n_blocks", "rule"),
    [
        ("resnet18", 6, "torchvision.resnet"),
        ("mobilenet_v2", 9, "torchvision.mobilenet"),
        ("mobilenet_v3_small", None, "torchvision.mobilenet"),
        ("efficientnet_b0", 9, "torchvision.efficientnet"),
        ("convnext_tiny", 6, "torchvision.convnext"),
    ],
)
def test_torchvision_stage_rules(name: str, n_blocks: int | None, rule: str) -> None:
    backbone = load_backbone(f"torchvision:{name}", weights=None, num_classes=3)
    layout = backbone.layout
    assert layout.rule == rule
    assert layout.names[0] == "stem"
    if n_blocks is not None:
        assert len(layout) == n_blocks
    assert_layout_invariants(backbone.model, layout, torch.rand(2, 3, 32, 32), backbone.head)


def test_mobilenet_stages_follow_output_width() -> None:
    layout = load_backbone("torchvision:mobilenet_v2", weights=None, num_classes=3).layout
    widths = [len(b.modules) for b in layout.blocks[1:-1]]
    assert widths == [1, 2, 3, 4, 3, 3, 1]  # torchvision's (t, c, n, s) table, n per stage


def test_offline_lite0_rule_without_weights() -> None:
    backbone = load_backbone("efficientnet_lite0", weights=None, num_classes=4)
    assert backbone.layout.rule == "timm.efficientnet"
    assert list(backbone.blocks) == ["stem", *[f"stage{i}" for i in range(1, 8)], "head"]
    assert backbone.head == ("classifier",)
    assert_layout_invariants(
        backbone.model, backbone.layout, torch.rand(2, 3, 32, 32), backbone.head
    )


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "vit_tiny_patch16_224"])
def test_timm_models_use_their_layer_groups(name: str) -> None:
    import timm

    kwargs = {"img_size": 32} if name.startswith("vit") else {}
    model = timm.create_model(name, pretrained=False, num_classes=3, **kwargs).eval()
    layout = block_layout(model)
    assert layout.rule.startswith("timm.")
    assert len(layout) >= 3
    classifier = model.get_classifier()
    head = tuple(n for n, m in model.named_modules() if m is classifier)
    assert_layout_invariants(model, layout, torch.rand(2, 3, 32, 32), head)
    if name.startswith("vit"):
        assert "cls_token" in layout.blocks[0].parameters  # loose parameters have a block too


class _Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)  # no parameters: in no block
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.pool(self.features(x * self.scale)).flatten(1))


def test_generic_fallback_and_wrappers() -> None:
    model = _Custom()
    layout = block_layout(model)
    assert layout.rule == "generic"
    assert layout.names == ("features", "out")
    assert layout.blocks[0].parameters == ("scale",)
    assert layout.stages is None
    assert_layout_invariants(model, layout, torch.rand(2, 3, 8, 8), ("out",))

    wrapped = nn.ModuleDict({"inner": tiny_cnn(3)})
    inner = block_layout(wrapped)
    assert inner.blocks[0].modules == ("inner.0",)


def test_sequential_models_get_a_sequential_view() -> None:
    model = tiny_cnn(3).eval()
    layout = block_layout(model)
    assert layout.names == ("0", "1", "2", "3")
    assert layout.stages is not None
    assert_layout_invariants(model, layout, torch.rand(2, 3, 16, 16), ("3",))


def test_user_blocks() -> None:
    model = tiny_cnn(3)
    layout = block_layout(
        model, {"early": ["0", "1"], "late": ["2.2"], "head": ["3.weight", "3.bias"]}
    )
    assert layout.rule == "user"
    assert layout.names == ("early", "late", "head")
    assert layout.blocks[2].parameters == ("3.weight", "3.bias")
    assert_layout_invariants(model, layout, torch.rand(2, 3, 16, 16), ("3",))


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ({"a": ["0", "1", "2"]}, "parameters are in no block"),
        ({"a": ["0", "1", "2", "3"], "b": ["3"]}, "in both block"),
        ({"a": ["0", "1", "2", "3"], "b": ["nope"]}, "neither a submodule nor a parameter"),
        ({"a": ["0", "1", "2", "3"], "b": ["2.0"]}, "holds no parameter"),
        ([("a", ["0", "1"]), ("a", ["2", "3"])], "repeated block names"),
    ],
)
def test_user_blocks_are_validated(blocks: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        block_layout(tiny_cnn(3), blocks)  # type: ignore[arg-type]


LITE0_GROUPS = {
    "stem_stage12": ["conv_stem", "bn1", "blocks.0", "blocks.1"],
    "stage34": ["blocks.2", "blocks.3"],
    "stage5": ["blocks.4"],
    "stage67": ["blocks.5", "blocks.6"],
    "head": ["conv_head", "bn2", "classifier"],
}


def test_user_groups_of_consecutive_stages_keep_the_sequential_view() -> None:
    """Grouping the built-in blocks in order keeps a frozen prefix (and so the feature cache)."""
    backbone = load_backbone("efficientnet_lite0", weights=None, num_classes=4)
    layout = block_layout(backbone.model, LITE0_GROUPS)
    assert layout.stages is not None
    assert [i for i, _ in layout.stages] == [0, 0, 0, 1, 1, 2, 3, 3, 4]
    assert_layout_invariants(backbone.model, layout, torch.rand(2, 3, 32, 32), backbone.head)


@pytest.mark.parametrize(
    "blocks",
    [
        # A built-in block (stage 2, ``blocks.1``) split between two user blocks.
        {
            "a": ["conv_stem", "bn1", "blocks.0", "blocks.1.0"],
            "b": [*(f"blocks.1.{i}" for i in range(1, 2)), *(f"blocks.{i}" for i in range(2, 7))],
            "head": ["conv_head", "bn2", "classifier"],
        },
        # User blocks out of forward order.
        {
            "late": ["blocks.3", "blocks.4", "blocks.5", "blocks.6"],
            "early": ["conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.2"],
            "head": ["conv_head", "bn2", "classifier"],
        },
    ],
)
def test_user_blocks_that_cut_across_the_built_in_ones_have_no_sequential_view(
    blocks: dict[str, list[str]],
) -> None:
    backbone = load_backbone("efficientnet_lite0", weights=None, num_classes=4)
    layout = block_layout(backbone.model, blocks)
    assert layout.stages is None
