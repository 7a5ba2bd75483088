"""The paper's comparison on the offline default task (EfficientNet-Lite0 -> digits), two tables.

1. ``baselines``: BioTune's best plan against the usual ways of fine-tuning (full fine-tuning,
   linear probe, LP-FT, surgical best single block, Auto-RGN, L2-SP, L1-SP, LoRA ranks 4/8/16,
   layer-wise lr decay), each trained on the whole train split with early stopping on the val
   split and tested once per seed: macro test accuracy mean ± std over 3 seeds, trainable %,
   training seconds (final runs, and the search or selection before them). This is
   ``biotune-optuna baselines benchmarks/specs/digits_baselines.toml --final-seeds 3``, the
   command a user runs on their own data; that spec gives BioTune the paper's search budget
   (140 trials) on the demo's CPU-cut protocol.
2. ``samplers``: best validation macro accuracy after 25 / 50 / 140 trials of every sampler
   (BioTune, BioTune-plus, random, QMC, TPE, CMA-ES, GP, NSGA-II) on the same genes, folds
   and budget, over 5 seeds (median and IQR), run into one SQLite storage and read back with
   ``compare``.
   The spec ``benchmarks/specs/digits_sampler_race.toml`` says how the task is cut for a CPU.

Both parts resume: the studies live in SQLite files, and a second run continues them.

    .venv/bin/python benchmarks/paper_table.py --threads 1 samplers --seeds 0,1,2,3,4
    .venv/bin/python benchmarks/paper_table.py --threads 1 baselines --n-seeds 3
    .venv/bin/python benchmarks/paper_table.py report    # both tables: results/paper_table.md
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import os
from pathlib import Path
import platform
import subprocess
import time
from typing import Any

import numpy as np
import optuna


HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RACE_SPEC = HERE / "specs" / "digits_sampler_race.toml"
BASELINES_SPEC = HERE / "specs" / "digits_baselines.toml"
SAMPLER_ORDER = ("biotune", "biotune-plus", "random", "qmc", "tpe", "cmaes", "gp", "nsgaii")


def _machine() -> str:
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"optuna {optuna.__version__}"
    )


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_timed(study: optuna.Study, objective: Any, budget: int) -> tuple[int, float]:
    """Run ``study`` to ``budget`` finished trials: the trials it ran and the seconds taken."""
    from biotune_optuna.studies import run_to_budget

    start = time.perf_counter()
    ran = run_to_budget(study, objective, budget)
    return ran, time.perf_counter() - start


def run_race(base: Any, samplers: Sequence[str], seeds: Sequence[int]) -> None:
    """Run (or resume) the study of every sampler × seed of the race spec ``base``.

    Seed-major, so that an interrupted run has whole seeds for all samplers. Study names are
    the spec's overrides: ``race`` (the spec's sampler, seed 0), ``race-seed1``,
    ``race-<sampler>``, ``race-<sampler>-seed1``… (``benchmarks/sampler_race.py`` reads the
    same studies).
    """
    from biotune_optuna.studies import prepare_study

    for seed in seeds:
        objective = None
        for sampler in samplers:
            spec = base.with_overrides(sampler=sampler, seed=seed)
            # the same objective (and feature cache) for every sampler
            study, objective = prepare_study(spec, objective=objective)
            objective.on_plan = None
            ran, seconds = run_timed(study, objective, spec.budget)
            print(
                f"seed {seed} {sampler:<8} {ran:>4} trials in {seconds:7.1f} s, "
                f"best {study.best_value:.4f}",
                flush=True,
            )


def run_samplers(args: argparse.Namespace) -> None:
    """Run (or resume) every sampler × seed study of the race spec, then write the table."""
    from biotune_optuna.studies import load_spec

    base = load_spec(args.spec)
    if not args.report_only:
        run_race(base, args.samplers, args.seeds)
    write_sampler_table(base, args)


def write_sampler_table(base: object, args: argparse.Namespace) -> None:
    """Read the race's studies back and write the table (markdown and JSON)."""

    from biotune_optuna.studies import load_study
    from biotune_optuna.studies._report import best_so_far
    from biotune_optuna.studies._report import compare_rows
    from biotune_optuna.studies._report import markdown_table
    from biotune_optuna.studies._session import study_exists
    from biotune_optuna.trials import WALL_TIME_ATTR

    groups: dict[str, list[optuna.Study]] = {}
    raw: dict[str, dict[str, object]] = {}
    for sampler in args.samplers:
        for seed in args.seeds:
            spec = base.with_overrides(sampler=sampler, seed=seed)
            if not study_exists(spec.storage, spec.name):
                continue
            study = load_study(spec)
            groups.setdefault(sampler, []).append(study)
            trials = study.get_trials(deepcopy=False)
            curve = best_so_far(study)
            seconds = [t.user_attrs.get(WALL_TIME_ATTR, 0.0) for t in trials]
            raw.setdefault(sampler, {})[str(seed)] = {
                "study": spec.name,
                "trials": len(curve),
                "best_at": {b: float(curve[b - 1]) for b in args.budgets if len(curve) >= b},
                "training_seconds": float(np.sum(seconds)),
            }
    header, rows = compare_rows(groups, args.budgets)
    table = markdown_table(header, rows)
    command = "benchmarks/paper_table.py samplers --seeds " + ",".join(map(str, args.seeds))
    text = (
        "# Sampler race: best validation macro accuracy per trial budget\n\n"
        f"Task: `{base.path.relative_to(HERE.parent)}` (EfficientNet-Lite0 -> digits). "
        "**Cut for a 2-core CPU**: 32 px (paper 224), 1 epoch (paper <= 30), 1 training seed "
        "per plan (paper 3), 128 train + 128 val images per data fold. Same genes, folds, "
        "training seed and budget for every sampler; seed k = sampler seed k and training "
        f"seed k. Budgets {', '.join(map(str, args.budgets))} trials; 140 = 10 BioTune "
        "generations of the paper's N = 10, E = 3. Cells: median [IQR] over seeds, n = "
        "studies that reached the budget.\n\n"
        f"{table}\n\n"
        f"Command: `.venv/bin/python {command}` (table written at commit {_commit()}; "
        f"{_machine()}). `biotune-optuna compare {base.path.relative_to(HERE.parent)} "
        "--budgets 25,50,140` reads the same studies back into the same table, with "
        "best-so-far plots.\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "paper_table_samplers.md").write_text(text)
    (RESULTS / "paper_table_samplers.json").write_text(
        json.dumps(
            {"command": command, "budgets": args.budgets, "studies": raw, "machine": _machine()},
            indent=2,
        )
        + "\n"
    )
    print(text)


def run_baselines(args: argparse.Namespace) -> None:
    """``biotune-optuna baselines`` on the table's spec, plus rows whose learning rate is searched
    (``--lr-trials`` TPE trials each), so that BioTune's search is not the only one."""
    from biotune_optuna.studies import load_spec
    from biotune_optuna.studies._baselines import BASELINE_ROWS
    from biotune_optuna.studies._baselines import BaselineRow
    from biotune_optuna.studies._baselines import compare_baselines

    rows = list(BASELINE_ROWS)
    if args.strategies:
        rows = [row for row in rows if row.strategy in args.strategies.split(",")]
    if args.lr_trials:
        tuned = f"lr searched ({args.lr_trials} TPE trials)"
        rows += [
            BaselineRow(
                f"Full fine-tuning, {tuned}", "full", search=("lr",), trials=args.lr_trials
            ),
            BaselineRow(
                f"LoRA r=16, {tuned}", "lora", {"rank": 16}, search=("lr",), trials=args.lr_trials
            ),
        ]
    table, _ = compare_baselines(
        load_spec(args.spec),
        n_seeds=args.n_seeds,
        output=RESULTS / "paper_table_baselines",
        rows=rows,
    )
    print(table)


def write_report(args: argparse.Namespace) -> None:
    """Both tables in one file, with the ranks of BioTune computed from the stored results."""
    parts = ["# BioTune against baselines and samplers: EfficientNet-Lite0 -> digits\n"]
    baselines = RESULTS / "paper_table_baselines" / "baselines.json"
    if baselines.is_file():
        stored = json.loads(baselines.read_text())
        by_key = {r["key"]: r for r in stored["rows"]}
        rows = [by_key[k] for k in stored.get("table", by_key)]
        ranked = sorted(rows, key=lambda r: -r["test_macro_accuracy_mean"])
        place = 1 + [r["strategy"] for r in ranked].index("biotune")
        leader = ranked[0]
        text = (RESULTS / "paper_table_baselines" / "baselines.md").read_text()
        parts += [
            "## 1. Fine-tuning methods (test split)\n",
            text.split("\n", 2)[2].strip() + "\n",
            f"BioTune's best plan ranks **{place} of {len(rows)}** by mean test macro "
            f"accuracy; the best is {leader['label']} "
            f"({100 * leader['test_macro_accuracy_mean']:.2f} %). Differences smaller than the "
            "std over seeds are not differences.\n",
            "**Cut for a 2-core CPU** (spec `benchmarks/specs/digits_baselines.toml`): 64 px "
            "(paper 224), <= 2 epochs (paper 30), batch 32 (paper 96); BioTune searched 140 "
            "trials (the paper's N = 10, E = 3, 10 generations) with 1 training seed per plan "
            "(paper 3) on half of the train and val splits per generation (paper's folds). "
            "Baselines run at their stated defaults with the protocol's lr unless a row says "
            "its lr was searched.\n",
            "Command: `.venv/bin/python benchmarks/paper_table.py --threads 1 baselines` "
            "(the rows of `biotune-optuna baselines benchmarks/specs/digits_baselines.toml "
            "--final-seeds 3`, plus full fine-tuning and LoRA r=16 with their lr searched by "
            "TPE).\n",
        ]
    samplers = RESULTS / "paper_table_samplers.json"
    if samplers.is_file():
        stored = json.loads(samplers.read_text())
        text = (RESULTS / "paper_table_samplers.md").read_text()
        parts += ["## 2. Samplers on the same genes (validation)\n", text.split("\n", 2)[2]]
        lines = []
        for budget in stored["budgets"]:
            medians = {}
            for sampler, seeds in stored["studies"].items():
                values = [
                    v["best_at"][str(budget)]
                    for v in seeds.values()
                    if str(budget) in v["best_at"]
                ]
                if values:
                    medians[sampler] = float(np.median(values))
            order = sorted(medians, key=lambda k: -medians[k])
            for preset in ("biotune", "biotune-plus"):
                if preset in medians:
                    lines.append(
                        f"- after {budget} trials `{preset}`'s median ranks "
                        f"{1 + order.index(preset)} of {len(order)} "
                        f"(best: {order[0]} {medians[order[0]]:.4f}, "
                        f"{preset} {medians[preset]:.4f})"
                    )
        lines.append(
            "\nThese are the best validation values the studies saw (the luckiest of noisy "
            "one-fold draws). What a user gets, the recommended plan retrained and tested, "
            "is in [`sampler_race.md`](sampler_race.md)."
        )
        parts += ["\n".join(lines) + "\n"]
    (RESULTS / "paper_table.md").write_text("\n".join(parts))
    print("\n".join(parts))


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    sub = parser.add_subparsers(dest="part", required=True)
    samplers = sub.add_parser("samplers", help="the sampler race (table 2)")
    samplers.add_argument("--spec", type=Path, default=RACE_SPEC)
    samplers.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4])
    samplers.add_argument("--samplers", type=lambda t: t.split(","), default=list(SAMPLER_ORDER))
    samplers.add_argument("--budgets", type=_ints, default=[25, 50, 140])
    samplers.add_argument("--report-only", action="store_true", help="only write the table")
    baselines = sub.add_parser("baselines", help="BioTune's best plan vs baselines (table 1)")
    baselines.add_argument("--spec", type=Path, default=BASELINES_SPEC)
    baselines.add_argument("--n-seeds", type=int, default=3)
    baselines.add_argument("--strategies", default=None, help="comma-separated subset")
    baselines.add_argument(
        "--lr-trials", type=int, default=20, help="trials of the lr-searched rows (0: none)"
    )
    sub.add_parser("report", help="both tables in results/paper_table.md")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.part == "samplers":
        run_samplers(args)
    elif args.part == "baselines":
        run_baselines(args)
    write_report(args)


if __name__ == "__main__":
    main()
