"""An export file read as data: its bytes checked, its record checked, its source looked up.

Nothing in an export chooses code to run. :func:`check_intact` compares every member of the
file's zip archive with its CRC-32 before ``torch.load`` reads it (a damaged file is refused,
not loaded with wrong weights). :func:`check_record` checks every field of the record: its
type, its range and its fit to the weights. :func:`builtin_source` says whether the record's
``source`` names an architecture this package builds itself: the bundled EfficientNet-Lite0,
a torchvision classification model or a timm model, each looked up in its library's registry.
Any other source (``"<module>:<factory>"``) is code, which only the caller may name.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from pathlib import Path
from typing import Any
import zipfile

import torch

from biotune_optuna.finetune._backbones import DEFAULT_BACKBONE


__all__ = ["MAX_IMAGE_SIZE", "builtin_source", "check_intact", "check_record"]

#: The largest ``image_size`` an export may name (a 4096 px RGB float image is 200 MB).
MAX_IMAGE_SIZE = 4096


def check_intact(path: Path) -> None:
    """Check that ``path`` is a zip archive (what ``torch.save`` writes) whose members all
    match their CRC-32.

    Raises:
        ValueError: In one line, if the file is no zip archive or a member is damaged.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a fine-tuned model saved by biotune_optuna (not a zip archive, "
            "as torch.save writes)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        reason = " ".join(str(error).split())[:120]
        raise ValueError(f"{path} is damaged ({reason}); export the model again") from None
    if damaged is not None:
        raise ValueError(
            f"{path} is damaged: {damaged} does not match its CRC-32 (the file changed after "
            "it was written); export the model again"
        )


def builtin_source(source: str) -> bool:
    """Whether ``source`` names an architecture this package builds without running code the
    export names: ``"efficientnet_lite0"``, ``"torchvision:<name>"`` of a torchvision
    classification model, or ``"timm:<name>"`` of a model in timm's registry."""
    if source == DEFAULT_BACKBONE:
        return True
    kind, _, name = source.partition(":")
    if kind == "torchvision":
        from torchvision import models

        return name in models.list_models(module=models)
    if kind == "timm":
        import timm

        return bool(name) and ":" not in name and timm.is_model(name)
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _field_problems(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first field of ``record`` of a wrong type or out of range, and what is wrong."""
    checks: tuple[tuple[str, bool, str], ...] = (
        ("source", isinstance(record.get("source"), str) and bool(record.get("source")), "a name"),
        ("head", record.get("head") is None or isinstance(record.get("head"), str), "a name"),
        ("head_modules", _strings(record.get("head_modules")), "a list of module names"),
        (
            "blocks",
            isinstance(record.get("blocks"), dict)
            and all(isinstance(k, str) and _strings(v) for k, v in record["blocks"].items()),
            "a table of block names to lists of module names",
        ),
        (
            "num_classes",
            _is_int(record.get("num_classes")) and record["num_classes"] >= 2,
            "an integer >= 2",
        ),
        ("class_names", _strings(record.get("class_names")), "a list of names"),
        (
            "image_size",
            _is_int(record.get("image_size")) and 1 <= record["image_size"] <= MAX_IMAGE_SIZE,
            f"an integer in [1, {MAX_IMAGE_SIZE}]",
        ),
        ("plan", isinstance(record.get("plan"), dict), "a table"),
        ("results", isinstance(record.get("results"), dict), "a table"),
        (
            "state_dict",
            isinstance(record.get("state_dict"), dict)
            and all(
                isinstance(k, str) and isinstance(v, torch.Tensor)
                for k, v in record["state_dict"].items()
            ),
            "a table of tensors",
        ),
    )
    for name, ok, expected in checks:
        if not ok:
            return name, f"must be {expected}, got {_shown(record.get(name, '<missing>'))}"
    for name, low in (("mean", -math.inf), ("std", 0.0)):
        value = record.get(name, "<missing>")
        if not (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and all(math.isfinite(v) and v > low for v in value)
        ):
            bound = " and > 0" if low == 0 else ""
            return name, f"must be 3 finite numbers{bound} (R, G, B), got {_shown(value)}"
    return None


def _shown(value: Any) -> str:
    """``value`` for an error line: its repr, cut to 60 characters, or its type for tensors."""
    if isinstance(value, torch.Tensor | dict):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def check_record(record: Mapping[str, Any], path: Path) -> None:
    """Check every field of an export's record: its type, its range, and that the classes and
    the head's weights agree.

    Raises:
        ValueError: ``"<path>: export field <name> <problem>"`` in one line.
    """
    problem = _field_problems(record)
    if problem is None:
        problem = _consistency_problem(record)
    if problem is not None:
        name, what = problem
        raise ValueError(f"{path}: export field {name} {what}; the file is no usable export")


def _consistency_problem(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """Whether class names, ``num_classes`` and the head's weights agree (fields well typed)."""
    names, count = record["class_names"], record["num_classes"]
    if len(names) != count:
        return "class_names", f"holds {len(names)} names for num_classes = {count}"
    if len(set(names)) != len(names):
        return "class_names", "names a class twice"
    if not record["head_modules"]:
        return "head_modules", "is empty (the model's head is not named)"
    for module in record["head_modules"]:
        weight = record["state_dict"].get(f"{module}.weight")
        if weight is None or weight.ndim < 1:
            return "head_modules", f"names {module!r}, which has no weight in state_dict"
        if weight.shape[0] != count:
            outputs = weight.shape[0]
            return "num_classes", f"is {count}, but the head {module!r} has {outputs} outputs"
    return None
