"""Epoch time of plans that freeze the first k blocks, with and without the prefix cache.

For the offline default (ImageNet EfficientNet-Lite0 -> scikit-learn digits) and each k = 0..B-1,
the plan freezes blocks 0..k-1 and trains the rest at the base learning rate. Three timings per k,
each one epoch = training on the train split + validation on the val split:

- ``no cache``: the engine without the feature cache (the frozen prefix runs every batch,
  without autograd);
- ``cached``: the engine with the cache (epochs after the first; the first builds the cache);
- ``ideal``: only the trainable suffix, trained and validated on features already in memory in
  contiguous batches (what no cache can beat).

Target (issue 3): cached epoch <= 1.2x ideal. Results go to ``benchmarks/results/``.

    .venv/bin/python benchmarks/finetune_throughput.py              # 64 px, CPU
    .venv/bin/python benchmarks/finetune_throughput.py --backbone torchvision:resnet50 \\
        --weights none --image-size 224 --device cuda                # GPU figures
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
from pathlib import Path
import platform
import statistics
import time

import numpy as np
import torch

from biotune_optuna.finetune import digits
from biotune_optuna.finetune import load_backbone
from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._apply import apply_plan
from biotune_optuna.finetune._apply import set_train_mode
from biotune_optuna.finetune._cache import FeatureCache
from biotune_optuna.finetune._device import resolve_device
from biotune_optuna.finetune._splits import DataSplit
from biotune_optuna.finetune._training import evaluate_plan
from biotune_optuna.plan import FineTunePlan


RESULTS = Path(__file__).resolve().parent / "results"


def _plan(blocks: tuple[str, ...], k: int) -> FineTunePlan:
    return FineTunePlan(blocks, tuple([0.0] * k + [0.5] * (len(blocks) - k)), threshold=0.25)


def _engine_epochs(backbone, plan, train, val, protocol, cache) -> list[float]:  # type: ignore[no-untyped-def]
    marks = [time.perf_counter()]
    evaluate_plan(
        backbone,
        plan,
        train,
        val,
        protocol,
        num_classes=10,
        cache=cache,
        report=lambda epoch, value: marks.append(time.perf_counter()),
    )
    return [b - a for a, b in itertools.pairwise(marks)]


def _ideal_epoch(backbone, plan, train, val, protocol, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Train + validate only the suffix on in-memory prefix features, contiguous batches."""
    device = resolve_device(protocol.device)
    k = plan.frozen_prefix
    stages = list(backbone.layout.stages or [])
    model, stages = copy.deepcopy((backbone.model, stages))
    model.to(device)
    prefix = [m for b, m in stages if b < k]
    suffix = [m for b, m in stages if b >= k]
    mean = torch.tensor(backbone.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(backbone.std, device=device).view(1, -1, 1, 1)

    def features(split: DataSplit) -> tuple[torch.Tensor, torch.Tensor]:
        x = split.dataset.images[torch.as_tensor(split.indices)].to(device)  # type: ignore[attr-defined]
        model.eval()
        with torch.no_grad():
            x = (x - mean) / std
            for module in prefix:
                x = module(x)
        return x.contiguous(), torch.as_tensor(split.labels, device=device)

    (xt, yt), (xv, _) = features(train), features(val)
    optimizer = torch.optim.Adam(apply_plan(model, backbone.layout, plan))
    # The engine's bf16 autocast on CUDA, for a like-for-like comparison.
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        set_train_mode(model, backbone.layout, plan.freeze_mask)
        for i in range(0, len(xt), protocol.batch_size):
            out = xt[i : i + protocol.batch_size]
            with autocast:
                for module in suffix:
                    out = module(out)
            loss = torch.nn.functional.cross_entropy(out.float(), yt[i : i + protocol.batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(xv), protocol.eval_batch_size):
                out = xv[i : i + protocol.eval_batch_size]
                with autocast:
                    for module in suffix:
                        out = module(out)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", default="DEFAULT", help="'none' for random weights")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="engine epochs per timing (>= 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-images", type=int, default=0, help="0: the whole train split")
    parser.add_argument("--output", default="finetune_throughput")
    args = parser.parse_args()

    torch.manual_seed(0)
    data = digits(image_size=args.image_size)
    weights = None if args.weights.lower() == "none" else args.weights
    backbone = load_backbone(args.backbone, num_classes=10, weights=weights)
    n_train = args.train_images or len(data.train)
    train = DataSplit(data.train, np.arange(n_train), data.train_labels[:n_train], ("train",))
    val = DataSplit(data.val, np.arange(len(data.val)), data.val_labels, ("val",))
    protocol = TrainingProtocol(
        max_epochs=args.epochs,
        patience=args.epochs,
        n_seeds=1,
        batch_size=args.batch_size,
        image_size=args.image_size,
        device=args.device,
    )
    blocks = backbone.blocks
    rows = []
    header = (
        f"{'k':>2} {'frozen up to':<12} {'trainable':>9} {'no cache s':>10} {'1st cached s':>12} "
        f"{'cached s':>9} {'ideal s':>8} {'cached/ideal':>12} {'no cache/ideal':>14} {'img/s':>7}"
    )
    print(
        f"{backbone.name} -> {data.name}, {n_train} train / {len(val)} val images, "
        f"batch {args.batch_size}, device {args.device}, torch {torch.__version__}"
    )
    print(header)
    for k in range(len(blocks)):
        plan = _plan(blocks, k)
        uncached_split = DataSplit(train.dataset, train.indices, train.labels, None)
        uncached_val = DataSplit(val.dataset, val.indices, val.labels, None)
        no_cache = _engine_epochs(backbone, plan, uncached_split, uncached_val, protocol, None)
        cached = _engine_epochs(backbone, plan, train, val, protocol, FeatureCache(8 * 2**30))
        ideal = _ideal_epoch(backbone, plan, train, val, protocol, repeats=args.epochs - 1)
        counts = backbone.layout.parameter_counts(backbone.model)
        row = {
            "k": k,
            "frozen_up_to": blocks[k - 1] if k else "-",
            "trainable_fraction": sum(counts[k:]) / sum(counts),
            "no_cache_s": statistics.median(no_cache[1:]),
            "first_cached_s": cached[0],
            "cached_s": statistics.median(cached[1:]),
            "ideal_s": ideal,
        }
        row["cached_over_ideal"] = row["cached_s"] / row["ideal_s"]
        row["no_cache_over_ideal"] = row["no_cache_s"] / row["ideal_s"]
        row["cached_images_per_s"] = n_train / row["cached_s"]
        rows.append(row)
        print(
            f"{k:>2} {row['frozen_up_to']:<12} {100 * row['trainable_fraction']:>8.1f}% "
            f"{row['no_cache_s']:>10.2f} {row['first_cached_s']:>12.2f} {row['cached_s']:>9.2f} "
            f"{row['ideal_s']:>8.2f} {row['cached_over_ideal']:>12.2f} "
            f"{row['no_cache_over_ideal']:>14.2f} {row['cached_images_per_s']:>7.0f}",
            flush=True,
        )
    meta = {
        "backbone": backbone.name,
        "data": data.name,
        "train_images": n_train,
        "val_images": len(val),
        "batch_size": args.batch_size,
        "device": args.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2)
    )
    lines = [
        f"# Fine-tuning epoch time: {backbone.name} -> {data.name}",
        "",
        f"{n_train} train + {len(val)} val images per epoch, batch {args.batch_size}, device "
        f"{args.device}{' (' + meta['gpu'] + ')' if meta['gpu'] else ''}, "
        f"torch {torch.__version__}, "
        f"{meta['threads']} threads. Medians of epochs 2..{args.epochs}. Plan k freezes blocks "
        "0..k-1. Command: `.venv/bin/python benchmarks/finetune_throughput.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "output")
        + "`",
        "",
        "| k | frozen up to | trainable | no cache (s) | 1st cached epoch (s) | cached (s) "
        "| ideal (s) | cached / ideal | no cache / ideal | cached img/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['frozen_up_to']} | {100 * r['trainable_fraction']:.1f}% "
            f"| {r['no_cache_s']:.2f} | {r['first_cached_s']:.2f} | {r['cached_s']:.2f} "
            f"| {r['ideal_s']:.2f} | {r['cached_over_ideal']:.2f} "
            f"| {r['no_cache_over_ideal']:.2f} "
            f"| {r['cached_images_per_s']:.0f} |"
        )
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / (args.output + '.md')}")


if __name__ == "__main__":
    main()
