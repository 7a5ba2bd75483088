"""Sampler overhead benchmark: milliseconds of ask + suggest + tell per trial.

For each sampler (BioTune's two presets, Random, TPE, NSGA-II, CMA-ES) and each storage
(in-memory, SQLite), one study runs up to the largest checkpoint on a cheap objective: 7 floats
``x0..x6`` in ``[0, 1]``, value ``sum((x - 0.3) ** 2)``. Each trial is ``study.ask()``, seven
``trial.suggest_float`` calls and ``study.tell``, timed with :func:`time.perf_counter`. The
figure reported at trial ``T`` is the median per-trial time over the ``--window`` trials ending at
``T`` (trials 951..1000 for ``T=1000`` and a window of 50). The objective costs nothing, so the
numbers are the sampler's and the storage's overhead.

A run that exceeds ``--max-seconds`` stops; the checkpoints it did not reach are reported as
missing (``—``). SQLite runs use a fresh database file in a temporary directory, deleted after.

Results go to stdout (markdown), and to ``sampler_overhead.json`` and ``sampler_overhead.md`` in
``--output-dir`` (default ``benchmarks/results``). Progress goes to stderr.

Run from the repository root, e.g. a quick run::

    .venv/bin/python benchmarks/sampler_overhead.py --checkpoints 100,1000

The default checkpoints are 100, 1000 and 5000; TPE at 5000 trials and SQLite runs are slow, so
the full default run can take a long time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import datetime
import json
import os
from pathlib import Path
import platform
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.samplers import CmaEsSampler
from optuna.samplers import NSGAIISampler
from optuna.samplers import RandomSampler
from optuna.samplers import TPESampler


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "benchmarks" / "results"
N_PARAMS = 7
TARGET = 0.3
MISSING = "—"
TARGETS_NOTE = (
    "targets at trial 1000: BioTune <= 1.5x Random in-memory, <= 1.2x Random on SQLite; "
    "BioTune-plus (24 TPE-ranked candidates per child) <= 1x TPE"
)
#: (numerator, denominator) sampler pairs compared as ratios measured in the same run.
RATIOS = (("biotune", "random"), ("biotune-plus", "tpe"))


def _biotune(seed: int) -> BaseSampler:
    from biotune_optuna import BioTuneSampler

    return BioTuneSampler(seed=seed)


def _biotune_plus(seed: int) -> BaseSampler:
    from biotune_optuna import BioTunePlusSampler

    return BioTunePlusSampler(seed=seed)


SAMPLERS: dict[str, tuple[str, Callable[[int], BaseSampler]]] = {
    "biotune": ("BioTune", _biotune),
    "biotune-plus": ("BioTune-plus", _biotune_plus),
    "random": ("Random", lambda seed: RandomSampler(seed=seed)),
    "tpe": ("TPE", lambda seed: TPESampler(seed=seed)),
    "nsgaii": ("NSGA-II", lambda seed: NSGAIISampler(seed=seed)),
    "cmaes": ("CMA-ES", lambda seed: CmaEsSampler(seed=seed)),
}
STORAGES = ("memory", "sqlite")


@dataclass
class RunResult:
    """Outcome of one (sampler, storage) run."""

    sampler: str
    storage: str
    ms_at: dict[int, float | None] = field(default_factory=dict)
    n_trials: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    error: str | None = None


def parse_csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_checkpoints(text: str) -> list[int]:
    checkpoints = sorted({int(item) for item in parse_csv(text)})
    if not checkpoints or checkpoints[0] < 1:
        raise argparse.ArgumentTypeError(f"checkpoints must be positive ints, got {text!r}")
    return checkpoints


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=parse_checkpoints, default="100,1000,5000")
    parser.add_argument("--samplers", type=parse_csv, default=",".join(SAMPLERS))
    parser.add_argument("--storages", type=parse_csv, default=",".join(STORAGES))
    parser.add_argument("--window", type=int, default=50, help="trials per median window")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="time limit per (sampler, storage) run"
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    args = parser.parse_args(argv)
    for name in args.samplers:
        if name not in SAMPLERS:
            parser.error(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    for name in args.storages:
        if name not in STORAGES:
            parser.error(f"unknown storage {name!r}; choose from {', '.join(STORAGES)}")
    if args.window < 1:
        parser.error("--window must be >= 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_trial(study: optuna.Study) -> float:
    """Ask, suggest the 7 params, tell; return the elapsed seconds."""
    start = time.perf_counter()
    trial = study.ask()
    value = sum((trial.suggest_float(f"x{i}", 0.0, 1.0) - TARGET) ** 2 for i in range(N_PARAMS))
    study.tell(trial, value)
    return time.perf_counter() - start


def window_median_ms(times: Sequence[float], end: int, window: int) -> float:
    """Median in ms of the per-trial times of trials ``end - window + 1 .. end`` (1-based)."""
    chunk = times[max(0, end - window) : end]
    return statistics.median(chunk) * 1000.0


def run_study(
    sampler_name: str, url: str | None, checkpoints: Sequence[int], window: int, limit: float
) -> tuple[list[float], bool]:
    """Run up to the last checkpoint or until ``limit`` seconds; return times and whether cut."""
    sampler = SAMPLERS[sampler_name][1](0)
    study = optuna.create_study(storage=url, sampler=sampler)
    times: list[float] = []
    started = time.perf_counter()
    last = checkpoints[-1]
    for n in range(1, last + 1):
        times.append(run_trial(study))
        if n in checkpoints:
            log(f"    trial {n}: {window_median_ms(times, n, window):.3f} ms/trial")
        if time.perf_counter() - started > limit and n < last:
            log(f"    stopped after {n} trials ({limit:.0f} s limit)")
            return times, True
    return times, False


def benchmark(
    sampler_name: str, storage: str, checkpoints: Sequence[int], window: int, limit: float
) -> RunResult:
    result = RunResult(sampler=sampler_name, storage=storage)
    log(f"{SAMPLERS[sampler_name][0]} / {storage}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sampler_overhead_") as tmpdir:
        url = f"sqlite:///{Path(tmpdir) / 'x.db'}" if storage == "sqlite" else None
        try:
            times, result.stopped_early = run_study(sampler_name, url, checkpoints, window, limit)
        except Exception as exc:  # report and carry on with the other runs
            log(f"    error: {type(exc).__name__}: {exc}")
            result.error = f"{type(exc).__name__}: {exc}"
            times = []
    result.seconds = time.perf_counter() - started
    result.n_trials = len(times)
    for cp in checkpoints:
        ok = len(times) >= cp
        result.ms_at[cp] = window_median_ms(times, cp, window) if ok else None
    return result


def fmt_ms(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def fmt_ratio(num: float | None, den: float | None) -> str:
    return MISSING if num is None or den is None or den == 0 else f"{num / den:.2f}x"


def results_table(results: Sequence[RunResult], checkpoints: Sequence[int]) -> list[str]:
    header = ["Sampler", "Storage", *(f"ms/trial @ {cp}" for cp in checkpoints)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [SAMPLERS[r.sampler][0], r.storage, *(fmt_ms(r.ms_at[cp]) for cp in checkpoints)]
        if r.error:
            cells[1] += f" (error: {r.error})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratio_table(
    results: Sequence[RunResult], checkpoints: Sequence[int], pair: tuple[str, str]
) -> list[str]:
    by_key = {(r.sampler, r.storage): r for r in results}
    num_name, den_name = (SAMPLERS[name][0] for name in pair)
    storages = [s for s in STORAGES if (pair[0], s) in by_key and (pair[1], s) in by_key]
    if not storages:
        return []
    header = ["Storage", *(f"{num_name}/{den_name} @ {cp}" for cp in checkpoints)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in storages:
        num, den = by_key[(pair[0], s)], by_key[(pair[1], s)]
        cells = [s, *(fmt_ratio(num.ms_at[cp], den.ms_at[cp]) for cp in checkpoints)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratios(
    results: Sequence[RunResult], checkpoints: Sequence[int], pair: tuple[str, str]
) -> dict[str, dict]:
    by_key = {(r.sampler, r.storage): r for r in results}
    out: dict[str, dict] = {}
    for s in STORAGES:
        num_run, den_run = by_key.get((pair[0], s)), by_key.get((pair[1], s))
        if num_run is None or den_run is None:
            continue
        out[s] = {}
        for cp in checkpoints:
            num, den = num_run.ms_at[cp], den_run.ms_at[cp]
            out[s][str(cp)] = None if num is None or den is None or den == 0 else num / den
    return out


def _in_repo(path: str) -> str:
    """``path`` relative to the repository when it lies inside it (``.venv/bin/python``), so a
    published table names no machine's directories; symlinks are kept, not resolved."""
    try:
        return str(Path(path).absolute().relative_to(REPO_ROOT))
    except ValueError:
        return path


