"""Warm start on the recorded plan tables: how many trials does another task's head start save?

``biotune-plus`` runs cold (random generation 0) and warm (``[sampler] warm_start``: generation
0's first slots and the surrogate's prior from another table's best plans, read as a study spec
reads them, :func:`biotune_optuna.studies._warm_start.warm_start_plans`) on the TEST tables
(``textures``, ``digits-noise``; :data:`TASK_SPLIT` of ``benchmarks/table_race.py``), one
replayed study per seed (:func:`~biotune_optuna.studies._race.race_study`). Entries:

- ``cold``: biotune-plus as it is;
- ``warm-dev``: warm-started from the DEV table (``digits-contrast``), its ``--top`` plans by
  mean recorded validation value (the spec's default: half the population);
- ``warm-other``: warm-started the same way from the other test table (another domain: textures
  for digits and back), a source less like the target;
- ``misleading``: warm-started from the dev table's ``--top`` WORST plans that train something,
  the worst case of a source whose good plans are bad for the target.

No warm-start knob was tuned: ``top`` = 5 (half of N = 10, so that half of generation 0 stays
random) and the surrogate prior's weight ``k / (k + n)`` were fixed by that principle before any
run, and the test tables are only scored. A study is scored by the recorded test accuracy of the
plan :func:`~biotune_optuna.studies.recommend` picks after each ``--every`` trials. Statistics
(:mod:`biotune_optuna.studies._race_statistics`): per table, paired over seeds, a Wilcoxon
signed-rank test per comparison with Holm's correction over the table's comparisons, and 95 %
paired-bootstrap intervals of mean differences. "Trials saved": the smallest warm budget whose
score is not significantly below (Holm p < 0.05) cold's at ``--cold-budget`` trials.

Run from the repository root; ``run`` resumes (every finished study is saved), ``report``
regenerates the markdown from the JSON::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/warm_start.py run
    .venv/bin/python benchmarks/warm_start.py report
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clone
    sys.path.insert(0, str(ROOT))

from benchmarks._results import save_json  # noqa: E402
from biotune_optuna.studies import _race_statistics as stats  # noqa: E402
from biotune_optuna.studies._plan_table import PlanTable  # noqa: E402
from biotune_optuna.studies._race import race_study  # noqa: E402
from biotune_optuna.studies._race import RaceEntry  # noqa: E402
from biotune_optuna.studies._race import score_at  # noqa: E402
from biotune_optuna.studies._warm_start import genes_of_code  # noqa: E402
from biotune_optuna.studies._warm_start import warm_start_plans  # noqa: E402


TABLES = Path("benchmarks/tables")
OUTPUT = Path("benchmarks/results/warm_start.json")
DEV, TARGETS = "digits-contrast", ("textures", "digits-noise")
ENTRIES = ("cold", "warm-dev", "warm-other", "misleading")
FORMAT = 1
N_BOOTSTRAP = 10_000


def _table(name: str) -> PlanTable:
    return PlanTable.load(ROOT / TABLES / f"{name}.json.gz")


def worst_plans(table: PlanTable, top: int) -> list[dict[str, Any]]:
    """The table's ``top`` worst plans that train something, by mean validation value."""
    ranked = sorted(table.plans, key=lambda code: (table.expected_value(code), code))
    return [
        {
            "params": genes_of_code(code, table.blocks, table.levels),
            "value": round(table.expected_value(code), 6),
            "source": f"table:{table.name} (worst)",
        }
        for code in ranked[:top]
    ]


def entry_plans(entry: str, target: str, top: int) -> list[dict[str, Any]] | None:
    """The ``warm_start`` plans of an entry on ``target`` (``None``: cold)."""
    table = _table(target)
    if entry == "cold":
        return None
    if entry == "misleading":
        return worst_plans(_table(DEV), top)
    source = DEV if entry == "warm-dev" else next(t for t in TARGETS if t != target)
    path = str(ROOT / TABLES / f"{source}.json.gz")
    return warm_start_plans([{"table": path, "top": top}], table.blocks)


