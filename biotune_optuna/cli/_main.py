"""``main``: parse the arguments, run the command, and say what went wrong in one line.

The exit codes: 0 success, 2 bad input, 1 any other failure or Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Sequence
import logging
import sys
import traceback
import warnings

import optuna

from biotune_optuna.cli._commands import build_parser
from biotune_optuna.cli._common import UsageError
from biotune_optuna.cli._pipe import stdout_until_closed
from biotune_optuna.samplers import SamplerMismatchError
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.studies._storage import storage_failure


__all__ = ["main"]


class _MaskingFormatter(logging.Formatter):
    """A log handler's formatter whose lines (a trial's traceback too) are masked."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return masked_text(self.inner.format(record))


def _mask_log_records() -> None:
    """Mask what Optuna's and the root logger's handlers print (a failed trial's error)."""
    for logger in (logging.getLogger("optuna"), logging.getLogger()):
        for handler in logger.handlers:
            if not isinstance(handler.formatter, _MaskingFormatter):
                handler.setFormatter(_MaskingFormatter(handler.formatter))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biotune-optuna`` console script.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 success, 2 bad input (one ``error:`` line, nothing written), 1 any
        other failure (one ``failed:`` line, naming the cause of a storage's failure;
        ``-v`` prints its traceback first) or Ctrl-C. Bad arguments exit with 2 from
        argparse. Secrets in messages and tracebacks are masked
        (:func:`~biotune_optuna.studies._storage.masked_text`). A closed
        standard output (``| head``) only stops the printing.
    """
    args = build_parser().parse_args(argv)  # exits with 2 on bad arguments
    verbose = getattr(args, "verbose", False)
    optuna.logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
    _mask_log_records()
    if not verbose:  # heartbeats and their retries are "experimental" in Optuna 5
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        with stdout_until_closed():  # `| head` stops the printing, never the command
            return args.handle(args)
    except (UsageError, SpecError, SamplerMismatchError) as exc:
        print(f"biotune-optuna: error: {masked_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biotune-optuna: interrupted; run the same command to resume", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, exit 1; -v shows the traceback
        if verbose:  # the traceback quotes messages that may hold a password
            print(masked_text("".join(traceback.format_exception(exc))), file=sys.stderr)
        explained = storage_failure(exc)  # a full disk, a damaged file, under Optuna's words
        if isinstance(explained, SpecError):
            print(f"biotune-optuna: error: {masked_text(str(explained))}", file=sys.stderr)
            return 2
        message = str(explained) if explained else f"{type(exc).__name__}: {exc}"
        print(f"biotune-optuna: failed: {masked_text(message)}", file=sys.stderr)
        return 1
