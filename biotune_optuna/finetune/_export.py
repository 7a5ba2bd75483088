"""A fine-tuned model as one self-contained file, and the model it loads back as.

:func:`save_finetuned` writes, with ``torch.save``, plain types and tensors only (so that
``torch.load(path, weights_only=True)`` reads it): a format tag, the weights, the plan, where the
architecture came from (the backbone's source, head and blocks), the classes, the normalisation,
the image size and the results. :func:`load_finetuned` reads such a file as data: it checks the
file's bytes (the zip archive's CRC-32s) and every field of the record, rebuilds the
architecture without downloading anything (``load_backbone(source, weights=None)``) only if the
source is built in (the bundled EfficientNet-Lite0, a torchvision or timm model of their
registries; a ``"<module>:<factory>"`` is imported only when the caller says so), loads the
weights strictly and returns a :class:`FineTunedModel`: the network with its preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from biotune_optuna.finetune._backbones import Backbone
from biotune_optuna.finetune._backbones import load_backbone
from biotune_optuna.finetune._backbones import read_tensors
from biotune_optuna.finetune._backbones import replace_head
from biotune_optuna.finetune._data import image_transform
from biotune_optuna.finetune._export_images import image_pixels
from biotune_optuna.finetune._export_images import open_image
from biotune_optuna.finetune._export_record import builtin_source
from biotune_optuna.finetune._export_record import check_intact
from biotune_optuna.finetune._export_record import check_record
from biotune_optuna.finetune._pipeline import Normalize


__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "FineTunedModel",
    "Prediction",
    "load_finetuned",
    "save_finetuned",
]

#: The format tag of an export file, and its version.
EXPORT_FORMAT = "biotune_optuna.finetuned"
EXPORT_VERSION = 1

#: The images :meth:`FineTunedModel.predict` runs through the network at once.
_BATCH = 64


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What a :class:`FineTunedModel` predicts for one image.

    Attributes:
        class_name: The most probable class.
        probability: Its softmax probability.
        top: The ``top_k`` most probable ``(class name, probability)`` pairs, best first.
    """

    class_name: str
    probability: float
    top: tuple[tuple[str, float], ...]


def _plain(value: Any) -> Any:
    """``value`` as JSON's plain types (dicts, lists, strings, numbers, ``None``)."""
    return json.loads(json.dumps(value, default=float))


