"""Ctrl-C during ``run``: stop after the running trial, or at once on a second Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable
import signal
import sys
import threading
from types import FrameType
from typing import Any

import optuna


class StopAfterTrial:
    """Ctrl-C stops the run after the running trial; a second Ctrl-C stops it at once.

    Either way the study stays resumable: a trial interrupted inside the objective is FAILED
    by Optuna, one interrupted elsewhere is retried once its heartbeat goes silent.

    Use it as a context manager around the run (it handles SIGINT in the main thread only),
    and raise :class:`KeyboardInterrupt` after it when :attr:`requested`.

    Args:
        study: The study to stop.
    """

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.requested = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.study.stop()
        print(
            "biotune-optuna: stopping after the running trial (Ctrl-C again to stop now)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopAfterTrial:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
