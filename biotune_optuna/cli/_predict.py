"""``predict``: classify image files with a retrained model (an export of ``retrain``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from biotune_optuna.cli._common import add_spec_command
from biotune_optuna.cli._common import positive_int
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.cli._common import UsageError


__all__ = ["add_parser", "handle"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``predict`` command."""
    predict = add_spec_command(
        commands,
        "predict",
        "classify images with the retrained model",
        "Classify image files with the model `retrain` wrote: given a spec, its study's "
        "seed that was best on validation; given an export file (model_seed<k>.pt) or a "
        "retrain directory, that one. Prints one line per image: path: class (probability).",
        spec_help="study spec (TOML), a retrain output directory or a model_seed<k>.pt file",
    )
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument(
        "--top-k", type=positive_int, default=1, help="print the K most probable classes"
    )
    predict.add_argument(
        "--model-seed", type=int, help="the model of this training seed (model_seed<k>.pt)"
    )
    predict.add_argument("--device", default="cpu", help="where to run the model (cpu, cuda)")
    predict.set_defaults(handle=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the model, preprocess every image, print the predicted classes."""
    from biotune_optuna.finetune import load_finetuned

    source = _model_path(args)
    missing = [image for image in args.images if not image.is_file()]
    if missing:
        raise UsageError(f"{missing[0]}: no such image file")
    try:
        model = load_finetuned(source, device=args.device)
        images = [model.preprocess(image) for image in args.images]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    say(args, _describe(model.results, source))
    import torch

    predictions = model.predict(torch.stack(images), top_k=args.top_k)
    for image, prediction in zip(args.images, predictions, strict=True):
        print(f"{image}: " + ", ".join(f"{name} ({p:.4f})" for name, p in prediction.top))
    return 0


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
                f"run `biotune-optuna retrain {args.spec}` first"
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


def _describe(results: dict[str, Any], source: Path) -> str:
    """Which model predicts, in one line: study, trial, seed and its test accuracy."""
    if not results:
        return f"model {source}"
    accuracy = results.get("test_macro_accuracy")
    return (
        f"model of study `{results.get('study')}`, trial #{results.get('trial')}, seed "
        f"{results.get('seed')}"
        + (f" (test macro accuracy {accuracy:.4f})" if accuracy is not None else "")
    )
