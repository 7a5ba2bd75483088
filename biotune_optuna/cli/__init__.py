"""The ``biotune-optuna`` command line: run, inspect, compare, retrain and browse studies.

Every command takes a study spec (a TOML file, see ``studies/demo.toml``). ``--sampler`` and
``--seed`` select a sibling study of the spec (``<name>-<sampler>``, ``-seed<k>``), so that the
same spec runs under every sampler and seed and ``compare`` finds them all.

Exit codes: 0 success, 2 bad input (nothing written), 1 any other failure.

One module per command (``_run``, ``_status``, ``_best``, ``_compare``, ``_retrain``,
``_predict``, ``_baselines``, ``_record``, ``_dashboard``), each with its parser and its
handler; ``_common`` holds what they share, ``_progress``, ``_interrupt`` and ``_workers``
what ``run`` is made of.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import logging
import sys
import warnings

import optuna

from biotune_optuna.cli import _baselines
from biotune_optuna.cli import _best
from biotune_optuna.cli import _compare
from biotune_optuna.cli import _dashboard
from biotune_optuna.cli import _predict
from biotune_optuna.cli import _record
from biotune_optuna.cli import _retrain
from biotune_optuna.cli import _run
from biotune_optuna.cli import _status
from biotune_optuna.cli._common import UsageError
from biotune_optuna.samplers import SamplerMismatchError
from biotune_optuna.studies import SpecError
from biotune_optuna.studies.storage import masked_text


__all__ = ["UsageError", "build_parser", "main"]

#: The commands, in the order ``--help`` lists them.
_COMMANDS = (
    _run,
    _status,
    _best,
    _compare,
    _retrain,
    _predict,
    _baselines,
    _record,
    _dashboard,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each command sets its ``handle(args) -> exit code``."""
    parser = argparse.ArgumentParser(
        prog="biotune-optuna",
        description=(
            "BioTune (arXiv:2508.15367) as an Optuna sampler: search which blocks of a "
            "pretrained CNN to fine-tune, and at what learning rate."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biotune-optuna`` console script.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 success, 2 bad input (one ``error:`` line, nothing written), 1 any
        other failure (one ``failed:`` line; ``-v`` raises it with its traceback) or Ctrl-C.
        Bad arguments exit with 2 from argparse. Secrets in messages are masked.
    """
    args = build_parser().parse_args(argv)  # exits with 2 on bad arguments
    verbose = getattr(args, "verbose", False)
    optuna.logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
    if not verbose:  # heartbeats and their retries are "experimental" in Optuna 5
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return args.handle(args)
    except (UsageError, SpecError, SamplerMismatchError) as exc:
        print(f"biotune-optuna: error: {masked_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biotune-optuna: interrupted; run the same command to resume", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, exit 1; -v shows the traceback
        if verbose:
            raise
        message = masked_text(str(exc))  # a driver's error may quote a URL
        print(f"biotune-optuna: failed: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
