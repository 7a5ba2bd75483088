"""``predict``: classify image files with a retrained model (an export of ``retrain``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
from typing import Any

from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import UsageError
from biotune_optuna.finetune._protocol import device_problem
from biotune_optuna.studies import StudySpec


__all__ = ["add_arguments", "handle", "predict_hint"]


def add_arguments(predict: argparse.ArgumentParser) -> None:
    """The ``predict`` command's own arguments."""
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument(
        "--top-k", type=positive_int, default=1, help="print the K most probable classes"
    )
    predict.add_argument(
        "--model-seed", type=int, help="the model of this training seed (model_seed<k>.pt)"
    )
    predict.add_argument(
        "--device", default="cpu", help="where to run the model: auto, cpu, cuda, cuda:<index>..."
    )
    predict.add_argument(
        "--trust-source",
        action="store_true",
        help="import and run the '<module>:<factory>' the model file names as its source (only "
        "for files you trust as code; built-in sources need no trust)",
    )


def handle(args: argparse.Namespace) -> int:
    """Load the model, preprocess every image, print the predicted classes."""
    source = _model_path(args)
    problem = device_problem(args.device)
    if problem is not None:
        raise UsageError(f"--device {problem}")
    missing = [image for image in args.images if not image.is_file()]
    if missing:
        raise UsageError(f"{missing[0]}: no such image file")
    model, images = _load(args, source)
    say(args, _describe(model.results, source))
    import torch

    predictions = model.predict(torch.stack(images), top_k=args.top_k)
    for image, prediction in zip(args.images, predictions, strict=True):
        print(f"{image}: " + ", ".join(f"{name} ({p:.4f})" for name, p in prediction.top))
    return 0


def _load(args: argparse.Namespace, source: Path) -> tuple[Any, list[Any]]:
    """The model at ``source`` on the device, and the images preprocessed for it.

    Raises:
        UsageError: If the model file or an image is refused (one line).
    """
    from biotune_optuna.finetune import load_finetuned
    from biotune_optuna.finetune._device import resolve_device

    if args.trust_source:
        print(
            "biotune-optuna: warning: --trust-source: the model file's source is imported and "
            "run as code; use it only for files you trust",
            file=sys.stderr,
            flush=True,
        )
    device = resolve_device(args.device)
    try:
        model = load_finetuned(source, device=device, trust_source=args.trust_source)
        return model, [model.preprocess(image) for image in args.images]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _model_path(args: argparse.Namespace) -> Path:
    """The export file or retrain directory the arguments name.

    Raises:
        UsageError: If a spec's study was not retrained, or a spec-only option is given with
            an export, or there is no model of ``--model-seed`` (or it is given with a file).
    """
    if args.spec.suffix == ".toml":
        spec = spec_of(args)
        directory = spec.retrain_dir / spec.name
        if not (directory / "results.json").is_file():
            raise UsageError(
                f"study `{spec.name}` has no retrained model in {directory}: "
                f"run `biotune-optuna retrain {args.spec}{_study_options(args)}` first"
            )
        path = directory
    else:
        given = [
            option
            for option, value in (
                ("--sampler", args.sampler),
                ("--seed", args.seed),
                ("--strategy", args.strategy),
                ("--study-name", args.study_name),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{given[0]} selects a spec's study: give a spec, not {args.spec}")
        path = args.spec
    if args.model_seed is not None and path.is_file():
        raise UsageError(f"--model-seed picks a model of a retrain directory, not of {path}")
    if args.model_seed is not None and path.is_dir():
        path = path / f"model_seed{args.model_seed}.pt"
        if not path.is_file():
            raise UsageError(f"{path.parent} has no model of seed {args.model_seed}")
    return path


def predict_hint(spec: StudySpec, output: Path) -> str:
    """The ``predict`` command of ``spec``'s model in ``output``, as a shell takes it: with the
    shipped sample digits beside a digits spec (``studies/samples/digit*.png``, else
    ``IMAGE...``), and ``--trust-source`` for a model that is not built in
    (:func:`~biotune_optuna.finetune._export_record.builtin_source`): the spec's own
    ``<module>:<factory>``, which the file names."""
    images = "IMAGE..."
    directory = None if spec.path is None else spec.path.parent / "samples"
    digits = spec.data is not None and spec.data.source == "digits"
    if digits and directory is not None and any(directory.glob("digit*.png")):
        shown = os.path.relpath(directory)
        images = f"{directory.resolve() if shown.startswith('..') else shown}/digit*.png"
    from biotune_optuna.finetune._export_record import builtin_source

    own = spec.model is not None and not builtin_source(spec.model.source)
    return f"biotune-optuna predict {output} {images}" + (" --trust-source" if own else "")


def _study_options(args: argparse.Namespace) -> str:
    """The options that selected the spec's study, as a command line repeats them."""
    import shlex

    given = (
        ("--sampler", args.sampler),
        ("--seed", args.seed),
        ("--strategy", args.strategy),
        ("--study-name", args.study_name),
    )
    return "".join(
        f" {option} {shlex.quote(str(value))}" for option, value in given if value is not None
    )


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:80]


def _describe(results: dict[str, Any], source: Path) -> str:
    """Which model predicts, in one line: study, trial, seed and its test accuracy."""
    if not results:
        return f"model {source}"
    accuracy = results.get("test_macro_accuracy")
    tested = isinstance(accuracy, int | float) and not isinstance(accuracy, bool)
    return (
        f"model of study `{_one_line(results.get('study'))}`, trial "
        f"#{_one_line(results.get('trial'))}, seed {_one_line(results.get('seed'))}"
        + (f" (test macro accuracy {accuracy:.4f})" if tested else "")
    )
