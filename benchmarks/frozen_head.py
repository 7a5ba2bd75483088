"""What freezing the new classifier costs on the demo: the paper's genes against
``always_train_head = true``.

The paper's genes give the head block an importance gene like any other (arXiv:2508.15367), so
a plan may freeze the newly initialised classifier; ``[protocol] always_train_head = true``
trains it whatever the genes say. For each study seed, this runs the demo study
(``studies/demo.toml``, a fresh copy in a temporary directory) both ways through the CLI,
retrains each study's recommended plan on the whole train split and tests it once
(``biotune-optuna retrain``), and writes the test macro accuracy per seed, whether the
recommended plan froze the head, and the search seconds to
``benchmarks/results/frozen_head.md`` (and ``.json``):

    .venv/bin/python benchmarks/frozen_head.py --seeds 0,1,2    # ~15 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = {"paper genes": False, "always_train_head = true": True}


def spec_text(always_train_head: bool) -> str:
    """The demo spec, with ``always_train_head`` set and its study named after the setting."""
    text = (ROOT / "studies" / "demo.toml").read_text()
    suffix = "-head" if always_train_head else ""
    text = re.sub(r'(?m)^name = "([^"]+)"', rf'name = "\1{suffix}"', text, count=1)
    value = "true" if always_train_head else "false"
    return text.replace("[protocol]", f"[protocol]\nalways_train_head = {value}", 1)


def _cli(*arguments: str) -> str:
    command = [sys.executable, "-m", "biotune_optuna.cli", *arguments]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def measure(directory: Path, seed: int, always_train_head: bool) -> dict[str, object]:
    """Run the demo study of ``seed`` one way, retrain its recommended plan, test it."""
    spec = directory / f"demo{'-head' if always_train_head else ''}.toml"
    spec.write_text(spec_text(always_train_head))
    start = time.perf_counter()
    best = _cli("run", str(spec), "--seed", str(seed))
    search = time.perf_counter() - start
    output = directory / "retrained" / f"{spec.stem}-seed{seed}"
    _cli("retrain", str(spec), "--seed", str(seed), "--output", str(output), "-q")
    results = json.loads((output / "results.json").read_text())
    return {
        "seed": seed,
        "always_train_head": always_train_head,
        "test_macro_accuracy": results["test_macro_accuracy_mean"],
        "recommended_froze_head": "warning: this plan freezes" in best,
        "trainable_fraction": results["trainable_fraction"],
        "search_s": round(search, 1),
    }


def write(rows: list[dict[str, object]], out: Path) -> None:
    """The table (mean ± std over seeds per setting) and every row as JSON."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "frozen_head.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| setting | test macro accuracy, mean ± std | per seed | recommended plan froze head |",
        "|---|---|---|---|",
    ]
    for label, flag in SETTINGS.items():
        mine = [r for r in rows if r["always_train_head"] == flag]
        accuracy = [100 * float(r["test_macro_accuracy"]) for r in mine]
        spread = f" ± {statistics.stdev(accuracy):.2f}" if len(accuracy) > 1 else ""
        per_seed = ", ".join(f"{a:.2f}" for a in accuracy)
        froze = sum(bool(r["recommended_froze_head"]) for r in mine)
        lines.append(
            f"| {label} | {statistics.mean(accuracy):.2f}{spread} | {per_seed} | "
            f"{froze} of {len(mine)} |"
        )
    seeds = sorted({int(r["seed"]) for r in rows})
    text = (
        "# What freezing the new classifier costs on the demo\n\n"
        f"`python benchmarks/frozen_head.py --seeds {','.join(map(str, seeds))}`: the demo "
        "study (`studies/demo.toml`) per study seed, with the paper's genes and with "
        "`[protocol] always_train_head = true`; each study's recommended plan retrained on the "
        "whole train split and tested once (`biotune-optuna retrain`).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    (out / "frozen_head.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated study seeds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="frozen-head-") as tmp:
        for seed in map(int, args.seeds.split(",")):
            for flag in SETTINGS.values():
                rows.append(measure(Path(tmp), seed, flag))
                print(json.dumps(rows[-1]), flush=True)
    write(rows, args.out)
    print((args.out / "frozen_head.md").read_text())


if __name__ == "__main__":
    main()
