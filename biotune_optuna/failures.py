"""Trials that fail: a reason in one line, the study goes on (imports without torch).

A plan can diverge (a NaN or infinite loss), run out of GPU memory, or hit a broken image. Such a
trial is one bad point of the search, not the end of a study that has run for days: the
fine-tuning objective records why in the trial's ``fail_reason`` user attr (shown in
optuna-dashboard) and raises :class:`TrialFailed`, which ``study.optimize(...,
catch=(TrialFailed,))`` turns into a FAILED trial. BioTune then gives the trial's slot the worst
fitness (arXiv:2508.15367 ranks by accuracy; a failed plan has none), and the study goes on.

Errors of the setup itself (a study run under another sampler, a sampler whose settings changed)
are not trial failures: they stop the run.
"""

from __future__ import annotations

import gc
import sys


__all__ = ["FAIL_REASON_ATTR", "TrialFailed", "failure_reason", "release_memory"]

#: User attr of a FAILED trial: why it failed, in one line.
FAIL_REASON_ATTR = "fail_reason"
_MAX_REASON = 500


class TrialFailed(Exception):
    """A trial's training failed; the study goes on (pass it to ``catch`` of ``optimize``).

    Args:
        reason: Why, in one line (also the trial's ``fail_reason`` user attr).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def failure_reason(exc: BaseException) -> str:
    """Why a trial failed, in one line that says what kind of failure it was."""
    name = type(exc).__name__
    text = " ".join(str(exc).split()) or name
    if name == "OutOfMemoryError" or isinstance(exc, MemoryError) or "out of memory" in text:
        kind = "out of memory"
    elif isinstance(exc, FloatingPointError):
        kind = "diverged"
    else:
        kind = "error"
    reason = f"{kind}: {name}: {text}"
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"


def release_memory() -> None:
    """Free what a failed trial held: Python garbage, then CUDA's cached blocks."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
