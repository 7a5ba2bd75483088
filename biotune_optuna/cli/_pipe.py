"""Standard output that a closed pipe cannot stop: ``biotune-optuna run … | head``.

When the reader of the output goes away (``| head -2`` has its lines), writing raises
``BrokenPipeError``. As Python's documentation on SIGPIPE advises, standard output is then
pointed at ``os.devnull``: nothing more is printed, the command goes on to its end (a ``run``
finishes its trials) and exits as it would have, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import sys
from typing import Any
from typing import TextIO


__all__ = ["stdout_until_closed"]


class _UntilClosed:
    """A text stream that writes to ``stream`` until its reader has gone, then to nowhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        """Point the stream's file descriptor at ``os.devnull`` (if it has one)."""
        try:
            fileno = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream (tests)
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fileno)
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def stdout_until_closed() -> Iterator[None]:
    """Within the block, ``sys.stdout`` stops printing, silently, once its pipe is closed."""
    original = sys.stdout
    guarded = _UntilClosed(original)
    sys.stdout = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        guarded.flush()  # what is still buffered, before the interpreter's own flush at exit
        sys.stdout = original
