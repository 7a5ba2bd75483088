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

With ``--interleave`` the studies run side by side in one process: trial ``n`` of every
(sampler, storage) study runs before trial ``n + 1`` of any (in a rotating order), so a machine
that other work slows down slows every sampler alike and the ratios stay comparable. Each ratio
(the medians' quotient) comes with a 95 % bootstrap interval over the two windows' trials
(``--bootstrap`` resamples, seed 0). The JSON keeps every window's per-trial times, so
``report`` rewrites the markdown from it.

Run from the repository root, e.g. a quick run::

    .venv/bin/python benchmarks/sampler_overhead.py --checkpoints 100,1000

BioTune-plus and BioTune against TPE at trial 1000, interleaved, in memory and on SQLite::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sampler_overhead.py --interleave \
        --samplers biotune,biotune-plus,random,tpe --checkpoints 100,1000 \
        --output-dir benchmarks/results/sampler_overhead_interleaved
    .venv/bin/python benchmarks/sampler_overhead.py report \
        --output-dir benchmarks/results/sampler_overhead_interleaved

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
    "BioTune-plus (48 candidates per child: 24 bred, 24 drawn from TPE's estimator, ranked "
    "by the plan GP) <= 1x TPE"
)
#: (numerator, denominator) sampler pairs compared as ratios measured in the same run.
RATIOS = (("biotune", "random"), ("biotune-plus", "tpe"), ("biotune", "tpe"))
BOOTSTRAP_SEED = 0
MEDIAN_NOTE = (
    "A BioTune generation mixes cheap trials (elites' exploitation, no model) with costly ones "
    "(offspring, ranked by the model), so a window's times have two modes and the median's "
    "interval can be wide; the mean is the cost per ask averaged over the window."
)


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
    window_ms: dict[int, list[float]] = field(default_factory=dict)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        report = argparse.ArgumentParser(description="rewrite the markdown from the JSON")
        report.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
        args = report.parse_args(argv[1:])
        args.command = "report"
        return args
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=parse_checkpoints, default="100,1000,5000")
    parser.add_argument("--samplers", type=parse_csv, default=",".join(SAMPLERS))
    parser.add_argument("--storages", type=parse_csv, default=",".join(STORAGES))
    parser.add_argument("--window", type=int, default=50, help="trials per median window")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="time limit per (sampler, storage) run"
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="run all studies side by side, trial by trial (--max-seconds: the whole run)",
    )
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples per interval")
    args = parser.parse_args(argv)
    args.command = "run"
    for name in args.samplers:
        if name not in SAMPLERS:
            parser.error(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    for name in args.storages:
        if name not in STORAGES:
            parser.error(f"unknown storage {name!r}; choose from {', '.join(STORAGES)}")
    if args.window < 1:
        parser.error("--window must be >= 1")
    if args.bootstrap < 1:
        parser.error("--bootstrap must be >= 1")
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
    record_times(result, times, checkpoints, window)
    return result


def record_times(
    result: RunResult, times: Sequence[float], checkpoints: Sequence[int], window: int
) -> None:
    """Store the run's trial count, window medians and window times (ms) at each checkpoint."""
    result.n_trials = len(times)
    for cp in checkpoints:
        ok = len(times) >= cp
        result.ms_at[cp] = window_median_ms(times, cp, window) if ok else None
        if ok:
            result.window_ms[cp] = [t * 1000.0 for t in times[max(0, cp - window) : cp]]


def benchmark_interleaved(
    pairs: Sequence[tuple[str, str]], checkpoints: Sequence[int], window: int, limit: float
) -> list[RunResult]:
    """Run one study per (sampler, storage), trial by trial in a rotating order, in one process."""
    results = {pair: RunResult(sampler=pair[0], storage=pair[1]) for pair in pairs}
    times: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    last, started = checkpoints[-1], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sampler_overhead_") as tmpdir:
        studies = {}
        for k, (name, storage) in enumerate(pairs):
            url = f"sqlite:///{Path(tmpdir) / f'x{k}.db'}" if storage == "sqlite" else None
            studies[(name, storage)] = optuna.create_study(
                storage=url, sampler=SAMPLERS[name][1](0)
            )
        for n in range(1, last + 1):
            live = [p for p in pairs if results[p].error is None]
            for pair in live[n % len(live) :] + live[: n % len(live)] if live else []:
                try:
                    times[pair].append(run_trial(studies[pair]))
                except Exception as exc:  # report and carry on with the other studies
                    results[pair].error = f"{type(exc).__name__}: {exc}"
                    log(f"    {pair[0]} / {pair[1]}: error: {results[pair].error}")
            if n in checkpoints:
                log(f"trial {n}: " + ", ".join(_progress(p, times[p], n, window) for p in live))
            if time.perf_counter() - started > limit and n < last:
                log(f"    stopped after {n} trials ({limit:.0f} s limit)")
                for pair in pairs:
                    results[pair].stopped_early = True
                break
    for pair in pairs:
        results[pair].seconds = sum(times[pair])
        record_times(results[pair], times[pair], checkpoints, window)
    return [results[pair] for pair in pairs]


def _progress(pair: tuple[str, str], times: Sequence[float], n: int, window: int) -> str:
    return f"{pair[0]}/{pair[1]} {window_median_ms(times, n, window):.3f} ms"


def fmt_ms(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def fmt_ratio(entry: dict[str, float] | None) -> str:
    if entry is None:
        return MISSING
    if entry.get("low") is None:
        return f"{entry['ratio']:.2f}x"
    return (
        f"{entry['ratio']:.2f}x [{entry['low']:.2f}, {entry['high']:.2f}] "
        f"(mean {entry['mean_ratio']:.2f}x [{entry['mean_low']:.2f}, {entry['mean_high']:.2f}])"
    )


def ratio_interval(
    num: Sequence[float], den: Sequence[float], resamples: int, statistic: Callable = np.median
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of statistic(num) / statistic(den) (the median by
    default), each window resampled."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    top = statistic(a[rng.integers(len(a), size=(resamples, len(a)))], axis=1)
    bottom = statistic(b[rng.integers(len(b), size=(resamples, len(b)))], axis=1)
    low, high = np.quantile(top / bottom, [0.025, 0.975])
    return float(low), float(high)


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
    results: Sequence[RunResult], checkpoints: Sequence[int], pair: tuple[str, str], resamples: int
) -> list[str]:
    found = ratios(results, checkpoints, pair, resamples)
    if not found:
        return []
    num_name, den_name = (SAMPLERS[name][0] for name in pair)
    header = ["Storage", *(f"{num_name}/{den_name} @ {cp}" for cp in checkpoints)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s, by_cp in found.items():
        lines.append(
            "| " + " | ".join([s, *(fmt_ratio(by_cp[str(cp)]) for cp in checkpoints)]) + " |"
        )
    return lines


def ratios(
    results: Sequence[RunResult], checkpoints: Sequence[int], pair: tuple[str, str], resamples: int
) -> dict[str, dict[str, dict[str, float] | None]]:
    """Per storage and checkpoint: the ratio of the window medians and its bootstrap interval
    (``low``/``high`` are None when the window times were not kept)."""
    by_key = {(r.sampler, r.storage): r for r in results}
    out: dict[str, dict[str, dict[str, float] | None]] = {}
    for s in STORAGES:
        num_run, den_run = by_key.get((pair[0], s)), by_key.get((pair[1], s))
        if num_run is None or den_run is None:
            continue
        out[s] = {}
        for cp in checkpoints:
            num, den = num_run.ms_at[cp], den_run.ms_at[cp]
            if num is None or den is None or den == 0:
                out[s][str(cp)] = None
                continue
            entry: dict[str, float | None] = {"ratio": num / den, "low": None, "high": None}
            if cp in num_run.window_ms and cp in den_run.window_ms:
                top, bottom = num_run.window_ms[cp], den_run.window_ms[cp]
                entry["low"], entry["high"] = ratio_interval(top, bottom, resamples)
                entry["mean_ratio"] = statistics.mean(top) / statistics.mean(bottom)
                entry["mean_low"], entry["mean_high"] = ratio_interval(
                    top, bottom, resamples, np.mean
                )
            out[s][str(cp)] = entry  # type: ignore[assignment]
    return out


def _in_repo(path: str) -> str:
    """``path`` relative to the repository when it lies inside it (``.venv/bin/python``), so a
    published table names no machine's directories; symlinks are kept, not resolved."""
    try:
        return str(Path(path).absolute().relative_to(REPO_ROOT))
    except ValueError:
        return path


def _published(executable: str) -> str:
    """The interpreter as a report shows it: from its virtual environment's ``.venv`` on (so
    a page regenerated from an older JSON, which recorded the absolute path, names no
    machine's directories), else relative to the repository as :func:`_in_repo` gives it."""
    parts = Path(executable).parts
    if ".venv" in parts:
        return str(Path(*parts[parts.index(".venv") :]))
    return _in_repo(executable)


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
    results: Sequence[RunResult],
    checkpoints: Sequence[int],
    window: int,
    resamples: int,
    env: dict[str, object],
    interleaved: bool,
) -> str:
    lines = [
        "# Sampler overhead: ms per trial (ask + 7 x suggest_float + tell)",
        "",
        f"Median over the {window} trials ending at each checkpoint; {MISSING}: not reached.",
        "All studies ran side by side, trial by trial, in one process (`--interleave`)."
        if interleaved
        else "Each study ran on its own, one after the other.",
        "",
        *results_table(results, checkpoints),
        "",
    ]
    for pair in RATIOS:
        ratio_lines = ratio_table(results, checkpoints, pair, resamples)
        if ratio_lines:
            names = " ÷ ".join(SAMPLERS[name][0] for name in pair)
            lines += [
                f"{names} (same run; ratio of the medians and of the means, 95 % bootstrap "
                f"intervals over the window's trials, {resamples} resamples):",
                "",
                *ratio_lines,
                "",
            ]
    lines += [f"Note: {TARGETS_NOTE}.", "", MEDIAN_NOTE, ""]
    shown = {**env, "executable": _published(str(env.get("executable", "")))}
    lines += [f"- {key}: `{value}`" for key, value in shown.items() if key != "command"]
    lines += [f"- command: `{' '.join(str(c) for c in env.get('command') or [])}`", ""]
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
        "bootstrap": args.bootstrap,
        "interleave": args.interleave,
        "results": [
            {
                "sampler": r.sampler,
                "storage": r.storage,
                "ms_per_trial": {str(cp): r.ms_at[cp] for cp in args.checkpoints},
                "window_ms": {str(cp): times for cp, times in r.window_ms.items()},
                "n_trials": r.n_trials,
                "seconds": round(r.seconds, 3),
                "stopped_early": r.stopped_early,
                "error": r.error,
            }
            for r in results
        ],
        **{
            f"{num.replace('-', '_')}_over_{den}": ratios(
                results, args.checkpoints, (num, den), args.bootstrap
            )
            for num, den in RATIOS
        },
    }


def from_json(data: dict[str, object]) -> list[RunResult]:
    """The runs of a written JSON (window times where it kept them)."""
    return [
        RunResult(
            sampler=r["sampler"],
            storage=r["storage"],
            ms_at={int(cp): ms for cp, ms in r["ms_per_trial"].items()},
            window_ms={int(cp): times for cp, times in (r.get("window_ms") or {}).items()},
            n_trials=r["n_trials"],
            seconds=r["seconds"],
            stopped_early=r["stopped_early"],
            error=r["error"],
        )
        for r in data["results"]  # type: ignore[union-attr]
    ]


ENV_KEYS = ("date", "python", "optuna", "numpy", "platform", "cpu_count", "executable", "command")


def write_markdown(output_dir: Path, data: dict[str, object]) -> str:
    """Write ``sampler_overhead.md`` from the JSON's data; return its text."""
    env = {key: data[key] for key in ENV_KEYS if key in data}
    text = markdown(
        from_json(data),
        data["checkpoints"],  # type: ignore[arg-type]
        int(data["window"]),  # type: ignore[arg-type]
        int(data.get("bootstrap", 2000)),  # type: ignore[arg-type]
        env,
        bool(data.get("interleave", False)),
    )
    (output_dir / "sampler_overhead.md").write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "report":
        path = args.output_dir / "sampler_overhead.json"
        print(write_markdown(args.output_dir, json.loads(path.read_text(encoding="utf-8"))))
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    env = environment()
    if args.interleave:
        pairs = [(sampler, storage) for sampler in args.samplers for storage in args.storages]
        results = benchmark_interleaved(pairs, args.checkpoints, args.window, args.max_seconds)
    else:
        results = [
            benchmark(sampler, storage, args.checkpoints, args.window, args.max_seconds)
            for sampler in args.samplers
            for storage in args.storages
        ]
    data = to_json(results, args, env)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, indent=2, ensure_ascii=False)
    (args.output_dir / "sampler_overhead.json").write_text(payload + "\n", encoding="utf-8")
    print(write_markdown(args.output_dir, json.loads(payload)))
    log(f"wrote {args.output_dir / 'sampler_overhead.md'} and sampler_overhead.json")


if __name__ == "__main__":
    main()
