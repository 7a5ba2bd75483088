"""Checkpoints of evaluations in progress: a worker that dies costs only the epochs it had left.

One evaluation under the paper's protocol (arXiv:2508.15367, §III) trains ``n_seeds`` runs in
lockstep epoch by epoch, with early stopping per seed. After each finished epoch its state can be
saved under a key (:class:`TrainingCheckpoints`): per run the weights, the optimizer and schedule,
the :class:`~biotune_optuna.finetune._results.SeedResult` so far, the early-stopping counters and
the best epoch's weights; plus the epoch and the running fitness reported after each epoch. A later
evaluation of the same thing under the same key (a heartbeat retry of a killed trial) continues
after that epoch, and gives what the uninterrupted evaluation would have given: each epoch's
shuffle, augmentation and dropout are drawn from the run's seed and the epoch alone.

Weights of frozen parameters are not saved when they are the pretrained ones, which a fresh copy
of the backbone has again; those of a backbone that is not pretrained (random or a factory's) are.
Files are written atomically (a temporary file, then ``os.replace``), checked against the CRCs of
their zip archive (a damaged file is discarded with a warning: the evaluation starts afresh) and
read back with ``torch.load(weights_only=True)``; the directory is kept under a byte budget by
removing the least recently written checkpoints of other keys. A killed writer's temporary file
is removed when its key is loaded again (the trial resumed or retried), others after an hour.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from pathlib import Path
import tempfile
import time
from types import TracebackType
from typing import Any
from typing import Protocol

import optuna
import torch
from torch import nn

from biotune_optuna.finetune._results import SeedResult
from biotune_optuna.finetune._zip_damage import zip_damage
from biotune_optuna.trials import TrialPaused


__all__ = ["CheckpointedRun", "EvaluationCheckpoint", "TrainingCheckpoints"]

#: Version of what a checkpoint file holds; files of another version are ignored.
_FORMAT = 1
_SUFFIX = ".ckpt"
_TEMPORARY_SUFFIX = ".tmp"
#: A temporary file this old was left by a writer that died; it is removed.
_STALE_TEMPORARY_S = 3600.0

_logger = optuna.logging.get_logger(__name__)


class TrainingCheckpoints:
    """A directory of checkpoints of evaluations in progress, one file per key, bounded in bytes.

    Several processes (workers of one study, on hosts that share the directory) may use one
    directory: each write replaces its key's file atomically, and a reader sees either the old
    checkpoint or the new one. A file that cannot be read (foreign, torn, of another format) is
    treated as no checkpoint.

    Args:
        directory: Where the files go (created if missing).
        max_bytes: Budget of the directory's checkpoints. After a write that takes them over it,
            the least recently written files of *other* keys are removed until they fit; a
            checkpoint that alone exceeds the budget is not kept.

    Raises:
        ValueError: If ``max_bytes`` is negative.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = 4 * 2**30) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)

    def path(self, key: str) -> Path:
        """The file of ``key`` (a hash of it: any string is a key)."""
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:40] + _SUFFIX)

    @property
    def nbytes(self) -> int:
        """Bytes the directory's checkpoints take now."""
        return sum(size for _, size, _ in self._files())

    def save(self, key: str, state: dict[str, Any]) -> bool:
        """Write ``state`` as the checkpoint of ``key`` (atomically), then keep to the budget.

        Args:
            key: The evaluation's key.
            state: Tensors, numbers, strings, ``None`` and lists, tuples and dicts of them
                (what ``torch.load(weights_only=True)`` reads back).

        Returns:
            Whether it was kept (``False``: it alone exceeds ``max_bytes``; the key then has no
            checkpoint).
        """
        target = self.path(key)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.directory, prefix=target.stem + ".", suffix=_TEMPORARY_SUFFIX
        )
        try:
            with os.fdopen(descriptor, "wb") as file:
                torch.save({"format": _FORMAT, "key": key, "state": state}, file)
                file.flush()
                os.fsync(file.fileno())  # a host that goes down keeps it too
            if os.path.getsize(temporary) > self.max_bytes:
                self.remove(key)  # an older state would be resumed from otherwise
                return False
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
        self._evict(keep=target)
        return True

    def load(self, key: str) -> dict[str, Any] | None:
        """The state last saved for ``key`` (tensors on the CPU), or ``None`` if there is none.

        The temporary files of ``key`` (left by a writer killed while saving it) are removed. A
        file whose bytes fail its zip CRCs (or that is no zip archive) is removed with a warning;
        one that is intact but cannot be loaded (from another torch, say) is kept, with a warning.
        """
        path = self.path(key)
        for temporary in self.directory.glob(f"{path.stem}.*{_TEMPORARY_SUFFIX}"):
            temporary.unlink(missing_ok=True)
        try:
            problem = zip_damage(path)
            if problem:
                _logger.warning(f"Checkpoint {path} is damaged ({problem}); it is removed.")
                path.unlink(missing_ok=True)
                return None
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception as exc:  # foreign or from an incompatible torch: kept, not resumed
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            _logger.warning(f"Checkpoint {path} cannot be read ({reason}); starting afresh.")
            return None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            return None
        if payload.get("key") != key:  # a hash collision, in theory
            return None
        return payload["state"]

    def remove(self, key: str) -> None:
        """Remove the checkpoint of ``key`` (nothing happens if there is none)."""
        self.path(key).unlink(missing_ok=True)

    def _files(self) -> list[tuple[float, int, Path]]:
        """``(mtime, size, path)`` of the checkpoint files; stale temporary files are removed."""
        files = []
        now = time.time()
        for path in self.directory.iterdir():
            try:
                status = path.stat()
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            if path.suffix == _SUFFIX:
                files.append((status.st_mtime, status.st_size, path))
            elif path.suffix == _TEMPORARY_SUFFIX and now - status.st_mtime > _STALE_TEMPORARY_S:
                path.unlink(missing_ok=True)
        return files

    def _evict(self, keep: Path) -> None:
        """Remove the least recently written checkpoints but ``keep`` until all fit the budget."""
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size