def _command(args: argparse.Namespace) -> str:
    words = ["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/warm_start.py", "run"]
    words += ["--seeds", str(args.seeds), "--trials", str(args.trials), "--every", str(args.every)]
    words += ["--top", str(args.top)]
    if args.output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--output", os.path.relpath(args.output, ROOT)]
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the benchmark into ``args.output``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data: dict[str, Any] = {"format": FORMAT, "studies": {}, "plans": {}, "commands": []}
    if args.output.exists():
        data = json.loads(args.output.read_text())
    settings = {"trials": args.trials, "every": args.every, "top": args.top}
    if data.setdefault("settings", settings) != settings:
        sys.exit(f"{args.output}: run with {data['settings']}, not {settings}")
    if _command(args) not in data["commands"]:
        data["commands"].append(_command(args))
    start = time.time()
    for target in TARGETS:
        table = _table(target)
        for entry in ENTRIES:
            plans = entry_plans(entry, target, args.top)
            data["plans"][f"{target}/{entry}"] = plans
            options = {} if plans is None else {"warm_start": plans}
            race = RaceEntry(entry, "biotune-plus", sampler_options=options)
            for seed in range(args.seeds):
                key = f"{target}/{entry}/{seed}"
                if key in data["studies"]:
                    continue
                budgets = range(args.every, args.trials + 1, args.every)
                data["studies"][key] = race_study(
                    table, race, seed=seed, n_trials=args.trials, budgets=budgets, every=args.every
                )
                save_json(data, args.output)
            print(f"{target}/{entry}: {time.time() - start:.0f} s", flush=True)
    save_json(data, args.output)
    return 0


def scores(data: Mapping[str, Any], target: str, entry: str, budget: int) -> np.ndarray:
    """Per seed (in seed order), the recorded test accuracy of the recommendation."""
    keys = sorted(
        (k for k in data["studies"] if k.startswith(f"{target}/{entry}/")),
        key=lambda k: int(k.rsplit("/", 1)[1]),
    )
    return np.asarray([score_at(data["studies"][k], budget) for k in keys], dtype=float)


