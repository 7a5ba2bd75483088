"""Cutting a backbone into an ordered list of blocks ``m_0..m_B`` (arXiv:2508.15367, §II).

A block is a named group of submodules (and, rarely, loose parameters such as a ViT's
``cls_token``). Every parameter of the model belongs to exactly one block; blocks are listed in
forward order and the classification head is in the last one. Where the architecture allows it, a
layout also carries a *sequential view*: stages whose composition is the model's forward pass and
each of which lies inside one block. The engine uses it to run a frozen prefix once and cache it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from typing import Any

import torch
from torch import nn


__all__ = ["Block", "BlockLayout", "block_layout"]

#: Description of user-given blocks: ``{name: [module path or parameter name, ...]}`` or pairs.
BlockSpec = Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]]


@dataclasses.dataclass(frozen=True)
class Block:
    """A named group of a model's submodules and loose parameters.

    Attributes:
        name: The block's name (used in gene names: ``importance:<name>``).
        modules: Qualified names of the submodules it holds (with everything below them).
        parameters: Qualified names of parameters held directly, outside ``modules``.
    """

    name: str
    modules: tuple[str, ...]
    parameters: tuple[str, ...] = ()


class BlockLayout:
    """An ordered list of blocks covering every parameter of a model exactly once.

    Args:
        model: The model the blocks refer to.
        blocks: The blocks in forward order; the head in the last.
        rule: What produced the layout (for messages and user attrs).
        stages: Optional sequential view: ``(block index, module)`` pairs whose composition
            equals ``model``'s forward pass (in eval mode), block indices non-decreasing.

    Raises:
        ValueError: If a parameter is in no block or in two, a name is unknown or repeated, or a
            block holds no parameter.
    """

    def __init__(
        self,
        model: nn.Module,
        blocks: Sequence[Block],
        *,
        rule: str,
        stages: Sequence[tuple[int, nn.Module]] | None = None,
    ) -> None:
        self.blocks = tuple(blocks)
        self.rule = rule
        self.stages = None if stages is None else tuple(stages)
        self._validate(model)

    @property
    def names(self) -> tuple[str, ...]:
        """Block names in forward order."""
        return tuple(block.name for block in self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def __repr__(self) -> str:
        return f"BlockLayout(rule={self.rule!r}, blocks={list(self.names)})"

    def modules(self, model: nn.Module, index: int) -> list[nn.Module]:
        """The submodules of block ``index`` in ``model`` (the model or a copy of it)."""
        return [model.get_submodule(path) for path in self.blocks[index].modules]

    def parameters(self, model: nn.Module, index: int) -> list[nn.Parameter]:
        """The parameters of block ``index`` in ``model``, without duplicates."""
        block = self.blocks[index]
        seen: set[int] = set()
        out: list[nn.Parameter] = []
        loose = [model.get_parameter(name) for name in block.parameters]
        for param in [p for m in self.modules(model, index) for p in m.parameters()] + loose:
            if id(param) not in seen:
                seen.add(id(param))
                out.append(param)
        return out

    def parameter_counts(self, model: nn.Module) -> list[int]:
        """Number of parameter elements in each block."""
        return [sum(p.numel() for p in self.parameters(model, i)) for i in range(len(self))]

    def _validate(self, model: nn.Module) -> None:
        if not self.blocks:
            raise ValueError(f"{self.rule}: no blocks")
        names = self.names
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{self.rule}: repeated block names {', '.join(repeated)}")
        owner: dict[int, str] = {}
        for i, block in enumerate(self.blocks):
            for path in block.modules:
                try:
                    model.get_submodule(path)
                except AttributeError:
                    raise ValueError(
                        f"{self.rule}: block {block.name!r} names unknown module {path!r}"
                    ) from None
            for name in block.parameters:
                try:
                    model.get_parameter(name)
                except AttributeError:
                    raise ValueError(
                        f"{self.rule}: block {block.name!r} names unknown parameter {name!r}"
                    ) from None
            params = self.parameters(model, i)
            if not params:
                raise ValueError(f"{self.rule}: block {block.name!r} holds no parameter")
            for param in params:
                if id(param) in owner:
                    raise ValueError(
                        f"{self.rule}: a parameter is in both block {owner[id(param)]!r} "
                        f"and block {block.name!r}"
                    )
                owner[id(param)] = block.name
        missing = [n for n, p in model.named_parameters() if id(p) not in owner]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise ValueError(f"{self.rule}: {len(missing)} parameters are in no block: {shown}")
        if self.stages is not None:
            indices = [i for i, _ in self.stages]
            if indices != sorted(indices) or not all(0 <= i < len(self) for i in indices):
                raise ValueError(f"{self.rule}: stage block indices must be ordered and valid")


# ------------------------------------------------------------------------------------------------
# Small modules used to write sequential views of torchvision models.


class _Call(nn.Module):
    """Wrap a parameter-free function as a stage (e.g. ``F.relu`` between two blocks)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> None:
        super().__init__()
        self.fn = fn
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def _pool_flatten() -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]


