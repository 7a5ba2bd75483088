"""Budget-aware BioTune against the compute table's methods, at equal epochs, with 1 to 16
simulated workers, on the recorded plan tables.

Every study is an event-driven simulation
(:func:`biotune_optuna.studies._simulation.simulate_study`) of ``W`` asynchronous workers
replaying a plan table until they trained the paper protocol's full budget in epochs (``trials ×
max_epochs`` of the paper: 140 × 8 = 1120 on the 8-epoch tables), each epoch taking the recorded
seconds of its run. Entries (:func:`fidelity_entries`): the methods of
the compute table (``benchmarks/compute_to_quality.py``: the paper preset, ``biotune-plus``,
``tpe``, ``biotune-plus + SH``, ``tpe + SH``, ``random + Hyperband``) and ``biotune-plus +
rungs``, the budget-aware mode (``[pruner] name = "rungs"``: paused plans promoted and continued
from their checkpoints; :mod:`biotune_optuna.samplers._rungs`).

A study is scored, as in ``benchmarks/table_race.py``, by the **recorded test accuracy** of the
plan :func:`~biotune_optuna.studies.recommend` picks (validation values only choose it), along its
anytime curve: a point after every COMPLETE trial (stored where the recommendation changed).
Reported, on the test tables (dev tables separately, for tuning):

* the anytime score at 10, 20, 30, 50 and 100 % of the budget: means with intervals, Friedman,
  and Wilcoxon signed-rank of the budget-aware mode against every other entry, Holm-corrected;
* epochs to the paper protocol's final level (the paper preset's mean score at the full budget,
  one worker), as the two ratios (the full budget over the entry's median; the paper preset's own
  median over the entry's) with bootstrap intervals;
* simulated time to that level with 1, 4 and 16 workers, the speed-up over one worker, the
  workers' idle share, and the score at the full budget with 16 workers against one (what stale
  generations would cost).

Run from the repository root; ``run`` resumes (every finished study is saved), ``report``
regenerates the markdown from the JSON byte for byte::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity_race.py run --jobs 2
    .venv/bin/python benchmarks/fidelity_race.py report
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import table_race as race  # noqa: E402

from biotune_optuna.samplers._rungs import epoch_rungs  # noqa: E402
from biotune_optuna.studies import _race_statistics as stats  # noqa: E402
from biotune_optuna.studies._race import race_entries  # noqa: E402
from biotune_optuna.studies._race import RaceEntry  # noqa: E402
from biotune_optuna.studies._simulation import simulate_study  # noqa: E402


OUTPUT = Path("benchmarks/results/fidelity_race.json")
FORMAT = 1
#: The paper's trials per study (N + G(N + E) = 140): the full budget is this many full trainings.
PAPER_TRIALS = 140
#: The anytime scores reported, as shares of the full budget.
SHARES = (0.1, 0.2, 0.3, 0.5, 1.0)
NEW = "biotune-plus+rungs"
COMPUTE_TABLE = ("biotune", "biotune-plus", "tpe", "biotune-plus+sh", "tpe+sh", "random+hyperband")


def fidelity_entries(max_epochs: int) -> dict[str, RaceEntry]:
    """The compute table's methods, the budget-aware mode, and its dev-table variants."""
    known = race_entries(max_epochs)
    entries = {key: known[key] for key in COMPUTE_TABLE}
    entries[NEW] = RaceEntry(
        "biotune-plus + rungs", "biotune-plus", "rungs", {"max_resource": max_epochs}
    )
    for eta, first in ((3, 1), (2, 1), (2, 2), (4, 2)):  # dev-table variants (tuning only)
        options = {"max_resource": max_epochs, "reduction_factor": eta, "min_resource": first}
        rungs = epoch_rungs(max_epochs, reduction_factor=eta, min_epochs=first)
        entries[f"{NEW}-eta{eta}-min{first}"] = RaceEntry(
            f"biotune-plus + rungs {rungs}", "biotune-plus", "rungs", options
        )
    entries[f"{NEW}-finished-only"] = RaceEntry(
        "biotune-plus + rungs, GP on finished plans only",
        "biotune-plus",
        "rungs",
        {"max_resource": max_epochs},
        {"surrogate_paused": False},
    )
    return entries