def _merged(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` with adapters (peft's LoRA layers) merged into their base layers,
    so that its state dict fits the backbone it was made from."""
    model = copy.deepcopy(model).cpu()
    adapted = [
        (name, module)
        for name, module in model.named_modules()
        if callable(getattr(module, "merge", None)) and hasattr(module, "get_base_layer")
    ]
    for name, module in adapted:
        module.merge()
        model.set_submodule(name, module.get_base_layer())
    return model


def save_finetuned(
    model: nn.Module,
    path: str | Path,
    *,
    backbone: Backbone,
    classes: Sequence[str],
    image_size: int,
    plan: Mapping[str, Any] | None = None,
    head: str | None = None,
    results: Mapping[str, Any] | None = None,
) -> Path:
    """Write a trained model and everything needed to use it to one file.

    Args:
        model: The trained model (a copy of ``backbone.model``, possibly with LoRA adapters,
            which are merged).
        path: The file to write (by convention ``*.pt``).
        backbone: The backbone it was trained from: source, blocks, head and normalisation.
        classes: The class names, in the order of the model's outputs.
        image_size: The side of the square images it was trained on.
        plan: What it was trained with (a strategy's ``describe()``).
        head: The ``head`` argument the backbone was loaded with (``None``: found by rule).
        results: Its scores and where it came from (study, trial, seed, accuracies).

    Returns:
        The path written.
    """
    state_dict = {
        key: value.detach().cpu().contiguous()
        for key, value in _merged(model).state_dict().items()
    }
    record = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "state_dict": state_dict,
        "source": backbone.name,
        "head": head,
        "head_modules": list(backbone.head),
        "blocks": {b.name: [*b.modules, *b.parameters] for b in backbone.layout.blocks},
        "num_classes": len(classes),
        "class_names": [str(name) for name in classes],
        "mean": [float(m) for m in backbone.mean],
        "std": [float(s) for s in backbone.std],
        "image_size": int(image_size),
        "plan": _plain(dict(plan or {})),
        "results": _plain(dict(results or {})),
    }
    path = Path(path)
    torch.save(record, path)
    return path


class FineTunedModel(nn.Module):
    """A fine-tuned network with its preprocessing: images in ``[0, 1]`` in, logits out.

    Made by :func:`load_finetuned`. ``forward`` normalises ``(N, 3, H, W)`` images in ``[0, 1]``
    itself; :meth:`preprocess` turns an image file into such a tensor the way the training data
    was made, and :meth:`predict` does both and names the classes.

    Args:
        network: The classifier, which expects normalised images.
        class_names: The class names, in the order of its outputs.
        image_size: The side of the square images it was trained on.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
        source: Where the architecture came from, e.g. ``"efficientnet_lite0"``.
        plan: What it was trained with (a strategy's ``describe()``).
        results: Its scores and where it came from.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        class_names: Sequence[str],
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        source: str = "",
        plan: Mapping[str, Any] | None = None,
        results: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(tuple(mean), tuple(std))
        self.network = network
        self.class_names = list(class_names)
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.source = source
        self.plan = dict(plan or {})
        self.results = dict(results or {})
        self._transform = image_transform(self.image_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of ``(N, 3, H, W)`` images with values in ``[0, 1]``."""
        return self.network(self.normalize(images))

    def preprocess(self, image: Any) -> torch.Tensor:
        """An image as the training data pipeline made them: RGB, the shorter side resized to
        :attr:`image_size`, center-cropped to a square, float in ``[0, 1]``, ``(3, H, W)``.

        16-bit images are scaled by ``1 / 65535``; float images must hold values in ``[0, 1]``
        (see :mod:`~biotune_optuna.finetune._export_images`).

        Args:
            image: A PIL image, a path to an image file, or a ``(C, H, W)`` tensor.

        Raises:
            ValueError: In one line, if the file does not exist, is not an image, is too large
                (more than PIL's ``Image.MAX_IMAGE_PIXELS``) or holds values out of range.
        """
        where = "the image"
        if isinstance(image, str | Path):
            where = str(image)
            image = open_image(Path(image))
        return self._transform(image_pixels(image, where))

    @torch.inference_mode()
    def predict(self, images: Any, *, top_k: int = 1) -> list[Prediction]:
        """The most probable classes of images.

        Args:
            images: A ``(N, 3, H, W)`` or ``(3, H, W)`` tensor in ``[0, 1]``, or a sequence of
                PIL images or paths (each :meth:`preprocess`-ed).
            top_k: How many of the most probable classes each prediction lists.

        Returns:
            One :class:`Prediction` per image.
        """
        if not isinstance(images, torch.Tensor):
            images = torch.stack([self.preprocess(image) for image in images])
        elif images.ndim == 3:
            images = images[None]
        device = next(self.parameters()).device
        k = max(1, min(top_k, len(self.class_names)))
        predictions = []
        for batch in images.split(_BATCH):
            probabilities = self(batch.to(device, torch.float32)).softmax(dim=1)
            values, indices = probabilities.topk(k, dim=1)
            for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True):
                top = tuple(
                    (self.class_names[i], p) for i, p in zip(row_indices, row_values, strict=True)
                )
                predictions.append(Prediction(top[0][0], top[0][1], top))
        return predictions

    def export_program(self, path: str | Path, *, batch_size: int = 1) -> Path:
        """Save the model as a ``torch.export`` program (``*.pt2``), preprocessing included.

        The program takes ``(batch_size, 3, image_size, image_size)`` images in ``[0, 1]``
        on the model's device; load it with ``torch.export.load(path).module()``.

        Returns:
            The path written.
        """
        device = next(self.parameters()).device
        example = torch.rand(batch_size, 3, self.image_size, self.image_size, device=device)
        program = torch.export.export(self.eval(), (example,))
        path = Path(path)
        torch.export.save(program, path)
        return path


def _export_file(path: Path) -> Path:
    """The export file at ``path``: the file itself, or a retrain directory's best seed's.

    Raises:
        ValueError: If there is no such file or directory, or the directory holds no retrained
            model.
    """
    if path.is_file():
        return path
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or directory")
    results = path / "results.json"
    try:
        best = json.loads(results.read_text())["best_weights"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path} holds no retrained model (no results.json naming its best_weights)"
        ) from None
    return path / str(best)


def _read_export(path: Path) -> dict[str, Any]:
    """The record of an export file, its bytes and every field checked.

    Raises:
        ValueError: If the file is damaged, is not one written by :func:`save_finetuned`, or a
            field of its record is missing, of a wrong type, out of range or does not fit the
            weights.
    """
    check_intact(path)
    record = read_tensors(path, f"{path} is not a fine-tuned model saved by biotune_optuna")
    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        what = "a state dict" if isinstance(record, dict) else f"a {type(record).__name__}"
        raise ValueError(
            f"{path} holds {what}, not a fine-tuned model saved by biotune_optuna "
            "(biotune-optuna retrain writes those)"
        )
    if record.get("version") != EXPORT_VERSION:
        raise ValueError(
            f"{path}: export version {_short(record.get('version'))}; this biotune_optuna reads "
            f"version {EXPORT_VERSION}"
        )
    check_record(record, path)
    return record


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _from_factory(record: Mapping[str, Any], factory: Callable[[], nn.Module]) -> nn.Module:
    """The caller's architecture, ``factory()``, with the export's new head."""
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"model_factory returned {type(model).__name__}, not an nn.Module")
    replace_head(model, record["num_classes"], record["head"])
    return model


def _rebuild(
    record: Mapping[str, Any],
    path: Path,
    *,
    model_factory: Callable[[], nn.Module] | None,
    trust_source: bool,
) -> nn.Module:
    """The export's architecture, randomly initialised (nothing downloaded), with its weights.

    Raises:
        ValueError: If the source is code the caller did not name or trust, or the
            architecture cannot be built, or the weights do not fit it.
    """
    source = record["source"]
    if model_factory is None and not trust_source and not builtin_source(source):
        raise ValueError(
            f"{path}: its model source {_short(source)} is not built in (efficientnet_lite0, "
            "torchvision:<model>, timm:<model>); a file does not choose code to run: pass "
            "model_factory=<your factory> (predict --trust-source imports it, for files you "
            "trust)"
        )
    try:
        if model_factory is not None:
            model = _from_factory(record, model_factory)
        else:
            model = load_backbone(
                source,
                num_classes=record["num_classes"],
                weights=None,
                blocks=record["blocks"],
                head=record["head"],
            ).model
        model.load_state_dict(record["state_dict"], strict=True)
    except (ValueError, RuntimeError, KeyError, ImportError, AttributeError, TypeError) as error:
        reason = " ".join(str(error).split())
        raise ValueError(
            f"{path}: cannot rebuild its model {_short(source)}: {reason[:200]}"
        ) from None
    return model


def load_finetuned(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    model_factory: Callable[[], nn.Module] | None = None,
    trust_source: bool = False,
) -> FineTunedModel:
    """Load a model written by :func:`save_finetuned` (``biotune-optuna retrain`` writes them).

    The file is data: it is refused if its bytes changed since it was written (its zip CRC-32s)
    or a field of its record is wrong, and the code it names is never imported unless you say
    so. Built-in sources are rebuilt by name: ``"efficientnet_lite0"``, ``"torchvision:<m>"``
    of torchvision's classification models, ``"timm:<m>"`` of timm's registry. A model trained
    from your own ``"<module>:<factory>"`` needs ``model_factory`` (or ``trust_source``).

    Args:
        path: An export file (``model_seed<k>.pt``), or a ``retrain`` output directory (then
            its seed that was best on validation).
        device: Where to put the model.
        model_factory: Your factory of the architecture (called with no arguments, returning
            the ``nn.Module`` before its head is replaced, as ``"<module>:<factory>"`` is);
            used instead of the file's source, whatever it names.
        trust_source: Import and call the ``"<module>:<factory>"`` the file names: only for a
            file you trust as you trust code.

    Returns:
        The :class:`FineTunedModel`, in eval mode, on ``device``.

    Raises:
        ValueError: In one line, if ``path`` is no export, is damaged, names code you did not
            name or trust, or its model cannot be rebuilt.
    """
    path = _export_file(Path(path))
    record = _read_export(path)
    network = _rebuild(record, path, model_factory=model_factory, trust_source=trust_source)
    model = FineTunedModel(
        network,
        class_names=record["class_names"],
        image_size=record["image_size"],
        mean=record["mean"],
        std=record["std"],
        source=record["source"],
        plan=record["plan"],
        results=record["results"],
    )
    return model.to(device).eval()
