"""Sampler race on the recorded plan tables: ≥ 30 seeds per cell, judged by the test accuracy
a user would get.

Every entry of :func:`biotune_optuna.studies._race.race_entries` (both BioTune presets, random,
qmc, tpe, cmaes, gp, nsgaii, and ``biotune-plus + SH``, ``tpe + SH``, ``random + Hyperband``)
runs one replayed study per table and seed (:func:`~biotune_optuna.studies._race.race_study`:
``--trials`` trials, in-memory storage, the sampler seeded with the study's seed). A study is
scored by the **recorded test accuracy** of the plan
:func:`~biotune_optuna.studies.recommend` picks after 25, 50 and 140 trials (the mean test
accuracy of the plan's recorded
runs: each run's best-validation weights scored once on the untouched test split), and by the
anytime curve of that score against the cumulative epochs of all its trials, pruned ones
included (a point every ``--every`` trials).

Tasks are split into **dev** and **test** (:data:`TASK_SPLIT`): presets and options may be
tuned on dev tables only; the README quotes the test tables. A table not named there is dev.

Statistics (:mod:`biotune_optuna.studies._race_statistics`): blocks are (table, seed) pairs;
mean ranks with 95 % bootstrap intervals, a Friedman test, Wilcoxon signed-rank tests of each
BioTune preset against every other entry with Holm's correction, a critical-difference figure.
Compute: the *level* of a table is the paper preset's (``biotune``) mean score after the full
``--trials``; each study's epochs to the level are the cumulative epochs at its first curve
point at or above it; reported as two ratios, against the paper protocol's full budget
(``trials × max_epochs``) and against the paper preset's own median epochs to the level.

Run from the repository root; ``run`` resumes where it stopped (every finished study is saved),
``report`` regenerates the markdown and figures byte for byte from the JSON::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/table_race.py run --jobs 2
    .venv/bin/python benchmarks/table_race.py report
"""

from __future__ import annotations

import argparse
import collections
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
import importlib.metadata
import json
import math
import multiprocessing
from pathlib import Path
import platform
import subprocess
import sys
import time
from typing import Any
import warnings

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clone
    sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:  # its sibling modules, also when loaded by path
    sys.path.insert(0, str(ROOT / "benchmarks"))

from _results import save_json  # noqa: E402
import _sampler_advice as advice  # noqa: E402

from biotune_optuna.studies import _race_statistics as stats  # noqa: E402
from biotune_optuna.studies._plan_table import PlanTable  # noqa: E402
from biotune_optuna.studies._race import BUDGETS  # noqa: E402
from biotune_optuna.studies._race import race_entries  # noqa: E402
from biotune_optuna.studies._race import race_study  # noqa: E402
from biotune_optuna.studies._race import RaceEntry  # noqa: E402
from biotune_optuna.studies._race import score_at  # noqa: E402
from biotune_optuna.studies._race import score_at_epochs  # noqa: E402


#: Which tables presets may be tuned on (dev) and which the README quotes (test).
TASK_SPLIT = {"digits-contrast": "dev", "textures": "test", "digits-noise": "test"}
#: The entries every other one is tested against.
REFERENCES = ("biotune", "biotune-plus")
TABLES = Path("benchmarks/tables")
#: The entries of a race on a table of ``max_epochs`` epochs, by key.
EntriesOf = Callable[[int], Mapping[str, RaceEntry]]
OUTPUT = Path("benchmarks/results/table_race.json")
FORMAT = 1