# ------------------------------------------------------------------------------------------
# run


def _thin(curve: list[list[Any]]) -> list[list[Any]]:
    """The curve's points where the recommendation changed, and its last (a step function)."""
    kept = [p for i, p in enumerate(curve) if i == 0 or p[2] != curve[i - 1][2]]
    if curve and kept[-1] is not curve[-1]:
        kept.append(curve[-1])
    return kept


def _unit(unit: tuple[str, str, dict[str, Any], int, int, float]) -> tuple[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    key, path, entry, workers, seed, budget = unit
    record = simulate_study(
        race._load_table(path),
        RaceEntry(**entry),
        seed=seed,
        workers=workers,
        epoch_budget=budget,
    )
    trials = record.pop("trials")
    record["curve"] = _thin(record["curve"])
    record["trials"] = len(trials)
    record["pruned"] = sum(1 for t in trials if t[2] == "pruned")
    # Plans brought to their last epoch by a continuation (it trains fewer than all epochs).
    record["completed_by_continuation"] = sum(
        1 for t in trials if t[2] == "complete" and 0 < t[4] < race._load_table(path).max_epochs
    )
    return key, record


def _pending(args: argparse.Namespace, data: dict[str, Any]) -> list[tuple[Any, ...]]:
    units = []
    for path in args.tables:
        name = path.name.removesuffix(".json.gz")
        table = race._load_table(str(path))
        data["tables"][name] = race._table_info(path, table)
        budget = float(PAPER_TRIALS * table.max_epochs) * args.share
        entries = fidelity_entries(table.max_epochs)
        for key in args.entries:
            entry = entries[key]._asdict()
            entry["pruner_options"] = dict(entry["pruner_options"])
            entry["sampler_options"] = dict(entry["sampler_options"])
            data["entries"][f"{name}/{key}"] = entry
            for workers in args.workers:
                for seed in range(args.seeds):
                    unit = f"{name}/{key}/{workers}/{seed}"
                    if unit not in data["studies"]:
                        units.append((unit, str(path), entry, workers, seed, budget))
    return units


def _command(args: argparse.Namespace) -> str:
    words = ["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/fidelity_race.py", "run"]
    words += ["--tables", *(race._relative(p) for p in args.tables)]
    words += ["--entries", *args.entries, "--workers", *map(str, args.workers)]
    words += ["--seeds", str(args.seeds), "--jobs", str(args.jobs)]
    if args.share != 1.0:
        words += ["--share", str(args.share)]
    if args.output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--output", race._relative(args.output)]
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {"format": FORMAT, "tables": {}, "entries": {}, "studies": {}}
    if args.output.exists():
        data = json.loads(args.output.read_text())
    if data.setdefault("share", args.share) != args.share:
        sys.exit(f"{args.output}: raced with --share {data['share']}, not {args.share}")
    commands = data.setdefault("commands", [])
    if _command(args) not in commands:
        commands.append(_command(args))
    versions = data.setdefault("versions", [])
    here = race.library_versions()
    if here not in versions:
        versions.append(here)
    version = versions.index(here)
    race.run_units(_pending(args, data), _unit, lambda r: {**r, "v": version}, data, args)
    return 0


# ------------------------------------------------------------------------------------------
# report


def _cells(data: Mapping[str, Any], tables: Sequence[str], workers: int) -> dict[str, dict]:
    """``{entry: {(table, seed): study}}`` at ``workers``, over the blocks every entry has."""
    cells: dict[str, dict[Any, Any]] = {}
    for key, study in data["studies"].items():
        table, entry, w, seed = key.split("/")
        if table in tables and int(w) == workers:
            cells.setdefault(entry, {})[(table, int(seed))] = study
    blocks = set.intersection(*(set(c) for c in cells.values())) if cells else set()
    return {e: {b: c[b] for b in sorted(blocks)} for e, c in cells.items() if blocks}


def _budget(data: Mapping[str, Any], table: str) -> float:
    """The epochs each study trained: the paper protocol's full budget (times ``--share``)."""
    return float(PAPER_TRIALS * data["tables"][table]["max_epochs"]) * data.get("share", 1.0)


def score_at(study: Mapping[str, Any], epochs: float) -> float:
    """The recorded test accuracy of the recommendation with ``epochs`` trained (0: none yet,
    nothing to deploy)."""
    value = 0.0
    for spent, _, _, test in study["curve"]:
        if spent > epochs + 1e-9:
            break
        value = 0.0 if test is None else float(test)
    return value


def _first(study: Mapping[str, Any], level: float, column: int) -> float:
    """Epochs (column 0) or simulated seconds (column 1) at the first point reaching ``level``."""
    for point in study["curve"]:
        if point[3] is not None and point[3] >= level - 1e-9:
            return float(point[column])
    return math.inf


def _level(data: Mapping[str, Any], table: str) -> float | None:
    cells = _cells(data, [table], 1)
    if "biotune" not in cells:
        return None
    full = _budget(data, table)
    return float(np.mean([score_at(s, full) for s in cells["biotune"].values()]))


def anytime_section(data: Mapping[str, Any], tables: Sequence[str], title: str) -> list[str]:
    """Scores at shares of the budget; Friedman; the new mode against every other entry."""
    cells = _cells(data, tables, 1)
    if NEW not in cells or len(cells) < 2:
        return []
    n = len(next(iter(cells.values())))
    lines = [f"## {title}: {', '.join(tables)}, one worker ({n} blocks = table × seed)", ""]
    for share in SHARES:
        scores = {
            e: [score_at(s, share * _budget(data, t)) for (t, _), s in c.items()]
            for e, c in cells.items()
        }
        chi2, p = stats.friedman(scores)
        lines += [f"### At {share:.0%} of the paper protocol's budget", ""]
        lines += [f"Friedman χ² = {chi2:.2f}, p = {p:.2g}.", ""]
        rows = [
            [race._label(data, e), race._mean_ci(v)]
            for e, v in sorted(scores.items(), key=lambda kv: -np.mean(kv[1]))
        ]
        lines += [race._markdown(["entry", "test accuracy, mean [95 % CI]"], rows)]
        lines += race._pair_lines(data, scores, NEW)
    return lines


def compute_section(data: Mapping[str, Any], table: str) -> list[str]:
    """Epochs to the level, the two ratios."""
    level, cells = _level(data, table), _cells(data, [table], 1)
    if level is None:
        return []
    full = _budget(data, table)
    paper = [_first(s, level, 0) for s in cells["biotune"].values()]
    rows = []
    for entry in sorted(cells):
        spent = [_first(s, level, 0) for s in cells[entry].values()]
        reached = sum(1 for e in spent if math.isfinite(e))
        rows.append(
            [
                race._label(data, entry),
                f"{reached}/{len(spent)}",
                f"{np.median(spent):.0f}",
                race._median_ratio([full] * len(spent), spent),
                race._median_ratio(paper, spent),
            ]
        )
    header = ["entry", "seeds reaching", "median epochs", "vs full budget", "vs paper preset"]
    return [
        f"### {table}: epochs to the paper protocol's level",
        "",
        f"Level: the paper preset's mean recorded test accuracy at the full budget "
        f"({full:.0f} epochs, one worker), {level:.4f}. Epochs to it: the epochs trained (all "
        f"workers, pruned and paused trials included, a continuation's own epochs only) at the "
        f"first curve point whose recommendation reaches it; never: infinite. Ratios of medians "
        f"with 95 % bootstrap intervals over seeds: the full budget over the entry's median, "
        f"and the paper preset's own median over the entry's.",
        "",
        race._markdown(header, rows),
    ]


def _by_seed(data: Mapping[str, Any], table: str, entry: str, workers: int) -> dict[int, Any]:
    """``{seed: study}`` of one entry on one table at ``workers``."""
    prefix = f"{table}/{entry}/{workers}/"
    return {int(k[len(prefix) :]): s for k, s in data["studies"].items() if k.startswith(prefix)}


def workers_section(data: Mapping[str, Any], table: str) -> list[str]:
    """Simulated time to the level per worker count, speed-ups, idle share, staleness: per
    entry, over the seeds it has at both worker counts (each pair is one seed)."""
    level = _level(data, table)
    keys = [k.split("/") for k in data["studies"] if k.startswith(table + "/")]
    counts = sorted({int(w) for _, _, w, _ in keys})
    if level is None or len(counts) < 2:
        return []
    full, rows = _budget(data, table), []
    for entry in sorted({e for _, e, w, _ in keys if int(w) > 1}):
        single = _by_seed(data, table, entry, 1)
        for w in counts[1:]:
            many = _by_seed(data, table, entry, w)
            seeds = sorted(set(many) & set(single))
            if len(seeds) < 2:
                continue
            studies, singles = [many[s] for s in seeds], [single[s] for s in seeds]
            one = [_first(s, level, 1) for s in singles]
            times = [_first(s, level, 1) for s in studies]
            idle = sum(s["idle_s"] for s in studies) / sum(w * s["makespan_s"] for s in studies)
            stale = stats.wilcoxon_holm(
                {
                    "w": [score_at(s, full) for s in studies],
                    "1": [score_at(s, full) for s in singles],
                },
                "w",
            )[0]
            rows.append(
                [
                    race._label(data, entry),
                    str(w),
                    str(len(seeds)),
                    f"{np.median(one):.0f}",
                    f"{np.median(times):.0f}",
                    race._median_ratio(one, times),
                    f"{idle:.1%}",
                    f"{stale.median_difference:+.3f} (p = {stale.p:.2g})",
                ]
            )
    header = [
        "entry",
        "workers",
        "seeds",
        "median s to level, 1 worker",
        "median s to level",
        "speed-up (1 worker / W)",
        "idle",
        "full-budget score, W − 1 worker",
    ]
    return [
        f"### {table}: simulated time to the level with many workers",
        "",
        "Simulated seconds (the recorded seconds of each epoch) until the recommendation first "
        "reaches the level (never: infinite); speed-up: one worker's median over W workers' "
        "(95 % bootstrap interval); idle: the share of worker-seconds with no trial to train (0 "
        "by construction unless the study runs out of trials: asking takes no simulated time); "
        "the last column, the score at the full budget with W workers less one worker's "
        "(median difference, Wilcoxon p), is what stale information costs the search.",
        "",
        race._markdown(header, rows),
    ]


def report(data: Mapping[str, Any], output: Path) -> str:
    lines = [
        "# Budget-aware BioTune: equal epochs, many workers, on the recorded plan tables",
        "",
        f"Regenerate: `.venv/bin/python benchmarks/fidelity_race.py report` (from "
        f"`{race._relative(output)}`). Made by:",
        "",
        *[f"    {c}" for c in data["commands"]],
        "",
        f"Library versions: {'; '.join(json.dumps(v, sort_keys=True) for v in data['versions'])}.",
        "",
    ]
    test = sorted(t for t, i in data["tables"].items() if i["split"] == "test")
    dev = sorted(t for t, i in data["tables"].items() if i["split"] != "test")
    for tables, title in ((test, "Test tables"), (dev, "Dev tables")):
        if not tables:
            continue
        lines += anytime_section(data, tables, title)
        for table in tables:
            lines += compute_section(data, table)
            lines += workers_section(data, table)
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run or continue the race")
    go.add_argument("--tables", nargs="+", type=Path)
    go.add_argument("--entries", nargs="+", default=[*COMPUTE_TABLE, NEW])
    go.add_argument("--workers", nargs="+", type=int, default=[1])
    go.add_argument("--seeds", type=int, default=30)
    go.add_argument("--jobs", type=int, default=1)
    go.add_argument(
        "--share", type=float, default=1.0, help="of the paper's full budget (tests: less)"
    )
    go.add_argument("--output", type=Path, default=OUTPUT)
    rep = sub.add_parser("report", help="write the markdown from the JSON")
    rep.add_argument("--input", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.command == "run" and not args.tables:
        args.tables = sorted((ROOT / race.TABLES).glob("*.json.gz"))
    if args.command == "run" and 1 not in args.workers:
        parser.error("--workers must include 1 (the level and the speed-ups are read from it)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "run":
        return run(args)
    return race.write_report(args.input, report)


if __name__ == "__main__":
    raise SystemExit(main())