def _seq(*modules: nn.Module) -> nn.Module:
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


Layout = tuple[list[Block], list[tuple[int, nn.Module]] | None]


# ------------------------------------------------------------------------------------------------
# Rules for torchvision backbones (the paper's four, then stage rules for the others).


def _resnet(model: Any) -> Layout:
    blocks = [Block("stem", ("conv1", "bn1"))]
    blocks += [Block(f"layer{i}", (f"layer{i}",)) for i in range(1, 5)]
    blocks.append(Block("fc", ("fc",)))
    stages = [(0, nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool))]
    stages += [(i, getattr(model, f"layer{i}")) for i in range(1, 5)]
    stages.append((5, nn.Sequential(model.avgpool, nn.Flatten(1), model.fc)))
    return blocks, stages


def _densenet(model: Any) -> Layout:
    f = model.features
    blocks = [Block("stem", ("features.conv0", "features.norm0"))]
    stages: list[tuple[int, nn.Module]] = [(0, nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0))]
    for name, child in f.named_children():
        if name.startswith(("denseblock", "transition")):
            stages.append((len(blocks), child))
            blocks.append(Block(name, (f"features.{name}",)))
    blocks.append(Block("head", ("features.norm5", "classifier")))
    relu = _Call(torch.nn.functional.relu, "relu")
    stages.append(
        (len(blocks) - 1, nn.Sequential(f.norm5, relu, *_pool_flatten(), model.classifier))
    )
    return blocks, stages


def _vgg(model: Any) -> Layout:
    blocks: list[Block] = []
    stages: list[tuple[int, nn.Module]] = []
    start = 0
    for i, layer in enumerate(model.features):
        if isinstance(layer, nn.MaxPool2d):
            paths = tuple(
                f"features.{j}"
                for j in range(start, i + 1)
                if any(True for _ in model.features[j].parameters())
            )
            stages.append((len(blocks), nn.Sequential(*model.features[start : i + 1])))
            blocks.append(Block(f"conv{len(blocks) + 1}", paths))
            start = i + 1
    if start != len(model.features):
        raise ValueError("vgg: the features do not end with a max-pool")
    blocks.append(Block("classifier", ("classifier",)))
    stages.append((len(blocks) - 1, nn.Sequential(model.avgpool, nn.Flatten(1), model.classifier)))
    return blocks, stages


def _inception_v3(model: Any) -> Layout:
    stem = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
    middle = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d"]
    middle += ["Mixed_6e", *(["AuxLogits"] if model.AuxLogits is not None else [])]
    middle += ["Mixed_7a", "Mixed_7b", "Mixed_7c"]
    blocks = [Block("stem", stem), *(Block(name, (name,)) for name in middle)]
    blocks.append(Block("fc", ("fc",)))
    # The auxiliary classifier is a side branch, so there is no sequential view to cache with.
    return blocks, None