class CheckpointedRun(Protocol):
    """What a checkpoint saves of one seed's training run (the engine's run)."""

    result: SeedResult
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    stale: int
    stopped: bool
    best_state: dict[str, torch.Tensor] | None


@dataclasses.dataclass
class EvaluationCheckpoint:
    """One evaluation's checkpoint: where it is saved, and what it must have been saved for.

    As a context manager it removes the checkpoint when the evaluation ends, finished or stopped
    by an exception (:class:`optuna.TrialPruned`, a training failure); not when the process is
    being stopped (``KeyboardInterrupt``, ``SystemExit``), which is like being killed, nor when
    the trial was paused at its rung (:class:`~biotune_optuna.trials.TrialPaused`): a later
    trial continues it.

    Attributes:
        store: The checkpoints.
        key: The evaluation's key.
        signature: What the evaluation trains (strategy, protocol, data); a checkpoint saved
            with another signature is ignored.
        frozen: Save the frozen weights too, once (the first run's: every run copies them from
            the template), for a backbone that is not pretrained, which another process may
            build otherwise; see :meth:`frozen_weights`.
        reported: The running fitness after each epoch so far.
    """

    store: TrainingCheckpoints
    key: str
    signature: str
    frozen: bool = False
    reported: list[float] = dataclasses.field(default_factory=list)
    _saved: dict[str, Any] | None = dataclasses.field(default=None, init=False, repr=False)
    _loaded: bool = dataclasses.field(default=False, init=False, repr=False)

    def _state(self) -> dict[str, Any] | None:
        """The saved state, if it is this evaluation's (loaded once)."""
        if not self._loaded:
            state = self.store.load(self.key)
            fits = state is not None and state.get("signature") == self.signature
            self._saved, self._loaded = (state if fits else None), True
        return self._saved

    def frozen_weights(self) -> dict[str, torch.Tensor]:
        """The frozen weights the checkpoint was saved with (empty: none saved or no checkpoint
        fits); the template's, for an evaluation to continue with the same ones."""
        state = self._state()
        return {} if state is None else dict(state.get("frozen") or {})

    def resume(self, runs: list[CheckpointedRun]) -> int:
        """Restore the runs (fresh from the template) as saved; the epoch they continue after.

        Returns:
            The last epoch the checkpoint finished (0: none fits; the runs are left as given).
        """
        state = self._state()
        if state is None or len(state["runs"]) != len(runs):
            return 0
        for run, saved in zip(runs, state["runs"]):
            _restore_run(run, saved)
        self.reported = [float(value) for value in state["reported"]]
        return int(state["epoch"])

    def save(self, runs: list[CheckpointedRun], epoch: int, fitness: float) -> None:
        """Save the runs after ``epoch``, whose running fitness was ``fitness``."""
        self.reported.append(fitness)
        state = {
            "signature": self.signature,
            "epoch": epoch,
            "reported": list(self.reported),
            "runs": [_run_state(run) for run in runs],
        }
        if self.frozen and runs:
            model = runs[0].model
            state["frozen"] = {
                name: param.detach().cpu()
                for name, param in model.named_parameters()
                if not param.requires_grad
            }
        self.store.save(self.key, state)

    def __enter__(self) -> EvaluationCheckpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None or issubclass(exc_type, Exception):
            if exc_type is not None and issubclass(exc_type, TrialPaused):
                return  # paused at a rung: a continuation resumes it (budget-aware studies)
            self.store.remove(self.key)


def _frozen_names(model: nn.Module) -> set[str]:
    """State names of the parameters that do not train (the pretrained weights, unchanged)."""
    named = model.named_parameters(remove_duplicate=False)
    return {name for name, param in named if not param.requires_grad}


def _run_state(run: CheckpointedRun) -> dict[str, Any]:
    """What is saved of a run: all but its frozen weights (the template's, saved apart)."""
    frozen = _frozen_names(run.model)

    def trained(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: tensor for name, tensor in state.items() if name not in frozen}

    return {
        "model": trained(run.model.state_dict()),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "result": dataclasses.asdict(run.result),
        "stale": run.stale,
        "stopped": run.stopped,
        "best": None if run.best_state is None else trained(run.best_state),
    }


def _restore_run(run: CheckpointedRun, saved: dict[str, Any]) -> None:
    """Load a saved run into a fresh one (same strategy and seed, copied from a template with
    the frozen weights saved: the pretrained ones, or :meth:`EvaluationCheckpoint.frozen_weights`).

    Raises:
        ValueError: If the saved weights do not fit the run's model.
    """
    missing, unexpected = run.model.load_state_dict(saved["model"], strict=False)
    if unexpected or set(missing) - _frozen_names(run.model):
        raise ValueError("the checkpoint's weights do not fit the model")
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    run.result = SeedResult(**saved["result"])
    run.stale, run.stopped = int(saved["stale"]), bool(saved["stopped"])
    run.best_state = None
    if saved["best"] is not None:
        best = copy.deepcopy(run.model.state_dict())
        with torch.no_grad():
            for name, tensor in saved["best"].items():
                best[name].copy_(tensor)
        run.best_state = best
