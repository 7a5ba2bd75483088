"""Ablation of the ``biotune-plus`` preset on the DEV plan tables: every option off, one at a time.

The preset is tuned on dev tables only (:data:`table_race.TASK_SPLIT`); this script refuses a test
table. Each variant is the preset with one of its options switched back to the paper's (or, for
the options the paper lacks, to off), raced as :mod:`table_race` races samplers (one replayed,
seeded study per seed, scored by the recorded test accuracy of the plan ``recommend`` picks after
25, 50 and 140 trials). ``surrogate="tpe"`` is the preset as it was before the Gaussian-process
surrogate; for reference, the paper preset, ``gp`` and ``tpe``. The report reuses
:func:`table_race.rank_section` (mean ranks with bootstrap intervals, Friedman, Wilcoxon–Holm of
the preset against every variant) and its critical-difference figure.

Run from the repository root; ``run`` resumes (every finished study is saved), ``report``
regenerates the markdown and figure from the JSON::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/preset_ablation.py run
    .venv/bin/python benchmarks/preset_ablation.py report
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import json
from pathlib import Path
import sys
from typing import Any


ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):  # run as a script from a clone
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _results import save_json  # noqa: E402
import table_race  # noqa: E402

from biotune_optuna.studies._race import RaceEntry  # noqa: E402


OUTPUT = Path("benchmarks/results/preset_ablation.json")
DEV_TABLES = [Path("benchmarks/tables/digits-contrast.json.gz")]
PRESET = "biotune-plus"
#: Key → (label, options of ``biotune-plus``): the preset with one option off at a time (and
#: with ``exploitation_candidates``, an option tried on the dev table and left off).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    PRESET: ("biotune-plus", {}),
    "surrogate-tpe": ("− GP surrogate (TPE ranks = the preset before)", {"surrogate": "tpe"}),
    "no-surrogate": (
        "− candidates (one child)",
        {"surrogate_candidates": 0, "sampled_candidates": 0},
    ),
    "no-sampled-candidates": ("− drawn candidates", {"sampled_candidates": 0}),
    "no-adaptive-exploitation": ("− adaptive exploitation", {"adaptive_exploitation": False}),
    "no-toggle-blocks": ("− block toggles", {"toggle_blocks": False}),
    "no-avoid-duplicates": ("− no repeats", {"avoid_duplicates": False}),
    "no-mutate-first-generation": ("− mutated 1st gen.", {"mutate_first_generation": False}),
    "ranked-exploitation": (
        "+ ranked exploitation (8 variants, off in the preset)",
        {"exploitation_candidates": 8},
    ),
}
#: Other samplers for reference, with their registry defaults.
REFERENCES = ("biotune", "gp", "tpe")


def ablation_entries(max_epochs: int) -> dict[str, RaceEntry]:
    """The variants of the preset and the reference samplers (``max_epochs`` is unused: no
    variant prunes)."""
    del max_epochs
    entries = {
        key: RaceEntry(label, PRESET, sampler_options=options)
        for key, (label, options) in VARIANTS.items()
    }
    entries.update({name: RaceEntry(name, name) for name in REFERENCES})
    return entries


def _command(args: argparse.Namespace) -> str:
    """The command line of this run, with paths relative to the repository."""
    words = ["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/preset_ablation.py", "run"]
    if sorted(p.resolve() for p in args.tables) != sorted(
        (ROOT / p).resolve() for p in DEV_TABLES
    ):
        words += ["--tables", *(table_race._relative(p) for p in args.tables)]
    if args.entries:
        words += ["--entries", *args.entries]
    words += ["--seeds", str(args.seeds), "--trials", str(args.trials)]
    words += ["--budgets", *map(str, args.budgets)]
    if args.output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--output", table_race._relative(args.output)]
    return " ".join(words)


def report(data: Mapping[str, Any], output: Path) -> str:
    """The markdown report (and its critical-difference figure beside ``output``)."""
    tables = sorted(data["tables"])
    trials = data["settings"]["trials"]
    lines = [
        "# Ablation of the biotune-plus preset (dev tables only)",
        "",
        f"Regenerate: `.venv/bin/python benchmarks/preset_ablation.py report` (from "
        f"`{table_race._relative(output)}`); the runs (each resumes the JSON): "
        + "; ".join(f"`{command}`" for command in data["commands"])
        + ".  ",
        f"{trials} trials per study, seeds 0–{data['seeds'] - 1}; scores after "
        f"{', '.join(map(str, data['settings']['budgets']))} trials are the recorded test "
        "accuracy of the plan `recommend` picks (validation values only choose it).  ",
        "Each `−` row is `biotune-plus` with that one option off (the paper's setting; "
        "`− GP surrogate` is the preset as it was before the Gaussian-process surrogate), the "
        "`+` row one option on that the preset leaves off. "
        "Library versions: "
        + "; ".join(
            ", ".join(f"{k} {v}" for k, v in sorted(v.items()) if v) for v in data["versions"]
        )
        + ".",
        "",
        "Options of each row: "
        + "; ".join(
            f"`{label}`: {json.dumps(options, sort_keys=True)}"
            for label, options in VARIANTS.values()
        )
        + ".",
        "",
    ]
    lines += table_race.rank_section(data, tables, "Dev tables", references=(PRESET,))
    figure = output.with_name(f"{output.stem}_cd.svg")
    lines += [table_race.cd_figure(data, tables, trials, figure), ""]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run or continue the ablation")
    go.add_argument(
        "--tables", nargs="+", type=Path, help="dev table files (default: the dev table)"
    )
    go.add_argument("--entries", nargs="+", choices=[*VARIANTS, *REFERENCES])
    go.add_argument("--seeds", type=int, default=30)
    go.add_argument("--trials", type=int, default=140)
    go.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 140])
    go.add_argument("--output", type=Path, default=OUTPUT)
    rep = sub.add_parser("report", help="write the markdown and figure from the JSON")
    rep.add_argument("--input", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.command == "run":  # the table race's settings, on dev tables only
        args.tables = args.tables or [ROOT / path for path in DEV_TABLES]
        args.every, args.jobs = 5, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "run":
        for path in args.tables:
            if table_race.split_of(path.name.removesuffix(".json.gz")) != "dev":
                print(
                    f"{path}: not a dev table; the preset is tuned on dev tables only",
                    file=sys.stderr,
                )
                return 2
        if args.output.exists():
            stored = json.loads(args.output.read_text())
            args.seeds = max(args.seeds, stored.get("seeds", 0))
        code = table_race.run(args, entries_of=ablation_entries, command=_command)
        data = json.loads(args.output.read_text())
        data["seeds"] = args.seeds
        save_json(data, args.output)
        return code
    return table_race.write_report(args.input, report)


if __name__ == "__main__":
    raise SystemExit(main())