def _by_output_channels(layers: Sequence[nn.Module]) -> list[list[int]]:
    """Group consecutive inverted-residual blocks into stages by their output channel count."""
    groups: list[list[int]] = []
    last = None
    for i, layer in enumerate(layers):
        channels = getattr(layer, "out_channels", None)
        if channels is None:
            channels = [m for m in layer.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        if groups and channels == last:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = channels
    return groups


def _features_head(
    model: Any, stage_groups: list[list[int]], *, head_features: bool, pool: nn.Module | None
) -> Layout:
    """Stem = features[0], one block per group of feature indices, head = rest + classifier."""
    f = model.features
    blocks = [Block("stem", ("features.0",))]
    stages: list[tuple[int, nn.Module]] = [(0, f[0])]
    for number, group in enumerate(stage_groups, start=1):
        stages.append((len(blocks), _seq(*(f[i] for i in group))))
        blocks.append(Block(f"stage{number}", tuple(f"features.{i}" for i in group)))
    tail = (f[len(f) - 1],) if head_features else ()
    paths = (f"features.{len(f) - 1}",) if head_features else ()
    blocks.append(Block("head", (*paths, "classifier")))
    pooling = [pool] if pool is not None else [nn.AdaptiveAvgPool2d(1)]
    stages.append(
        (len(blocks) - 1, nn.Sequential(*tail, *pooling, nn.Flatten(1), model.classifier))
    )
    return blocks, stages


def _mobilenet(model: Any) -> Layout:
    groups = _by_output_channels(list(model.features)[1:-1])
    groups = [[i + 1 for i in g] for g in groups]
    return _features_head(model, groups, head_features=True, pool=getattr(model, "avgpool", None))


def _efficientnet(model: Any) -> Layout:
    groups = [[i] for i in range(1, len(model.features) - 1)]
    return _features_head(model, groups, head_features=True, pool=model.avgpool)


def _convnext(model: Any) -> Layout:
    f = model.features
    blocks = [Block("stem", ("features.0",)), Block("stage1", ("features.1",))]
    stages: list[tuple[int, nn.Module]] = [(0, f[0]), (1, f[1])]
    for i in range(2, len(f), 2):
        paths = tuple(f"features.{j}" for j in range(i, min(i + 2, len(f))))
        stages.append((len(blocks), nn.Sequential(*(f[j] for j in range(i, min(i + 2, len(f)))))))
        blocks.append(Block(f"stage{len(blocks)}", paths))
    blocks.append(Block("head", ("classifier",)))
    stages.append((len(blocks) - 1, nn.Sequential(model.avgpool, model.classifier)))
    return blocks, stages


# ------------------------------------------------------------------------------------------------
# timm.


class _TimmHead(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.conv_head = model.conv_head
        self.bn2 = model.bn2
        self._model = [model]  # not a submodule: forward_head uses the model's own pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._model[0].forward_head(self.bn2(self.conv_head(x)))


def _timm_efficientnet(model: Any) -> Layout:
    """timm's EfficientNet family (the offline EfficientNet-Lite0 too): stem, stages, head."""
    blocks = [Block("stem", ("conv_stem", "bn1"))]
    stages: list[tuple[int, nn.Module]] = [(0, nn.Sequential(model.conv_stem, model.bn1))]
    for i, stage in enumerate(model.blocks):
        stages.append((len(blocks), stage))
        blocks.append(Block(f"stage{i + 1}", (f"blocks.{i}",)))
    blocks.append(Block("head", ("conv_head", "bn2", "classifier")))
    stages.append((len(blocks) - 1, _TimmHead(model)))
    return blocks, stages


def _compress(model: nn.Module, names: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Express a set of parameter names as the largest submodules wholly inside it."""
    modules: list[str] = []
    covered: set[str] = set()

    def visit(prefix: str, module: nn.Module) -> None:
        own = {f"{prefix}{n}" for n, _ in module.named_parameters()}
        if not own:
            return
        if prefix and own <= names:
            modules.append(prefix[:-1])
            covered.update(own)
            return
        for child_name, child in module.named_children():
            visit(f"{prefix}{child_name}.", child)

    visit("", model)
    loose = tuple(n for n, _ in model.named_parameters() if n in names and n not in covered)
    return tuple(modules), loose


def _short_name(paths: Iterable[str]) -> str:
    tops: list[str] = []
    for path in paths:
        parts = path.split(".")
        top = ".".join(parts[:2]) if len(parts) > 1 and parts[1].isdigit() else parts[0]
        if top not in tops:
            tops.append(top)
    return "+".join(tops)


def _timm_groups(model: Any) -> Layout:
    """Any timm model, through its own layer-group metadata (``group_matcher(coarse=True)``)."""
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=True))
    blocks: list[Block] = []
    for _, names in sorted(groups.items()):
        modules, loose = _compress(model, set(names))
        base = _short_name([*modules, *loose])
        name, k = base, 2
        while name in {b.name for b in blocks}:
            name, k = f"{base}#{k}", k + 1
        blocks.append(Block(name, modules, loose))
    return blocks, None


def is_timm_model(model: nn.Module) -> bool:
    """Whether a model is timm's, with its layer groups (``group_matcher``) to cut it by."""
    return type(model).__module__.startswith("timm.") and hasattr(model, "group_matcher")


# ------------------------------------------------------------------------------------------------
# Fallbacks.


def _generic(model: nn.Module) -> Layout:
    """Top-level children that hold parameters, in registration order (taken as forward order).

    A wrapper with a single parameterised child and no parameters of its own is looked through.
    If the model (or the wrapped module) is an ``nn.Sequential``, its children are also its
    sequential view.
    """
    prefix, root = "", model
    while True:
        children = [(n, c) for n, c in root.named_children() if any(True for _ in c.parameters())]
        own = list(root.named_parameters(recurse=False))
        if len(children) == 1 and not own:
            prefix, root = f"{prefix}{children[0][0]}.", children[0][1]
            continue
        break
    if not children:
        raise ValueError(
            f"cannot cut {type(model).__name__} into blocks: it has no submodules with "
            "parameters; pass blocks= explicitly"
        )
    blocks = [Block(name, (f"{prefix}{name}",)) for name, _ in children]
    own_names = tuple(f"{prefix}{n}" for n, _ in root.named_parameters(recurse=False))
    if own_names:
        first = blocks[0]
        blocks[0] = Block(first.name, first.modules, own_names)
    stages = None
    if isinstance(root, nn.Sequential) and not own_names and root is model:
        index_of = {name: i for i, (name, _) in enumerate(children)}
        stages, current = [], 0
        for name, child in root.named_children():
            current = index_of.get(name, current)
            stages.append((current, child))
    return blocks, stages


def _user(model: nn.Module, spec: BlockSpec) -> Layout:
    items = list(spec.items()) if isinstance(spec, Mapping) else list(spec)
    module_names = {n for n, _ in model.named_modules() if n}
    param_names = {n for n, _ in model.named_parameters()}
    blocks = []
    for name, entries in items:
        if isinstance(entries, str):
            entries = [entries]
        modules, params = [], []
        for entry in entries:
            if entry in module_names:
                modules.append(entry)
            elif entry in param_names:
                params.append(entry)
            else:
                raise ValueError(
                    f"block {name!r}: {entry!r} is neither a submodule nor a parameter of "
                    f"{type(model).__name__}"
                )
        blocks.append(Block(str(name), tuple(modules), tuple(params)))
    return blocks, None


def _torchvision_rule(model: nn.Module) -> tuple[str, Callable[[Any], Layout]] | None:
    try:
        from torchvision import models as tvm
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return None
    table: list[tuple[type, str, Callable[[Any], Layout]]] = [
        (tvm.ResNet, "resnet", _resnet),
        (tvm.DenseNet, "densenet", _densenet),
        (tvm.VGG, "vgg", _vgg),
        (tvm.Inception3, "inception_v3", _inception_v3),
        (tvm.MobileNetV2, "mobilenet", _mobilenet),
        (tvm.MobileNetV3, "mobilenet", _mobilenet),
        (tvm.EfficientNet, "efficientnet", _efficientnet),
        (tvm.ConvNeXt, "convnext", _convnext),
    ]
    for cls, name, rule in table:
        if type(model) is cls:
            return f"torchvision.{name}", rule
    return None


def block_layout(model: nn.Module, blocks: BlockSpec | None = None) -> BlockLayout:
    """Cut a model into blocks.

    Rules, first match wins:

    1. ``blocks`` given: the user's list, ``{name: [module path or parameter name, ...]}``.
    2. torchvision ResNet, DenseNet, VGG and Inception-v3: exactly the paper's blocks
       (arXiv:2508.15367, Table of backbones): e.g. ResNet-50 → ``stem`` (conv1+bn1) · ``layer1``
       … ``layer4`` · ``fc``.
    3. torchvision MobileNetV2/V3 (stem, stages of blocks with the same output width, head),
       EfficientNet (stem, its seven stages, head) and ConvNeXt (stem, four stages with their
       downsampling layers, head).
    4. timm's EfficientNet family, including the offline EfficientNet-Lite0: stem, stages, head.
    5. Any other timm model: its own layer groups (``model.group_matcher(coarse=True)``).
    6. Anything else: the top-level children that hold parameters, in registration order.

    Args:
        model: The backbone, with its new classification head already in place.
        blocks: Optional user-given blocks.

    Returns:
        The validated :class:`BlockLayout`.
    """
    rule, fn = _builtin_rule(model)
    if blocks is not None:
        layout_blocks, _ = _user(model, blocks)
        stages = _regrouped_stages(model, fn, layout_blocks)
        return BlockLayout(model, layout_blocks, rule="user", stages=stages)
    layout_blocks, stages = fn(model)
    return BlockLayout(model, layout_blocks, rule=rule, stages=stages)


def _builtin_rule(model: nn.Module) -> tuple[str, Callable[[Any], Layout]]:
    """The first built-in rule that applies to ``model`` (rules 2–6 of :func:`block_layout`)."""
    found = _torchvision_rule(model)
    if found is not None:
        return found
    if is_timm_model(model) and type(model).__name__ == "EfficientNet":
        return "timm.efficientnet", _timm_efficientnet
    if is_timm_model(model):
        return f"timm.{type(model).__name__}", _timm_groups
    return "generic", _generic


def _regrouped_stages(
    model: nn.Module, rule: Callable[[Any], Layout], blocks: Sequence[Block]
) -> list[tuple[int, nn.Module]] | None:
    """The built-in rule's sequential view, renumbered for the user's ``blocks``, or ``None``.

    It exists when every built-in block lies inside one user block and the user blocks follow
    the built-in order (e.g. user blocks that group consecutive stages): then the leading frozen
    user blocks are a prefix of the forward pass, and their output can be cached.
    """
    try:
        builtin, stages = rule(model)
    except ValueError:
        return None
    if stages is None:
        return None
    owner: dict[int, int] = {}
    for index, block in enumerate(blocks):
        loose = [model.get_parameter(name) for name in block.parameters]
        subs = [model.get_submodule(path) for path in block.modules]
        for param in [p for m in subs for p in m.parameters()] + loose:
            owner[id(param)] = index
    renumber: list[int] = []
    for block in builtin:
        subs = [model.get_submodule(path) for path in block.modules]
        params = [p for m in subs for p in m.parameters()]
        params += [model.get_parameter(name) for name in block.parameters]
        users = {owner.get(id(p), -1) for p in params}
        if len(users) != 1 or -1 in users:
            return None
        renumber.append(users.pop())
    if renumber != sorted(renumber):
        return None
    return [(renumber[index], module) for index, module in stages]
