"""``run --workers``: how many worker processes, on which GPUs, and starting them."""

from __future__ import annotations

import argparse
import sys

from biotune_optuna.cli._common import say
from biotune_optuna.studies import StudySpec
from biotune_optuna.studies._workers import run_workers
from biotune_optuna.studies._workers import visible_gpus
from biotune_optuna.studies._workers import worker_environments


#: The ``run`` options a worker gets as they were given (with ``--max-failures`` and noise).
_PASSED_ON = ("sampler", "seed", "strategy", "study_name", "trials", "generations")


def count_workers(args: argparse.Namespace, spec: StudySpec) -> int:
    """``--workers``, with ``auto`` as the number of GPUs the fine-tuning may use."""
    if args.workers:
        return int(args.workers)
    return max(1, len(gpus_for(spec)))


def gpus_for(spec: StudySpec) -> list[str]:
    """The GPUs to pin workers to: none for the synthetic objective or a fixed device."""
    if spec.objective != "finetune" or spec.protocol.device not in ("auto", "cuda"):
        return []
    return visible_gpus()


def worker_arguments(args: argparse.Namespace, worker_id: int) -> list[str]:
    """The ``run`` command line of worker ``worker_id``: this run's options, one worker."""
    arguments = ["run", str(args.spec), "--worker-id", str(worker_id)]
    for flag in _PASSED_ON:
        value = getattr(args, flag)
        if value is not None:
            arguments += [f"--{flag.replace('_', '-')}", str(value)]
    arguments += ["--max-failures", str(args.max_failures)]
    arguments += ["-q"] if args.quiet else (["-v"] if args.verbose else [])
    return arguments


def worker_command(arguments: list[str]) -> list[str]:
    """The command line of a worker: this Python running this CLI (``python -m
    biotune_optuna.cli``) with ``arguments``."""
    return [sys.executable, "-m", __package__, *arguments]


def start_workers(args: argparse.Namespace, spec: StudySpec, n_workers: int) -> None:
    """Run ``n_workers`` worker processes on the spec's study and wait for them.

    Raises:
        RuntimeError: If a worker exits with an error; the study is kept.
    """
    gpus = gpus_for(spec)
    environments = worker_environments(n_workers, gpus=gpus)
    where = (
        ", ".join(
            f"worker {k}: GPU {env['CUDA_VISIBLE_DEVICES']}" for k, env in enumerate(environments)
        )
        if gpus
        else f"CPU, {environments[0].get('OMP_NUM_THREADS', 'inherited')} threads each"
    )
    say(args, f"  {n_workers} workers ({where})")
    commands = [worker_command(worker_arguments(args, k)) for k in range(n_workers)]
    codes = run_workers(commands, environments, say=lambda line: print(line, flush=True))
    failed = {k: code for k, code in enumerate(codes) if code != 0}
    if failed:
        listing = ", ".join(f"worker {k} exited with {code}" for k, code in failed.items())
        raise RuntimeError(f"{listing}; the study is kept, run the same command to resume")
