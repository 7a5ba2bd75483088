"""Several worker processes on one study: one per GPU, or sharing the CPU's cores.

``biotune-optuna run SPEC --workers N`` creates (or checks) the study once, then starts ``N``
copies of the same command, each a worker that runs trials until the study holds its budget.
Workers share nothing but the study's storage, so the same command can run on any number of
hosts against one PostgreSQL database; BioTune's state lives in that storage too
(:class:`~biotune_optuna.BioTuneSampler`).

With GPUs visible, worker ``k`` sees only GPU ``k mod G`` (``CUDA_VISIBLE_DEVICES``), so each
trains on its own device; on the CPU, the cores are split between the workers
(``OMP_NUM_THREADS``). Imports without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time


__all__ = [
    "PARENT_PID_ENV",
    "run_workers",
    "stop_with_parent",
    "visible_gpus",
    "worker_environments",
]

#: Environment variable with the PID of the ``run --workers`` process that started a worker.
PARENT_PID_ENV = "BIOTUNE_OPTUNA_PARENT_PID"
#: Seconds between two looks of a worker at its parent (where the kernel cannot tell it).
_PARENT_POLL_S = 1.0


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries (ids or UUIDs).

    ``CUDA_VISIBLE_DEVICES`` decides when it is set (CUDA stops reading it at the first
    invalid entry, such as ``-1``); otherwise torch counts the devices, if torch is installed.
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        gpus = []
        for entry in (part.strip() for part in listed.split(",")):
            if not entry or entry.startswith("-"):
                break
            gpus.append(entry)
        return gpus
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch, or no driver
        return []


def worker_environments(
    n_workers: int,
    *,
    gpus: Sequence[str],
    cpu_count: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """The environment variables each worker gets on top of the parent's.

    Args:
        n_workers: Number of workers.
        gpus: Visible GPUs to pin the workers to, round robin (empty: CPU only).
        cpu_count: Cores to split between CPU workers (default: this host's).
        environ: The parent's environment (default ``os.environ``); a thread count the user
            set there is kept.
    """
    environ = os.environ if environ is None else environ
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]} for k in range(n_workers)]
    if "OMP_NUM_THREADS" in environ:
        return [{} for _ in range(n_workers)]
    cores = cpu_count or os.cpu_count() or 1
    threads = str(max(1, cores // n_workers))
    return [{"OMP_NUM_THREADS": threads} for _ in range(n_workers)]


def run_workers(
    commands: Sequence[Sequence[str]],
    environments: Sequence[Mapping[str, str]],
    *,
    say: Callable[[str], None],
) -> list[int]:
    """Start one process per command, print their output line by line, wait for all.

    Each line is prefixed with ``[worker k]``. Ctrl-C reaches the workers too (one process
    group): each stops after its running trial, or at once on a second Ctrl-C; this process
    waits for them either way, so no worker outlives the command. A worker also stops at once
    when this process dies (SIGKILL, SIGTERM: :func:`stop_with_parent`); its running trial is
    then retried by the next ``run``.

    Returns:
        The exit code of each worker.
    """
    lock = threading.Lock()
    processes = []
    readers = []
    for k, (command, extra) in enumerate(zip(commands, environments, strict=True)):
        process = subprocess.Popen(
            list(command),
            env={
                **os.environ,
                **extra,
                "PYTHONUNBUFFERED": "1",
                PARENT_PID_ENV: str(os.getpid()),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        processes.append(process)
        reader = threading.Thread(target=_relay, args=(process, f"[worker {k}] ", say, lock))
        reader.start()
        readers.append(reader)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda signum, frame: None)  # workers decide
    try:
        codes = [process.wait() for process in processes]
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for reader in readers:
            reader.join(timeout=5)
    return codes


def _relay(
    process: subprocess.Popen[str], prefix: str, say: Callable[[str], None], lock: threading.Lock
) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        with lock:
            say(prefix + line.rstrip("\n"))


def stop_with_parent(environ: Mapping[str, str] | None = None) -> None:
    """Make this worker die with the ``run --workers`` process that started it.

    On Linux the kernel sends SIGTERM when the parent dies (``PR_SET_PDEATHSIG``); elsewhere,
    and as a second guard, a thread looks at the parent once a second and ends this process
    when it is gone. A parent that died before either was in place is caught at once. The
    worker's running trial is left RUNNING without a process, which the next ``run`` on this
    host fails and retries at once. Does nothing outside a worker.
    """
    environ = os.environ if environ is None else environ
    parent = environ.get(PARENT_PID_ENV)
    if parent is None or not parent.isdigit():
        return
    expected = int(parent)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != expected:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
