"""What the commands share: bad input, argument types, the spec with its overrides, ``say``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies import load_spec
from biotune_optuna.studies import StudySpec


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argument type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def worker_count(text: str) -> int:
    """``--workers``: a count, or ``auto`` (0 here: one per visible GPU)."""
    return 0 if text == "auto" else positive_int(text)


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of positive integers, e.g. ``--budgets 5,12``."""
    return [positive_int(part) for part in text.split(",") if part.strip()]


def names(text: str) -> list[str]:
    """A comma-separated list of names, e.g. ``--strategies full,lora``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_study_options(command: argparse.ArgumentParser) -> None:
    """The options of a command on a spec that select the spec's study, and the noise.

    ``--sampler``, ``--seed``, ``--strategy`` and ``--study-name`` select a sibling study of
    the spec (see :meth:`~biotune_optuna.studies.StudySpec.with_overrides`); ``-q`` and ``-v``
    say less or more.
    """
    command.add_argument(
        "--sampler",
        choices=tuple(SAMPLERS),
        help="run or read the spec's study under this sampler (study <name>-<sampler>)",
    )
    command.add_argument(
        "--seed", type=non_negative_int, help="another seed (study <name>[-<sampler>]-seed<k>)"
    )
    command.add_argument(
        "--strategy",
        choices=tuple(STRATEGIES),
        help="a baseline fine-tuning strategy instead of BioTune's plans "
        "(study <name>-<strategy>)",
    )
    command.add_argument("--study-name", help="the study's name, instead of the derived one")
    noise = command.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    noise.add_argument(
        "-v", "--verbose", action="store_true", help="also every epoch and Optuna's log"
    )


def spec_of(
    args: argparse.Namespace, *, trials: int | None = None, generations: int | None = None
) -> StudySpec:
    """The spec of a spec command's arguments, with their study-selecting overrides.

    Args:
        args: The parsed arguments of a command with :func:`add_study_options`.
        trials: The ``run`` command's budget in trials, if given.
        generations: The ``run`` command's budget in generations, if given.

    Raises:
        SpecError: If the spec cannot be read, or the overrides do not fit it.
    """
    return load_spec(args.spec).with_overrides(
        sampler=args.sampler,
        seed=args.seed,
        name=args.study_name,
        strategy=args.strategy,
        trials=trials,
        generations=generations,
    )


def say(args: argparse.Namespace, text: str) -> None:
    """Print ``text`` unless the command is ``--quiet``."""
    if not args.quiet:
        print(text, flush=True)