def split_of(table: str) -> str:
    """``"dev"`` or ``"test"``."""
    return TASK_SPLIT.get(table, "dev")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def library_versions(*extra: str) -> dict[str, Any]:
    """Python, the packages a race depends on (and ``extra`` ones), and the library's commit
    (``+changes`` when ``biotune_optuna/`` has uncommitted edits)."""
    versions: dict[str, Any] = {"python": platform.python_version()}
    for package in (*extra, "optuna", "numpy", "scipy", "biotune_optuna"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "biotune_optuna"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    versions["commit"] = (commit + ("+changes" if dirty else "")) or None
    return versions


# ------------------------------------------------------------------------------------------
# run


def _table_info(path: Path, table: PlanTable) -> dict[str, Any]:
    return {
        "file": _relative(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
        "split": split_of(path.name.removesuffix(".json.gz")),
        "max_epochs": table.max_epochs,
        "plans": len(table.plans),
        "task": table.task,
        "recorded_with": table.recorded_with,
    }


def _summary(record: Mapping[str, Any], version: int) -> dict[str, Any]:
    """What the JSON keeps of a study: the curve, and counts instead of every trial."""
    trials = record["trials"]
    return {
        "seed": record["seed"],
        "seconds": record["seconds"],
        "curve": record["curve"],
        "pruned": sum(1 for t in trials if t[2] == "pruned"),
        "failed": sum(1 for t in trials if t[2] == "fail"),
        "distinct_plans": len({t[0] for t in trials}),
        "v": version,
    }


def _unit(unit: tuple[str, str, dict[str, Any], int, argparse.Namespace]) -> tuple[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    key, table_path, entry, seed, args = unit
    record = race_study(
        _load_table(table_path),
        RaceEntry(**entry),
        seed=seed,
        n_trials=args.trials,
        budgets=args.budgets,
        every=args.every,
    )
    return key, record


_TABLE_CACHE: dict[str, PlanTable] = {}


def _load_table(path: str) -> PlanTable:
    if path not in _TABLE_CACHE:
        _TABLE_CACHE[path] = PlanTable.load(path)
    return _TABLE_CACHE[path]


def _pending(
    args: argparse.Namespace, data: dict[str, Any], entries_of: EntriesOf = race_entries
) -> list[tuple[Any, ...]]:
    """The units still to run, after registering the tables and entries in ``data``."""
    units = []
    for path in args.tables:
        name = path.name.removesuffix(".json.gz")
        table = _load_table(str(path))
        info = _table_info(path, table)
        known = data["tables"].get(name)
        if known is not None and known["sha256"] != info["sha256"]:
            sys.exit(f"{path}: another table than the one raced as {name!r}; move the JSON away")
        data["tables"][name] = info
        entries = entries_of(table.max_epochs)
        for key in args.entries or list(entries):
            entry = entries[key]._asdict()
            entry["pruner_options"] = dict(entry["pruner_options"])
            entry["sampler_options"] = dict(entry["sampler_options"])
            data["entries"][f"{name}/{key}"] = entry
            for seed in range(args.seeds):
                unit = f"{name}/{key}/{seed}"
                if unit not in data["studies"]:
                    units.append((unit, str(path), entry, seed, args))
    return units


def _command(args: argparse.Namespace) -> str:
    """The command line of this run, with paths relative to the repository."""
    words = ["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/table_race.py", "run"]
    default = sorted((ROOT / TABLES).glob("*.json.gz"))
    if sorted(p.resolve() for p in args.tables) != default:
        words += ["--tables", *(_relative(p) for p in args.tables)]
    if args.entries:
        words += ["--entries", *args.entries]
    words += ["--seeds", str(args.seeds), "--trials", str(args.trials), "--every", str(args.every)]
    words += ["--budgets", *map(str, args.budgets), "--jobs", str(args.jobs)]
    if args.output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--output", _relative(args.output)]
    return " ".join(words)


def _commands(data: dict[str, Any]) -> list[str]:
    """The run commands that made the race (older JSON files hold only the last one)."""
    return data.get("commands") or [data["command"]]


def run(
    args: argparse.Namespace,
    *,
    entries_of: EntriesOf = race_entries,
    command: Callable[[argparse.Namespace], str] | None = None,
) -> int:
    """Run (or continue) the race into ``args.output``: the entries ``entries_of(max_epochs)``
    gives (default: every sampler of the registry), recording the run's ``command(args)``."""
    command = command or _command
    data: dict[str, Any] = {"format": FORMAT, "tables": {}, "entries": {}, "studies": {}}
    if args.output.exists():
        data = json.loads(args.output.read_text())
    settings = {"trials": args.trials, "every": args.every, "budgets": args.budgets}
    if data.setdefault("settings", settings) != settings:
        sys.exit(f"{args.output}: raced with {data['settings']}, not {settings}")
    commands = data.setdefault("commands", [data.pop("command")] if "command" in data else [])
    if command(args) not in commands:  # every run that added studies, in order
        commands.append(command(args))
    data.pop("command", None)
    data.setdefault("versions", [])
    here = library_versions()
    if here not in data["versions"]:
        data["versions"].append(here)
    version = data["versions"].index(here)
    units = _pending(args, data, entries_of)
    run_units(units, _unit, lambda record: _summary(record, version), data, args)
    return 0


def run_units(
    units: Sequence[tuple[Any, ...]],
    unit: Callable[[Any], tuple[str, Any]],
    keep: Callable[[Any], Any],
    data: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    """Run the studies ``units`` (``unit(u)`` gives ``(key, record)``) on ``args.jobs``
    processes, storing ``keep(record)`` under ``data["studies"][key]`` and saving the JSON to
    ``args.output`` every 30 s and at the end, so a stopped run resumes where it stopped."""
    print(f"{len(units)} studies to run, {len(data['studies'])} stored", flush=True)
    start, last_save = time.time(), time.time()
    pool = multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else None
    results = pool.imap_unordered(unit, units) if pool else map(unit, units)
    try:
        for done, (key, record) in enumerate(results, start=1):
            data["studies"][key] = keep(record)
            if time.time() - last_save > 30 or done == len(units):
                save_json(data, args.output)
                last_save = time.time()
                rate = (time.time() - start) / done
                print(f"{done}/{len(units)} ({rate:.1f} s each)", flush=True)
    finally:
        if pool is not None:
            pool.terminate()
        save_json(data, args.output)


# ------------------------------------------------------------------------------------------
# report


def _cells(data: Mapping[str, Any], tables: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{entry: {(table, seed): study}}`` over the entries raced on every one of ``tables``."""
    cells: dict[str, dict[Any, Any]] = {}
    for key, study in data["studies"].items():
        table, entry, seed = key.split("/")
        if table in tables:
            cells.setdefault(entry, {})[(table, int(seed))] = study
    blocks = set.intersection(*(set(c) for c in cells.values())) if cells else set()
    return {e: {b: c[b] for b in sorted(blocks)} for e, c in cells.items()}


def _scores(cells: Mapping[str, Mapping[Any, Any]], budget: int) -> dict[str, list[float]]:
    return {e: [score_at(s, budget) or 0.0 for s in c.values()] for e, c in cells.items()}


def _label(data: Mapping[str, Any], entry: str) -> str:
    for key, value in data["entries"].items():
        if key.endswith(f"/{entry}"):
            return value["label"]
    return entry


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _mean_ci(values: Sequence[float], seed: int = 0) -> str:
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(2000, len(arr)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return f"{arr.mean():.3f} [{low:.3f}, {high:.3f}]"


def _budgets(data: Mapping[str, Any]) -> list[int]:
    trials = data["settings"]["trials"]
    return [b for b in data["settings"]["budgets"] if b <= trials]


def rank_section(
    data: Mapping[str, Any],
    tables: Sequence[str],
    title: str,
    references: Sequence[str] = REFERENCES,
) -> list[str]:
    """Mean ranks, scores, Friedman and Wilcoxon–Holm (each of ``references`` against every
    other entry) at every budget, over ``tables``."""
    cells = _cells(data, tables)
    if len(cells) < 2:
        return []
    n_blocks = len(next(iter(cells.values())))
    lines = [f"## {title}: {', '.join(tables)} ({n_blocks} blocks = table × seed)", ""]
    for budget in _budgets(data):
        scores = _scores(cells, budget)
        ranks = stats.mean_ranks(scores)
        intervals = stats.bootstrap_mean_ranks(scores)
        chi2, p = stats.friedman(scores)
        lines += [f"### After {budget} trials", "", f"Friedman χ² = {chi2:.2f}, p = {p:.2g}.", ""]
        rows = [
            [
                _label(data, e),
                f"{ranks[e]:.2f} [{intervals[e][0]:.2f}, {intervals[e][1]:.2f}]",
                _mean_ci(scores[e]),
            ]
            for e in sorted(ranks, key=lambda e: (ranks[e], e))
        ]
        lines.append(
            _markdown(["entry", "mean rank [95 % CI]", "test accuracy, mean [95 % CI]"], rows)
        )
        for reference in references:
            if reference in scores:
                lines += _pair_lines(data, scores, reference)
    return lines


def _pair_lines(data: Mapping[str, Any], scores: Mapping[str, Any], reference: str) -> list[str]:
    tests = stats.wilcoxon_holm(scores, reference)
    rows = [
        [
            _label(data, t.method),
            f"{t.wins}/{t.ties}/{t.losses}",
            f"{t.median_difference:+.3f}",
            f"{t.p:.2g}",
            f"{t.p_holm:.2g}",
            ("**better**" if t.wins > t.losses else "**worse**")
            if t.p_holm < 0.05
            else "not significantly different",
        ]
        for t in sorted(tests, key=lambda t: t.p_holm)
    ]
    header = [
        "against",
        "wins/ties/losses",
        "median diff.",
        "p",
        "p (Holm)",
        f"`{_label(data, reference)}` is (α = 0.05)",
    ]
    return [
        f"`{_label(data, reference)}` against each other entry (Wilcoxon signed-rank):",
        "",
        _markdown(header, rows),
    ]


def cd_figure(data: Mapping[str, Any], tables: Sequence[str], budget: int, path: Path) -> str:
    cells = _cells(data, tables)
    scores = _scores(cells, budget)
    labels = {e: _label(data, e) for e in scores}
    ranks = {labels[e]: r for e, r in stats.mean_ranks(scores).items()}
    n = len(next(iter(cells.values())))
    title = (
        f"{', '.join(tables)}: mean rank of the recommended plan's test accuracy after "
        f"{budget} trials ({n} blocks); a bar joins entries not significantly apart "
        "(Wilcoxon–Holm, α = 0.05)"
    )
    apart = {frozenset(labels[e] for e in pair) for pair in stats.significant_pairs(scores)}
    stats.save_cd_figure(ranks, apart, path, title=title)
    return f"![critical difference]({path.name})\n"


def _full_budget(data: Mapping[str, Any], table: str) -> float:
    return float(data["settings"]["trials"] * data["tables"][table]["max_epochs"])


def anytime_figure(data: Mapping[str, Any], table: str, path: Path) -> str:
    """Mean recorded test accuracy of the recommendation against cumulative epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _cells(data, [table])
    full = _full_budget(data, table)
    grid = np.linspace(0.02, 1.0, 50) * full
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for entry in sorted(cells):
        curves = np.array([[score_at_epochs(s, e) for e in grid] for s in cells[entry].values()])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no point yet at that budget
            mean = np.nanmean(curves, axis=0)
        style = "-" if entry.startswith("biotune") else "--"
        ax.plot(grid, mean, style, label=_label(data, entry), linewidth=1.4)
    ax.set_xlabel(f"cumulative epochs (paper protocol's full budget: {full:.0f})")
    ax.set_ylabel("recorded test accuracy of the recommended plan")
    ax.set_title(f"{table}: mean over {len(next(iter(cells.values())))} seeds", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    plt.rcParams["svg.hashsalt"] = "biotune-optuna"
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return f"![anytime curves on {table}]({path.name})\n"


def _epochs_to(study: Mapping[str, Any], level: float) -> float:
    for _, spent, _, test in study["curve"]:
        if test is not None and test >= level - 1e-9:
            return float(spent)
    return math.inf


def _median_ratio(top: Sequence[float], bottom: Sequence[float], seed: int = 0) -> str:
    """``median(top) / median(bottom)`` with a 95 % bootstrap interval (seeds resampled)."""
    top_a, bottom_a = np.asarray(top, dtype=float), np.asarray(bottom, dtype=float)
    with np.errstate(all="ignore"):
        point = np.median(top_a) / np.median(bottom_a)
        if not np.isfinite(point) or point == 0:
            return "— (median not reached)"
        rng = np.random.default_rng(seed)
        ratios = np.array(
            [
                np.median(top_a[rng.integers(0, len(top_a), len(top_a))])
                / np.median(bottom_a[rng.integers(0, len(bottom_a), len(bottom_a))])
                for _ in range(2000)
            ]
        )
    ratios = np.where(np.isnan(ratios), 0.0, ratios)  # inf/inf: neither reached it
    low, high = np.percentile(ratios, [2.5, 97.5], method="lower")
    text = [f"{x:.2f}" if np.isfinite(x) else "∞" for x in (low, high)]
    return f"{point:.2f}× [{text[0]}, {text[1]}]"


def compute_section(data: Mapping[str, Any], table: str) -> list[str]:
    """Epochs to the paper protocol's level, as the two ratios."""
    cells = _cells(data, [table])
    if "biotune" not in cells:
        return []
    trials = data["settings"]["trials"]
    level = float(np.mean([score_at(s, trials) or 0.0 for s in cells["biotune"].values()]))
    full = _full_budget(data, table)
    paper = [_epochs_to(s, level) for s in cells["biotune"].values()]
    rows = []
    for entry in sorted(cells):
        spent = [_epochs_to(s, level) for s in cells[entry].values()]
        reached = sum(1 for e in spent if math.isfinite(e))
        rows.append(
            [
                _label(data, entry),
                f"{reached}/{len(spent)}",
                f"{np.median(spent):.0f}",
                _median_ratio([full] * len(spent), spent),
                _median_ratio(paper, spent),
            ]
        )
    header = ["entry", "seeds reaching", "median epochs", "vs full budget", "vs paper preset"]
    return [
        f"### Compute on {table}: epochs to the paper protocol's level",
        "",
        f"Level: the paper preset's mean recorded test accuracy after {trials} trials, "
        f"{level:.4f}. Epochs to it: the cumulative epochs (pruned trials' included) at the "
        f"first curve point (every {data['settings']['every']} trials) whose recommendation "
        f"reaches it; a seed that never does counts as infinite. Ratios of medians, 95 % "
        f"bootstrap intervals over seeds: the paper protocol's full budget ({full:.0f} epochs) "
        f"over the entry's median, and the paper preset's own median over the entry's.",
        "",
        _markdown(header, rows),
    ]


def _plan_text(table: PlanTable, code: str) -> str:
    return " ".join("–" if c == "0" else f"×{table.levels[int(c) - 1]:g}" for c in code)


def tables_section(data: Mapping[str, Any]) -> list[str]:
    """Each table: its task, cost, noise, and its best plans (which differ between tasks)."""
    lines = ["## The tables", ""]
    rows = []
    for name, info in sorted(data["tables"].items()):
        table = _load_table(str(ROOT / info["file"]))
        fold_gap = [
            abs(a.best - b.best)
            for code in table.plans
            for a, b in [table.runs(code)[:2]]
            if len(table.runs(code)) >= 2
        ]
        sizes = info["task"].get("sizes", {})
        recorded = info["recorded_with"]
        rows.append(
            [
                name,
                info["split"],
                info["task"].get("source") or "?",
                f"{sizes.get('train', '?')}/{sizes.get('val', '?')}/{sizes.get('test', '?')}",
                f"{info['plans']} × {len(table.runs(next(iter(table.plans))))} runs × "
                f"{table.max_epochs} epochs",
                f"{recorded.get('cpu_seconds', 0) / 3600:.1f} h CPU ({recorded.get('threads')} "
                f"thread(s)/worker), {recorded.get('wall_seconds', 0) / 3600:.1f} h of runs",
                f"{np.median(fold_gap):.3f}",
            ]
        )
    header = [
        "table",
        "split",
        "data",
        "train/val/test images",
        "grid",
        "recording",
        "median |fold 0 − fold 1| val",
    ]
    lines.append(_markdown(header, rows))
    for name, info in sorted(data["tables"].items()):
        lines += _best_plans(name, _load_table(str(ROOT / info["file"])))
    return lines


def _best_plans(name: str, table: PlanTable) -> list[str]:
    by_value = sorted(table.plans, key=lambda c: (-table.expected_value(c), c))
    head_only = "0" * (len(table.blocks) - 1)
    marks = {
        **{c: f"top {i + 1} by validation" for i, c in enumerate(by_value[:5])},
        **{head_only + str(k + 1): f"head only ×{lv:g}" for k, lv in enumerate(table.levels)},
        "2" * len(table.blocks): "everything ×1",
    }
    rows = [
        [
            why,
            _plan_text(table, code),
            f"{table.expected_value(code):.3f}",
            f"{table.test_accuracy(code):.3f}",
        ]
        for code, why in marks.items()
    ]
    ranked = sorted(table.plans, key=lambda c: -table.test_accuracy(c))
    return [
        f"**{name}** — blocks: {', '.join(table.blocks)} (– frozen, ×m trained at m × base lr "
        f"{table.base_lr:g}); best test accuracy of any plan {table.test_accuracy(ranked[0]):.3f}"
        " (an oracle no study can know).",
        "",
        _markdown(["plan", " ".join(table.blocks), "mean best val", "test"], rows),
    ]


def report(data: Mapping[str, Any], output: Path) -> str:
    """The markdown report (and its figures beside ``output``)."""
    test = sorted(t for t, i in data["tables"].items() if i["split"] == "test")
    dev = sorted(t for t, i in data["tables"].items() if i["split"] == "dev")
    trials = data["settings"]["trials"]
    count = collections.Counter(study["v"] for study in data["studies"].values())
    lines = [
        "# Sampler race on the recorded plan tables",
        "",
        f"Regenerate: `.venv/bin/python benchmarks/table_race.py report` (from "
        f"`{_relative(output)}`); the race itself (each run resumes the JSON): "
        + "; ".join(f"`{command}`" for command in _commands(data))
        + ".  ",
        f"{trials} trials per study, a curve point every {data['settings']['every']} trials, "
        f"scores after {', '.join(map(str, data['settings']['budgets']))} trials; each score "
        "is the mean recorded test accuracy of the plan `recommend` picks (validation values "
        "only choose it).  ",
        "Library versions and commits of the studies (each study's `v` in the JSON): "
        + "; ".join(
            f"#{i} ({count[i]} studies) "
            + ", ".join(f"{k} {v}" for k, v in sorted(v.items()) if v)
            for i, v in enumerate(data["versions"])
        )
        + ".",
        "",
    ]
    lines += tables_section(data)
    for split, tables in (("Test tables", test), ("Dev tables", dev)):
        if not tables:
            continue
        lines += rank_section(data, tables, split)
        figure = output.with_name(f"{output.stem}_cd_{split.split()[0].lower()}.svg")
        if len(_cells(data, tables)) > 1:
            lines += [cd_figure(data, tables, trials, figure), ""]
        for table in tables:
            lines += compute_section(data, table)
            figure = output.with_name(f"{output.stem}_anytime_{table}.svg")
            lines += [anytime_figure(data, table, figure), ""]
    return "\n".join(lines).rstrip() + "\n"


def advice_block(data: Mapping[str, Any]) -> str | None:
    """The README's "which sampler" block from the test tables (``None`` without them)."""
    test = sorted(t for t, i in data["tables"].items() if i["split"] == "test")
    cells = _cells(data, test) if test else {}
    if len(cells) < 2:
        return None
    seeds = len({seed for _, seed in next(iter(cells.values()))})
    seconds = {e: float(np.median([s["seconds"] for s in c.values()])) for e, c in cells.items()}
    return advice.advice_block(
        {b: _scores(cells, b) for b in _budgets(data)},
        seconds=seconds,
        label=lambda entry: _label(data, entry),
        tables=test,
        seeds=seeds,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run or continue the race")
    go.add_argument(
        "--tables",
        nargs="+",
        type=Path,
        help="table files (default: every benchmarks/tables/*.json.gz)",
    )
    go.add_argument("--entries", nargs="+", help="entries (default: all of race_entries)")
    go.add_argument("--seeds", type=int, default=30)
    go.add_argument("--trials", type=int, default=max(BUDGETS))
    go.add_argument("--every", type=int, default=5)
    go.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    go.add_argument("--jobs", type=int, default=1)
    go.add_argument("--output", type=Path, default=OUTPUT)
    rep = sub.add_parser("report", help="write the markdown and figures from the JSON")
    rep.add_argument("--input", type=Path, default=OUTPUT)
    rep.add_argument(
        "--readme",
        type=Path,
        help="README whose sampler-advice block to rewrite (default: README.md for the "
        "default --input, none otherwise)",
    )
    args = parser.parse_args(argv)
    if args.command == "run" and not args.tables:
        args.tables = sorted((ROOT / TABLES).glob("*.json.gz"))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "run":
        return run(args)
    write_report(args.input, report)
    readme = args.readme or (ROOT / "README.md" if args.input == OUTPUT else None)
    block = advice_block(json.loads(args.input.read_text()))
    if readme is not None and block is not None and advice.update_readme(readme, block):
        print(f"rewrote the sampler-advice block of {_relative(readme)}")
    return 0


def write_report(path: Path, make: Callable[[Mapping[str, Any], Path], str]) -> int:
    """Write ``make(data, path)`` for the race JSON at ``path`` beside it, as markdown."""
    markdown = make(json.loads(path.read_text()), path)
    path.with_suffix(".md").write_text(markdown)
    print(f"wrote {_relative(path.with_suffix('.md'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
