"""Does the replay agree with reality? Live and replayed studies of the same sampler and seed.

The table race (``benchmarks/table_race.py``) judges samplers on recorded plan tables instead of
real fine-tuning. This check runs, on the task of one table (``benchmarks/tables/textures.toml``,
the spec the table ``benchmarks/tables/textures.json.gz`` was recorded from), the same studies
both ways, for every sampler and seed of the check:

- **live**: a study on the spec itself (``--trials`` trials of real fine-tuning, the sampler and
  seed overridden as ``biotune-optuna run --sampler --seed`` does, which also makes the seed the
  trials' training seed; SQLite storage ``benchmarks/results/replay_agreement.db``, one study per
  cell). The plan :func:`~biotune_optuna.studies.recommend` picks among its finished
  trials is then scored **exactly as the table scores a plan**: the recorder's run
  (:mod:`biotune_optuna.studies._record`) on every fold with the table's training seeds, test
  accuracy = mean of the runs' test macro accuracy. The plan is scored as the study found it
  (its continuous learning rates), not snapped to the grid; its grid point (``code``) and the
  table's recorded test accuracy of that point are kept beside it, and that grid point is
  re-trained once as a reproduction check of the table on this machine.
- **replayed**: the same sampler, seed and trials on the table
  (:func:`~biotune_optuna.studies._race.race_study`), scored by the recorded test accuracy of its
  recommended grid point: what the table race reports.

The yardstick is the table's own noise: the two recorded runs of a plan (fold 0 and fold 1,
each with the table's training seed) differ in test accuracy; the SD of that difference over all
recorded plans gives the SD expected for the difference of two independent scores of one plan
(each the mean of two runs). The verdict says "agree within seed noise" only if the 95 %
bootstrap interval of the mean live − replay difference lies within ± that SD and a Wilcoxon
signed-rank test of the differences is not significant (α = 0.05).

Run from the repository root; ``run`` resumes (every finished cell is saved at once, and an
interrupted live study continues in its SQLite storage), ``report`` writes the markdown byte for
byte from the JSON::

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/replay_agreement.py run
    .venv/bin/python benchmarks/replay_agreement.py report
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/replay_agreement.py run --smoke  # ~1 min
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import hashlib
import json
import math
from pathlib import Path
import platform
import sys
import tempfile
import time
from typing import Any

import numpy as np


ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a clone
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # table_race

from benchmarks._results import save_json  # noqa: E402
from biotune_optuna.studies._plan_table import PlanTable  # noqa: E402
from biotune_optuna.trials import WALL_TIME_ATTR  # noqa: E402


SPEC = Path("benchmarks/tables/textures.toml")
TABLE = Path("benchmarks/tables/textures.json.gz")
OUTPUT = Path("benchmarks/results/replay_agreement.json")
SAMPLERS = ("random", "tpe", "biotune-plus")
SEEDS = (0, 1, 2, 3, 4)
TRIALS = 25
FORMAT = 1
#: Bootstrap resamples of the report's intervals (fixed seed: the report is reproducible).
BOOTSTRAP = 10_000
ALPHA = 0.05


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _versions() -> dict[str, Any]:
    from table_race import library_versions
    import torch

    versions = library_versions("torch")
    versions["torch_threads"] = torch.get_num_threads()
    versions["machine"] = platform.machine()
    return versions


# ------------------------------------------------------------------------------------------
# the table's noise


def table_noise(table: PlanTable) -> dict[str, Any]:
    """The table's own noise: the test-accuracy difference between a plan's two runs.

    Args:
        table: A table with two recorded runs per plan (fold 0 and fold 1, one seed each).

    Returns:
        ``run_difference_sd`` (SD over plans of run 1 − run 2), ``run_sd`` (one run's SD,
        that over √2), ``score_sd`` (one score's, the mean of the two runs: over √2 again) and
        ``score_difference_sd`` (of the difference of two independent scores of one plan:
        ``score_sd`` · √2), with the count of plans and the mean difference.
    """
    diffs = []
    for code in sorted(table.plans):
        runs = sorted(table.runs(code), key=lambda r: (r.fold, r.seed))
        if len(runs) == 2:
            diffs.append(runs[0].test - runs[1].test)
    d = np.asarray(diffs, dtype=float)
    sd = float(d.std(ddof=1))
    return {
        "plans": len(diffs),
        "run_difference_mean": round(float(d.mean()), 6),
        "run_difference_sd": round(sd, 6),
        "run_sd": round(sd / math.sqrt(2), 6),
        "score_sd": round(sd / 2, 6),
        "score_difference_sd": round(sd / math.sqrt(2), 6),
    }


# ------------------------------------------------------------------------------------------
# run: one cell


def score_plan(objective: Any, plan: Any, table: PlanTable, test: Any) -> list[dict[str, Any]]:
    """The runs the recorder would record for ``plan``: every fold × the table's seeds.

    Args:
        objective: The spec's fine-tuning objective (backbone, folds, feature cache).
        plan: A :class:`~biotune_optuna.plan.FineTunePlan` (any learning rates, not only the
            grid's).
        table: The table whose folds and training seeds are used.
        test: The test split (the recorder's).

    Returns:
        One dict per run (``fold``, ``seed``, ``test``, ``best_val``, ``seconds``); none for a
        plan that trains nothing (the table scores it 0).
    """
    from biotune_optuna.studies._record import record_run

    if plan.is_empty:
        return []
    runs = []
    for fold in range(table.n_folds):
        for seed in table.seeds:
            line = record_run(objective, plan, fold, seed, test)
            runs.append(
                {
                    "fold": fold,
                    "seed": seed,
                    "test": line["test"],
                    "best_val": max(line["val"]),
                    "seconds": line["seconds"],
                }
            )
    return runs


def _mean_test(runs: Sequence[Mapping[str, Any]]) -> float:
    return round(sum(r["test"] for r in runs) / len(runs), 6) if runs else 0.0


def live_study(base: Any, objective: Any, sampler: str, seed: int, args: Any) -> Any:
    """Run (or continue) the live study of one cell; the study."""
    from biotune_optuna.studies import prepare_study
    from biotune_optuna.studies import run_to_budget

    spec = base.with_overrides(sampler=sampler, seed=seed, trials=args.trials)
    study, _ = prepare_study(spec, objective=objective)
    run_to_budget(study, objective, spec.budget)
    return study


def live_cell(
    base: Any, objective: Any, table: PlanTable, sampler: str, seed: int, args: Any
) -> dict[str, Any]:
    """The live side of a cell: the study, its recommended plan, that plan scored as the
    table scores a plan, and the plan's grid point."""
    import optuna

    from biotune_optuna.plan import FineTunePlan
    from biotune_optuna.studies import recommend
    from biotune_optuna.studies._record import table_test_split

    start = time.perf_counter()
    study = live_study(base, objective, sampler, seed, args)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)
    trials = trials[: args.trials]
    study_seconds = time.perf_counter() - start
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None, f"{study.study_name}: nothing to recommend"
    params = dict(chosen.trial.params)
    plan = FineTunePlan.from_params(params, table.blocks, base_lr=table.base_lr)
    start = time.perf_counter()
    runs = score_plan(objective, plan, table, table_test_split(objective))
    code = table.code_of(plan)
    return {
        "study": study.study_name,
        "trials": len(trials),
        "study_seconds": round(study_seconds, 1),
        "training_seconds": round(sum(t.user_attrs.get(WALL_TIME_ATTR, 0) for t in trials), 1),
        "best_val_seen": round(max(t.value or 0.0 for t in trials), 6),
        "recommended_trial": chosen.trial.number,
        "rule": chosen.rule,
        "estimate": round(float(chosen.estimate), 6),
        "params": {k: round(float(v), 6) for k, v in sorted(params.items())},
        "multipliers": {b: round(lr / table.base_lr, 4) for b, lr in plan.learning_rates.items()},
        "runs": runs,
        "score": _mean_test(runs),
        "scoring_seconds": round(time.perf_counter() - start, 1),
        "code": code,
        "table_test": round(table.test_accuracy(code), 6),
    }


def replay_cell(table: PlanTable, sampler: str, seed: int, trials: int) -> dict[str, Any]:
    """The replayed side of a cell: the same study on the table, scored as the race scores it."""
    from biotune_optuna.studies._race import race_entries
    from biotune_optuna.studies._race import race_study

    entry = race_entries(table.max_epochs)[sampler]
    record = race_study(table, entry, seed=seed, n_trials=trials, budgets=[trials], every=trials)
    k, epochs, code, test = record["curve"][-1]
    assert k == trials
    return {
        "score": test,
        "code": code,
        "epochs": epochs,
        "distinct_plans": len({t[0] for t in record["trials"]}),
        "seconds": record["seconds"],
    }


def reproduce(objective: Any, table: PlanTable, code: str, test: Any) -> dict[str, Any]:
    """The grid point ``code`` trained again as the recorder trained it, beside the table."""
    from biotune_optuna.studies._plan_table import plan_of_code

    plan = plan_of_code(code, table.blocks, table.levels, base_lr=table.base_lr)
    runs = score_plan(objective, plan, table, test)
    recorded = {(r.fold, r.seed): r.test for r in table.runs(code)}
    return {
        "test": _mean_test(runs),
        "table_test": round(table.test_accuracy(code), 6),
        "max_run_difference": round(
            max((abs(r["test"] - recorded[(r["fold"], r["seed"])]) for r in runs), default=0.0),
            6,
        ),
    }


# ------------------------------------------------------------------------------------------
# run: the loop


def _table_info(path: Path, table: PlanTable) -> dict[str, Any]:
    return {
        "file": _relative(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
        "name": table.name,
        "blocks": list(table.blocks),
        "levels": list(table.levels),
        "n_folds": table.n_folds,
        "seeds": list(table.seeds),
        "max_epochs": table.max_epochs,
        "plans": len(table.plans),
        "task": table.task,
    }


def _check_task(objective: Any, table: PlanTable) -> None:
    """Refuse a spec whose task is not the table's (blocks, split sizes, protocol)."""
    data = objective.data
    sizes = {
        "train": len(data.train_labels),
        "val": len(data.val_labels),
        "test": 0 if data.test_labels is None else len(data.test_labels),
    }
    protocol = dataclasses.asdict(objective.protocol)
    recorded = dict(table.protocol)
    protocol.pop("seed")
    recorded.pop("seed", None)
    problems = [
        what
        for what, ok in (
            ("blocks", tuple(objective.blocks) == table.blocks),
            ("split sizes", sizes == table.task.get("sizes")),
            ("protocol", protocol == recorded),
        )
        if not ok
    ]
    if problems:
        sys.exit(f"the spec's task is not the table's: {', '.join(problems)} differ")


def _command(args: argparse.Namespace) -> str:
    words = ["OMP_NUM_THREADS=1", ".venv/bin/python", "benchmarks/replay_agreement.py", "run"]
    if args.smoke:
        return " ".join([*words, "--smoke"])
    if args.spec != SPEC or args.table != TABLE:
        words += ["--spec", _relative(args.spec), "--table", _relative(args.table)]
    words += ["--samplers", *args.samplers, "--seeds", *map(str, args.seeds)]
    words += ["--trials", str(args.trials)]
    if args.output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--output", _relative(args.output)]
    return " ".join(words)


def _base_spec(args: argparse.Namespace, storage: Path) -> Any:
    """The table's spec on the check's storage (for ``--smoke``, on fewer images)."""
    from biotune_optuna.studies import load_spec

    base = load_spec(args.spec)
    base = dataclasses.replace(base, storage=f"sqlite:///{storage.resolve()}")
    if args.smoke:
        assert base.data is not None
        data = dataclasses.replace(base.data, max_train_images=32, max_val_images=32)
        base = dataclasses.replace(base, data=data)
    return base


def _open_data(args: argparse.Namespace, table: PlanTable) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT, "cells": {}, "reproduced": {}}
    if args.output.exists():
        data = json.loads(args.output.read_text())
    info = _table_info(args.table, table)
    settings = {"trials": args.trials, "spec": _relative(args.spec), "table": info["sha256"]}
    if data.setdefault("settings", settings) != settings:
        sys.exit(f"{args.output}: run with {data['settings']}, not {settings}; move it away")
    data["table"] = info
    data["noise"] = table_noise(table)
    data["smoke"] = bool(args.smoke)
    data["command"] = _command(args)
    data.setdefault("versions", [])
    here = _versions()
    if here not in data["versions"]:
        data["versions"].append(here)
    data["version_now"] = data["versions"].index(here)
    return data


def run(args: argparse.Namespace) -> int:
    """Run (or continue) every cell into ``args.output``, seed-major, saving after each."""
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies._record import table_test_split

    table = PlanTable.load(args.table)
    data = _open_data(args, table)
    base = _base_spec(args, args.output.with_suffix(".db"))
    todo = [(s, k) for k in args.seeds for s in args.samplers if f"{s}/{k}" not in data["cells"]]
    print(f"{len(todo)} cells to run, {len(data['cells'])} stored", flush=True)
    objectives: dict[int, Any] = {}
    for sampler, seed in todo:
        if seed not in objectives:  # one per seed: the seed is also the trials' training seed
            objectives.clear()
            objectives[seed] = build_objective(base.with_overrides(seed=seed))
            objectives[seed].on_plan = None
            if not args.smoke:
                _check_task(objectives[seed], table)
        objective = objectives[seed]
        start = time.perf_counter()
        live = live_cell(base, objective, table, sampler, seed, args)
        replay = replay_cell(table, sampler, seed, args.trials)
        if live["code"] not in data["reproduced"]:
            data["reproduced"][live["code"]] = reproduce(
                objective, table, live["code"], table_test_split(objective)
            )
        data["cells"][f"{sampler}/{seed}"] = {
            "sampler": sampler,
            "seed": seed,
            "live": live,
            "replay": replay,
            "seconds": round(time.perf_counter() - start, 1),
            "v": data["version_now"],
        }
        save_json(data, args.output)
        print(
            f"{sampler} seed {seed}: live {live['score']:.4f} ({live['code']}, table "
            f"{live['table_test']:.4f}), replay {replay['score']:.4f} ({replay['code']}) "
            f"in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return 0


# ------------------------------------------------------------------------------------------
# report: statistics


def bootstrap_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean (:data:`BOOTSTRAP` resamples)."""
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), size=(BOOTSTRAP, len(arr)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def wilcoxon_p(values: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p of ``values`` against 0 (1 when all are 0)."""
    from scipy.stats import wilcoxon

    arr = np.round(np.asarray(values, dtype=float), 9)
    if not np.any(arr):
        return 1.0
    return float(wilcoxon(arr, zero_method="zsplit").pvalue)


def _cells(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(data["cells"].values(), key=lambda c: (c["seed"], c["sampler"]))


def agreement(data: Mapping[str, Any]) -> dict[str, Any]:
    """The summary statistics of the check.

    Returns:
        ``n``; ``difference`` (live − replay score: mean, 95 % bootstrap CI, Wilcoxon p,
        mean absolute, wins/ties/losses of live); ``snap`` (live score − the table's test of
        the live plan's grid point) and ``search`` (that table test − the replay score), each
        with mean, CI and mean absolute; ``noise_sd`` (the SD expected for the difference of
        two independent scores) and ``expected_abs`` (the mean absolute difference noise alone
        gives, ``noise_sd`` · √(2/π)); ``agree`` (the verdict's rule).
    """
    cells = _cells(data)
    diff = [c["live"]["score"] - c["replay"]["score"] for c in cells]
    snap = [c["live"]["score"] - c["live"]["table_test"] for c in cells]
    search = [c["live"]["table_test"] - c["replay"]["score"] for c in cells]
    noise_sd = float(data["noise"]["score_difference_sd"])
    result: dict[str, Any] = {"n": len(cells), "noise_sd": noise_sd}
    result["expected_abs"] = noise_sd * math.sqrt(2 / math.pi)
    for name, values in (("difference", diff), ("snap", snap), ("search", search)):
        result[name] = {
            "mean": float(np.mean(values)),
            "ci": bootstrap_ci(values),
            "mean_abs": float(np.mean(np.abs(values))),
            "p": wilcoxon_p(values),
        }
    d = np.round(np.asarray(diff), 9)
    result["difference"]["wins"] = (int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum()))
    low, high = result["difference"]["ci"]
    result["agree"] = bool(
        -noise_sd <= low and high <= noise_sd and result["difference"]["p"] >= ALPHA
    )
    return result


def verdict(stats: Mapping[str, Any]) -> str:
    """The verdict in one paragraph, from :func:`agreement`'s statistics."""
    d, sd = stats["difference"], stats["noise_sd"]
    low, high = d["ci"]
    shown = f"{d['mean']:+.4f} [{low:+.4f}, {high:+.4f}]"
    if stats["agree"]:
        return (
            f"**The replay agrees with reality within the table's seed noise**: the mean "
            f"live − replay difference {shown} lies within ± {sd:.4f} (one SD of the "
            f"difference of two independent scores) and is not significant (Wilcoxon "
            f"p = {d['p']:.2g})."
        )
    reasons = []
    beyond = max(abs(low), abs(high)) - sd
    if beyond > 0:
        reasons.append(f"its 95 % interval reaches {beyond:.4f} beyond ± {sd:.4f}")
    if d["p"] < ALPHA:
        reasons.append(f"the Wilcoxon test is significant (p = {d['p']:.2g})")
    return (
        f"**The replay does not agree with reality within the table's seed noise**: the mean "
        f"live − replay difference is {shown}; {' and '.join(reasons)}."
    )


# ------------------------------------------------------------------------------------------
# report: markdown


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _plan_text(multipliers: Mapping[str, float], blocks: Sequence[str]) -> str:
    """The multipliers in block order (the JSON keeps them sorted by name); – frozen."""
    return " ".join("–" if multipliers[b] == 0 else f"×{multipliers[b]:.2g}" for b in blocks)


def cell_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """One row per cell."""
    rows = []
    for c in _cells(data):
        live, replay = c["live"], c["replay"]
        again = data["reproduced"].get(live["code"], {})
        rows.append(
            [
                c["sampler"],
                str(c["seed"]),
                _plan_text(live["multipliers"], data["table"]["blocks"]),
                f"`{live['code']}`",
                f"{live['score']:.4f}",
                f"{live['table_test']:.4f}",
                f"{again['test']:.4f}" if again else "—",
                f"`{replay['code']}`",
                f"{replay['score']:.4f}",
                f"{live['score'] - replay['score']:+.4f}",
                f"{c['seconds']:.0f}",
            ]
        )
    return rows


def _noise_lines(data: Mapping[str, Any]) -> list[str]:
    n, table = data["noise"], data["table"]
    return [
        "## The table's seed noise",
        "",
        f"`{table['file']}` (sha256 {table['sha256']}): {table['plans']} plans × "
        f"{table['n_folds']} folds × training seed(s) {table['seeds']}, {table['max_epochs']} "
        "epochs. Over its plans, the test accuracy of a plan's two runs (fold 0 − fold 1, the "
        f"same training seed) differs by {n['run_difference_mean']:+.4f} on average, with SD "
        f"**{n['run_difference_sd']:.4f}** ({n['plans']} plans). So one run's SD is "
        f"{n['run_sd']:.4f}, a score's (the mean of the two runs) {n['score_sd']:.4f}, and the "
        "difference of two independent scores of the same plan has SD "
        f"**{n['score_difference_sd']:.4f}**: the yardstick below.",
        "",
    ]


def _summary_lines(stats: Mapping[str, Any]) -> list[str]:
    d, snap, search = stats["difference"], stats["snap"], stats["search"]

    def row(name: str, s: Mapping[str, Any]) -> list[str]:
        low, high = s["ci"]
        return [
            name,
            f"{s['mean']:+.4f} [{low:+.4f}, {high:+.4f}]",
            f"{s['mean_abs']:.4f}",
            f"{s['p']:.2g}",
        ]

    header = [
        f"difference (n = {stats['n']} cells)",
        "mean [95 % bootstrap CI]",
        "mean absolute",
        "Wilcoxon p",
    ]
    rows = [
        row("live − replay (the check)", d),
        row("snapped-plan gap: live − table test of its grid point", snap),
        row("search: table test of the live grid point − replay", search),
    ]
    wins, ties, losses = d["wins"]
    return [
        "## Summary",
        "",
        _markdown(header, rows),
        f"Live above / equal to / below replay: {wins} / {ties} / {losses}. Mean |live − "
        f"replay| = {d['mean_abs']:.4f}, against the table's noise SD of the difference of two "
        f"scores {stats['noise_sd']:.4f} (noise alone gives a mean |difference| of "
        f"{stats['expected_abs']:.4f}). The two lower rows split the difference: the first "
        "is what scoring the study's own (continuous) plan rather than its grid point "
        "changes, the second what the live search recommended differently, in the table's "
        "units.",
        "",
        "## Verdict",
        "",
        verdict(stats),
        "",
    ]


def _reproduced_lines(data: Mapping[str, Any]) -> list[str]:
    again = data["reproduced"]
    if not again:
        return []
    worst = max(a["max_run_difference"] for a in again.values())
    exact = sum(1 for a in again.values() if a["max_run_difference"] == 0)
    return [
        f"Reproduction check: the {len(again)} grid points the live studies recommended, "
        "trained again exactly as the recorder trained them (same folds, training seed, "
        f"threads setting): {exact} reproduce the table's runs exactly; the largest difference "
        f"of one run's test accuracy is {worst:.4f}.",
        "",
    ]


def _report_command(output: Path) -> str:
    words = [".venv/bin/python", "benchmarks/replay_agreement.py", "report"]
    if output.resolve() != (ROOT / OUTPUT).resolve():
        words += ["--input", _relative(output)]
    return " ".join(words)


def report(data: Mapping[str, Any], output: Path) -> str:
    """The markdown report of the check's JSON."""
    stats = agreement(data)
    header = [
        "sampler",
        "seed",
        "live plan (" + " ".join(data["table"]["blocks"]) + ")",
        "its grid point",
        "live score",
        "table test of the grid point",
        "grid point retrained",
        "replay's grid point",
        "replay score",
        "live − replay",
        "s",
    ]
    lines = [
        "# Replay agreement: live and replayed studies on the task of one table",
        "",
        f"Regenerate: `{_report_command(output)}`; the check itself: `{data['command']}`"
        + (
            " (**smoke run**: fewer images, not comparable with the table)"
            if data["smoke"]
            else ""
        )
        + ".  ",
        f"{data['settings']['trials']} trials per study on `{data['settings']['spec']}`. A "
        "live study's score: its recommended plan (continuous learning rates) trained on every "
        "fold with the table's training seeds by the recorder's run, mean test accuracy. A "
        "replayed study's score: the table's recorded test accuracy of its recommended grid "
        "point (as `table_race.py`).  ",
        "Versions: "
        + "; ".join(
            f"#{i} " + ", ".join(f"{k} {v}" for k, v in sorted(v.items()) if v is not None)
            for i, v in enumerate(data["versions"])
        )
        + ".",
        "",
        *_noise_lines(data),
        "## Cells",
        "",
        _markdown(header, cell_rows(data)),
        *_reproduced_lines(data),
        *_summary_lines(stats),
    ]
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------
# command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run or continue the check")
    go.add_argument("--spec", type=Path, default=SPEC)
    go.add_argument("--table", type=Path, default=TABLE)
    go.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    go.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    go.add_argument("--trials", type=int, default=TRIALS)
    go.add_argument("--output", type=Path, default=OUTPUT)
    go.add_argument(
        "--smoke",
        action="store_true",
        help="1 sampler, 1 seed, 4 trials on 32 + 32 images, in a temporary directory",
    )
    rep = sub.add_parser("report", help="write the markdown from the JSON")
    rep.add_argument("--input", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = parse_args(argv)
    if args.command == "run" and args.smoke:
        with tempfile.TemporaryDirectory(prefix="replay-agreement-smoke-") as directory:
            args.samplers, args.seeds, args.trials = [SAMPLERS[-1]], [0], 4
            args.output = Path(directory) / "replay_agreement.json"
            run(args)
            print(report(json.loads(args.output.read_text()), args.output))
        return 0
    if args.command == "run":
        return run(args)
    data = json.loads(args.input.read_text())
    args.input.with_suffix(".md").write_text(report(data, args.input))
    print(f"wrote {_relative(args.input.with_suffix('.md'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