def environment() -> dict[str, object]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "optuna": optuna.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "executable": _in_repo(sys.executable),
        "command": list(sys.argv),
    }


def markdown(
    results: Sequence[RunResult], args: argparse.Namespace, env: dict[str, object]
) -> str:
    lines = [
        "# Sampler overhead: ms per trial (ask + 7 x suggest_float + tell)",
        "",
        f"Median over the {args.window} trials ending at each checkpoint; {MISSING}: not reached.",
        "",
        *results_table(results, args.checkpoints),
        "",
    ]
    for pair in RATIOS:
        ratio_lines = ratio_table(results, args.checkpoints, pair)
        if ratio_lines:
            names = " ÷ ".join(SAMPLERS[name][0] for name in pair)
            lines += [f"{names} (same run):", "", *ratio_lines, ""]
    lines += [f"Note: {TARGETS_NOTE}.", ""]
    lines += [f"- {key}: `{value}`" for key, value in env.items() if key != "command"]
    lines += [f"- command: `{' '.join(sys.argv)}`", ""]
    return "\n".join(lines)


def to_json(
    results: Sequence[RunResult], args: argparse.Namespace, env: dict[str, object]
) -> dict[str, object]:
    return {
        **env,
        "note": TARGETS_NOTE,
        "checkpoints": args.checkpoints,
        "window": args.window,
        "max_seconds": args.max_seconds,
        "results": [
            {
                "sampler": r.sampler,
                "storage": r.storage,
                "ms_per_trial": {str(cp): r.ms_at[cp] for cp in args.checkpoints},
                "n_trials": r.n_trials,
                "seconds": round(r.seconds, 3),
                "stopped_early": r.stopped_early,
                "error": r.error,
            }
            for r in results
        ],
        **{
            f"{num.replace('-', '_')}_over_{den}": ratios(results, args.checkpoints, (num, den))
            for num, den in RATIOS
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    env = environment()
    results = [
        benchmark(sampler, storage, args.checkpoints, args.window, args.max_seconds)
        for sampler in args.samplers
        for storage in args.storages
    ]
    text = markdown(results, args, env)
    print(text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "sampler_overhead.md").write_text(text, encoding="utf-8")
    payload = json.dumps(to_json(results, args, env), indent=2, ensure_ascii=False)
    (args.output_dir / "sampler_overhead.json").write_text(payload + "\n", encoding="utf-8")
    log(f"wrote {args.output_dir / 'sampler_overhead.md'} and sampler_overhead.json")


if __name__ == "__main__":
    main()
