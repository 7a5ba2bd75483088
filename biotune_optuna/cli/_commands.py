"""The commands as data: one row per command, and the parser built from the rows.

A row names the command, its one-line help and its description, and the module that gives
its own arguments (``add_arguments(parser)``) and its handler (``handle(args) -> exit code``).
What every command on a spec shares (the ``spec`` argument, the options that select a sibling
study, ``-q``/``-v``) is added here, once, before the command's own arguments. The module is
named rather than its two functions so that they are looked up when the parser is built (as
pip's ``commands_dict`` names a module): a test may replace a handler.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import dataclasses
from pathlib import Path
from typing import Protocol

from biotune_optuna.cli import _baselines
from biotune_optuna.cli import _best
from biotune_optuna.cli import _compare
from biotune_optuna.cli import _dashboard
from biotune_optuna.cli import _predict
from biotune_optuna.cli import _record
from biotune_optuna.cli import _retrain
from biotune_optuna.cli import _run
from biotune_optuna.cli import _status
from biotune_optuna.cli._common import add_study_options


class _CommandModule(Protocol):
    """What a command's module gives: its own arguments and its handler."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    handle: Callable[[argparse.Namespace], int]


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of ``biotune-optuna``.

    Attributes:
        name: The command's name (``biotune-optuna <name>``).
        help: Its line in ``biotune-optuna --help``.
        description: The text of ``biotune-optuna <name> --help``.
        module: The module with its ``add_arguments(parser)`` and ``handle(args)``.
        spec_help: The help of its ``spec`` argument.
        selects_study: Whether ``--sampler``, ``--seed``, ``--strategy``, ``--study-name``
            select a sibling study of the spec (and ``-q``/``-v`` set the noise); without
            them the command reads the spec as written.
    """

    name: str
    help: str
    description: str
    module: _CommandModule
    spec_help: str = "study spec (TOML), e.g. studies/demo.toml"
    selects_study: bool = True


#: The commands, in the order ``--help`` lists them.
COMMANDS = (
    Command(
        "run",
        "create or resume a study and run it to its budget",
        "Create the spec's study, or resume it, and run trials until it holds its budget of "
        "finished trials. Running the same command again after a crash or Ctrl-C resumes it.",
        _run,
    ),
    Command(
        "status",
        "trials per state, generation, best observed value, recommended trial",
        "Show progress.",
        _status,
    ),
    Command(
        "best",
        "the recommended plan as a table",
        "Show the study's recommended trial (chosen by an estimate robust to fold and seed "
        "noise: a Gaussian process over all trials) with its decoded plan, its observed value "
        "and the model's estimate, and the best single value observed.",
        _best,
    ),
    Command(
        "compare",
        "compare studies: table and best-so-far plots",
        "Compare the spec's study with its sibling studies (other samplers and seeds, as "
        "`run --sampler/--seed` names them) or with the studies given by --study: a table of "
        "the best value at fixed budgets (median and IQR over seeds) and best-so-far plots.",
        _compare,
    ),
    Command(
        "retrain",
        "retrain the recommended plan on the full train split and test it",
        "Retrain the recommended plan (see `best`) on the whole train split (early stopping "
        "on val), test it once per seed, save the weights and the plan as JSON.",
        _retrain,
    ),
    Command(
        "predict",
        "classify images with the retrained model",
        "Classify image files with the model `retrain` wrote: given a spec, its study's "
        "seed that was best on validation; given an export file (model_seed<k>.pt) or a "
        "retrain directory, that one. Prints one line per image: path: class (probability). "
        "An image is read as the training images were made: converted to RGB, its shorter side "
        "resized to the model's image size, center-cropped; it should look like them (for the "
        "digits demo: a light digit on black, smoothly scaled, as studies/samples/*.png). "
        "16-bit images are scaled by 1/65535, float images must hold values in [0, 1].",
        _predict,
        spec_help="study spec (TOML), a retrain output directory or a model_seed<k>.pt file",
    ),
    Command(
        "baselines",
        "BioTune's recommended plan against the usual ways of fine-tuning, as a table",
        "Run (or resume) the spec's BioTune study and the searches some baselines need, then "
        "train every method's final model on the whole train split, several seeds, and test "
        "it: macro test accuracy mean ± std, trainable share, training seconds (final runs "
        "and search). Writes baselines.md and baselines.json.",
        _baselines,
    ),
    Command(
        "record",
        "record a plan table: every plan of a grid trained once, to replay samplers on",
        "Train every plan of the full factorial grid over the spec's blocks (each frozen, or "
        "trained at a learning-rate multiplier of 0.1, 1 or 10) on every data fold and "
        "training seed of its protocol, with the engine a study trial uses, and write the "
        "per-epoch validation accuracy, wall time and test accuracy as a plan table that "
        '`[objective] kind = "table"` replays. Resumable: the same command continues; '
        "several workers (--worker K --workers N) share the grid.",
        _record,
    ),
    Command(
        "dashboard",
        "browse a study in optuna-dashboard",
        "Start optuna-dashboard on the spec's storage, with its artifact store.",
        _dashboard,
        spec_help="study spec (TOML)",
        selects_study=False,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command of :data:`COMMANDS`.

    Returns:
        The ``biotune-optuna`` parser; the parsed arguments' ``handle(args)`` runs the
        command and returns its exit code.
    """
    parser = argparse.ArgumentParser(
        prog="biotune-optuna",
        description=(
            "BioTune (arXiv:2508.15367) as an Optuna sampler: search which blocks of a "
            "pretrained CNN to fine-tune, and at what learning rate."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.description)
        sub.add_argument("spec", type=Path, help=command.spec_help)
        if command.selects_study:
            add_study_options(sub)
        command.module.add_arguments(sub)
        sub.set_defaults(handle=command.module.handle)
    return parser
