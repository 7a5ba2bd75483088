"""Three hand-made plans on the offline default task, against the figures measured in research.

ImageNet EfficientNet-Lite0 -> scikit-learn digits at 64 px, stratified 1437 train / 360 test
(seed 0), batch 32, 3 epochs, Adam at 1e-3 (research used AdamW, same lr), frozen blocks in eval
mode. Research figures (``../shared/docs/environment.md``, one run each): head only 92.5 %, stem +
8/16 blocks frozen 97.2 %, full fine-tune 95.0 %.

Plans here (block names of the engine's Lite0 rule):

- ``classifier only``: everything but the new linear classifier frozen (research's "head only");
- ``head block``: the engine's last block, conv_head + bn2 + classifier;
- ``first half frozen``: stem and stages 1-4 (= 8 of the 16 inverted-residual blocks) frozen;
- ``full``: nothing frozen.

Accuracy is on the 360 held-out images after the 3rd epoch (no selection on them), mean ± std
over seeds.

    .venv/bin/python benchmarks/digits_reference_plans.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

import numpy as np
import torch

from biotune_optuna.finetune import digits
from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.plan import FineTunePlan


RESULTS = Path(__file__).resolve().parent / "results"
RESEARCH = {"classifier only": 0.925, "first half frozen": 0.972, "full": 0.950}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    data = digits(image_size=64, val_fraction=0.2, test_fraction=0.0, seed=0)
    train = DataSplit(data.train, np.arange(len(data.train)), data.train_labels, None)
    held_out = DataSplit(data.val, np.arange(len(data.val)), data.val_labels, None)
    protocol = TrainingProtocol(
        max_epochs=args.epochs,
        patience=args.epochs,
        n_seeds=args.seeds,
        batch_size=32,
        image_size=64,
        feature_cache_mb=0,
    )
    default = load_backbone(num_classes=10)
    names = [n for n, _ in default.model.named_children() if n != "classifier"]
    two_blocks = load_backbone(num_classes=10, blocks={"features": names, "head": ["classifier"]})
    b = default.blocks
    plans = {
        "classifier only": (two_blocks, FineTunePlan(two_blocks.blocks, (0.0, 0.5), 0.25)),
        "head block": (default, FineTunePlan(b, (0.0,) * (len(b) - 1) + (0.5,), 0.25)),
        "first half frozen": (default, FineTunePlan(b, (0.0,) * 5 + (0.5,) * (len(b) - 5), 0.25)),
        "full": (default, FineTunePlan(b, (0.5,) * len(b), 0.25)),
    }
    print(
        f"Lite0 -> {data.name}: {len(train)} train / {len(held_out)} held-out, batch 32, "
        f"{args.epochs} epochs, {args.seeds} seeds, torch {torch.__version__}"
    )
    print(f"{'plan':<18} {'trainable':>9} {'accuracy':>16} {'research':>8} {'s/seed':>7}")
    rows = []
    for name, (backbone, plan) in plans.items():
        start = time.perf_counter()
        result = evaluate_plan(backbone, plan, train, held_out, protocol, num_classes=10)
        seconds = (time.perf_counter() - start) / args.seeds
        final = [run.history[-1] for run in result.runs]
        row = {
            "plan": name,
            "frozen": list(plan.frozen),
            "trainable_fraction": result.trainable_fraction,
            "accuracy_mean": float(np.mean(final)),
            "accuracy_std": float(np.std(final)),
            "per_seed": final,
            "research": RESEARCH.get(name),
            "seconds_per_seed": seconds,
        }
        rows.append(row)
        research = f"{100 * row['research']:.1f}%" if row["research"] else "-"
        print(
            f"{name:<18} {100 * row['trainable_fraction']:>8.1f}% "
            f"{100 * row['accuracy_mean']:>9.1f} ± {100 * row['accuracy_std']:.1f}% "
            f"{research:>8} {seconds:>7.1f}",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "digits_reference_plans.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "# Reference plans: EfficientNet-Lite0 (ImageNet) -> digits at 64 px",
        "",
        f"{len(train)} train / {len(held_out)} held-out images (stratified, seed 0), batch 32, "
        f"{args.epochs} epochs, Adam 1e-3, {args.seeds} seeds; macro accuracy on the held-out "
        f"images after the last epoch. torch {torch.__version__}, CPU. Command: "
        f"`.venv/bin/python benchmarks/digits_reference_plans.py --seeds {args.seeds}`",
        "",
        "| plan | frozen | trainable | accuracy (mean ± std) | research (1 run) | s per seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        research = f"{100 * r['research']:.1f} %" if r["research"] else "–"
        lines.append(
            f"| {r['plan']} | {', '.join(r['frozen']) or '–'} "
            f"| {100 * r['trainable_fraction']:.1f} % "
            f"| {100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f} % | {research} "
            f"| {r['seconds_per_seed']:.0f} |"
        )
    (RESULTS / "digits_reference_plans.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / 'digits_reference_plans.md'}")


if __name__ == "__main__":
    main()