def paired_interval(diff: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of paired differences (seeds resampled)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(N_BOOTSTRAP, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def comparisons(data: Mapping[str, Any], target: str, cold_budget: int) -> list[dict[str, Any]]:
    """The table's family of paired comparisons (Holm-corrected together)."""
    trials, every = data["settings"]["trials"], data["settings"]["every"]
    pairs = [(e, b, "cold", b) for e in ENTRIES[1:] for b in (25, trials)]
    pairs += [("warm-dev", b, "cold", cold_budget) for b in range(every, trials + 1, every)]
    rows = []
    for a, budget_a, b, budget_b in dict.fromkeys(pairs):
        x, y = scores(data, target, a, budget_a), scores(data, target, b, budget_b)
        test = stats.wilcoxon_holm({"a": x, "b": y}, "a")[0]
        rows.append(
            {
                "a": f"{a}@{budget_a}",
                "b": f"{b}@{budget_b}",
                "mean_difference": float((x - y).mean()),
                "interval": paired_interval(x - y),
                "wins": test.wins,
                "ties": test.ties,
                "losses": test.losses,
                "p": test.p,
            }
        )
    for row, adjusted in zip(rows, stats.holm([r["p"] for r in rows])):
        row["p_holm"] = adjusted
    return rows


def trials_saved(rows: Sequence[Mapping[str, Any]], cold: str, *, by: str) -> int | None:
    """The smallest warm-dev budget from which on every warm-dev budget is not below ``cold``
    (``None``: not even the last): ``by="holm"``, not significantly below (Holm p < 0.05 with
    a negative mean difference); ``by="interval"``, the 95 % bootstrap interval of the mean
    difference reaches 0 (stricter: no correction for the many budgets)."""
    ladder = sorted(
        (int(r["a"].split("@")[1]), r)
        for r in rows
        if r["a"].startswith("warm-dev@") and r["b"] == cold
    )
    saved = None
    for budget, row in reversed(ladder):
        if by == "holm":
            below = row["mean_difference"] < 0 and row["p_holm"] < 0.05
        else:
            below = row["interval"][1] < 0
        if below:
            break
        saved = budget
    return saved


def _table_lines(data: Mapping[str, Any], target: str) -> list[str]:
    trials, every = data["settings"]["trials"], data["settings"]["every"]
    budgets = [b for b in range(every, trials + 1, every) if b in (10, 15, 20, 25, 30, 40, 50)]
    lines = ["| entry | " + " | ".join(f"@{b}" for b in budgets) + " |"]
    lines.append("|---|" + "---|" * len(budgets))
    for entry in ENTRIES:
        cells = []
        for b in budgets:
            values = scores(data, target, entry, b)
            cells.append(f"{values.mean():.4f}")
        lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    return lines


def report(args: argparse.Namespace) -> int:
    """Write the markdown next to the JSON, from the JSON alone."""
    data = json.loads(args.output.read_text())
    trials = data["settings"]["trials"]
    n_seeds = len(scores(data, TARGETS[0], "cold", trials))
    lines = [
        "# Warm start from another task's plans (biotune-plus, recorded plan tables)",
        "",
        f"<!-- Generated by `.venv/bin/python benchmarks/warm_start.py report` from "
        f"{os.path.relpath(args.output, ROOT)}; do not edit. -->",
        "",
        f"Run: `{'`; `'.join(data['commands'])}`. Seeds 0-{n_seeds - 1} ({n_seeds} per cell), "
        f"{trials} trials per study, top {data['settings']['top']} plans per source. Score: "
        "the recorded TEST accuracy of the plan `recommend` picks; test tables only (warm "
        "starts come from the dev table, or from the other test table for `warm-other`). No "
        "warm-start knob was tuned (see the script's docstring). 'Not significantly below' "
        "is weak evidence with 30 seeds and Holm over 15 comparisons per table; the interval "
        "criterion is the stricter reading.",
    ]
    for target in TARGETS:
        rows = comparisons(data, target, trials)
        saved = {by: trials_saved(rows, f"cold@{trials}", by=by) for by in ("holm", "interval")}
        lines += ["", f"## {target}", "", "Mean recorded test accuracy after k trials:", ""]
        lines += _table_lines(data, target)
        lines += ["", "| comparison | mean diff [95 % CI] | wins/ties/losses | p | p (Holm) |"]
        lines += ["|---|---|---|---|---|"]
        for r in rows:
            low, high = r["interval"]
            lines.append(
                f"| {r['a']} − {r['b']} | {r['mean_difference']:+.4f} [{low:+.4f}, "
                f"{high:+.4f}] | {r['wins']}/{r['ties']}/{r['losses']} | {r['p']:.3g} | "
                f"{r['p_holm']:.3g} |"
            )
        cold = f"cold@{trials}"
        target_row = next(r for r in rows if r["a"] == "warm-dev@25" and r["b"] == cold)
        reached = target_row["mean_difference"] >= 0
        words = {
            by: f"**{trials - b} trials saved** (warm-dev@{b})" if b is not None else "none"
            for by, b in saved.items()
        }
        lines += [
            "",
            f"Trials saved against cold@{trials}, the smallest warm-dev budget from which on "
            f"warm-dev is not below it: not significantly below (Holm): {words['holm']}; "
            f"95 % interval of the mean difference reaching 0: {words['interval']}. Target "
            f"'warm@25 >= cold@{trials}' (mean): **{'reached' if reached else 'not reached'}** "
            f"({target_row['mean_difference']:+.4f}).",
        ]
    out = args.output.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run (or continue) the studies")
    go.add_argument("--seeds", type=int, default=30)
    go.add_argument("--trials", type=int, default=50)
    go.add_argument("--every", type=int, default=5)
    go.add_argument("--top", type=int, default=5)
    for command in (go, sub.add_parser("report", help="write the markdown from the JSON")):
        command.add_argument("--output", type=Path, default=ROOT / OUTPUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
