"""The sampler race scored by what a user gets: the recommended plan, retrained and tested.

On the fine-tune race task (``benchmarks/specs/digits_sampler_race.toml``: EfficientNet-Lite0
-> digits, cut for a CPU) every sampler (BioTune, BioTune-plus, random, QMC, TPE, CMA-ES, GP,
NSGA-II) runs 140 trials per seed. For each study and each budget B (25, 50, 140 trials):

- the **recommended** trial among the study's first B finished trials
  (:func:`biotune_optuna.studies.recommend`, the rule every study gets; it reads
  validation values only, never the test split);
- its plan **retrained on the whole train split** with early stopping on the whole val split
  and tested once per training seed (:func:`~biotune_optuna.studies._retrain.final_evaluation`),
  training seeds 0 and 1 for every study, independent of the study seed: the score is the mean
  of the two macro test accuracies;
- the best validation value observed by B trials (the optimistic number), the best-so-far
  curve, and the trials whose configuration repeats an earlier one's
  (:func:`biotune_optuna.samplers._configurations.duplicate_trials`).

Retrains are cached in ``results/sampler_race_retrains.json`` by (decoded plan, training seed,
protocol), so an interrupted ``score`` continues, and a plan recommended at several budgets or
by several samplers is trained once. The studies are ``paper_table.py samplers``'s (same
storage, same names: ``race``, ``race-seed1``, ``race-random``, ``race-random-seed1``…).

    .venv/bin/python benchmarks/sampler_race.py --threads 1 run --seeds 0,1,2,3,4
    .venv/bin/python benchmarks/sampler_race.py --threads 1 score
    .venv/bin/python benchmarks/sampler_race.py report     # tables again from the JSON
    .venv/bin/python benchmarks/sampler_race.py --smoke    # 2 samplers x 1 seed x 10 trials

Outputs: ``results/sampler_race.md`` and ``results/sampler_race.json`` (one record per study).
The tables come from :func:`race_tables` (``benchmarks/_race_tables.py``), shared with the other
race benchmarks.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))  # paper_table, _race_tables

from _race_tables import race_tables
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import paper_table


__all__ = ["race_tables"]

HERE = paper_table.HERE
RESULTS = paper_table.RESULTS
RACE_SPEC = paper_table.RACE_SPEC
SAMPLERS = paper_table.SAMPLER_ORDER
BUDGETS = (25, 50, 140)
FINAL_SEEDS = (0, 1)
SMOKE_SAMPLERS = ("biotune", "random")
TASK = "finetune race (EfficientNet-Lite0 -> digits)"
SCORE_NAME = "test macro acc. of the recommended plan"
VALUE_NAME = "best val. macro acc. seen"


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE and PRUNED trials in number order: the trials the budget counts."""
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=states)
    return sorted(trials, key=lambda t: t.number)


def best_curve(trials: Sequence[FrozenTrial], *, maximize: bool = True) -> list[float | None]:
    """Best observed value after each trial (``None`` before the first valued one)."""
    best: float | None = None
    curve = []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            value = float(trial.value)
            if best is None or (value > best if maximize else value < best):
                best = value
        curve.append(best)
    return curve


class RetrainCache:
    """Retrain results in a JSON file, written after every retrain (atomically).

    Args:
        path: The file (created on the first :meth:`put`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        stored = json.loads(path.read_text()) if path.is_file() else {}
        self.protocols: dict[str, Any] = stored.get("protocols", {})
        self.retrains: dict[str, Any] = stored.get("retrains", {})

    def put(self, key: str, value: Mapping[str, Any], protocol: tuple[str, Any]) -> None:
        """Store ``value`` under ``key`` (and the protocol it was trained under)."""
        self.retrains[key] = dict(value)
        self.protocols[protocol[0]] = protocol[1]
        payload = {"protocols": self.protocols, "retrains": self.retrains}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, self.path)


def final_protocol(spec: Any, seed: int, epochs: int | None) -> Any:
    """The spec's protocol for one final run: training seed ``seed``, one run, and
    ``epochs`` epochs at most (``None``: the spec's)."""
    changes: dict[str, Any] = {"seed": seed, "n_seeds": 1}
    if epochs is not None:
        changes["max_epochs"] = epochs
    return dataclasses.replace(spec.protocol, **changes)


def protocol_identity(spec: Any, protocol: Any) -> tuple[str, dict[str, Any]]:
    """A short id and the description of what a final run depends on besides plan and seed:
    model, data (and its cut), and the training protocol."""
    from biotune_optuna.finetune._device import resolve_device

    fields = dataclasses.asdict(protocol)
    for key in ("seed", "n_seeds"):
        fields.pop(key)
    fields["device"] = resolve_device(protocol.device).type  # "auto": CUDA or CPU numbers
    description = {
        "model": _stated(spec.model, always=("source", "weights")),
        "data": _stated(spec.data, always=("source", "seed")),
        "protocol": fields,
    }
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10], description


def _stated(section: Any, *, always: tuple[str, ...]) -> dict[str, Any]:
    """A spec section's fields that differ from their defaults, plus ``always``: what the race
    specs' tables state, so that the cache ids of the runs before typed spec sections hold."""
    return {
        field.name: getattr(section, field.name)
        for field in dataclasses.fields(section)
        if field.name in always or getattr(section, field.name) != field.default
    }


def plan_key(objective: Any, params: Mapping[str, Any]) -> str:
    """The decoded plan (learning rate of every block, 0 = frozen; 6 significant digits): two
    genotypes with the same plan train the same model."""
    from biotune_optuna.plan import FineTunePlan

    plan = FineTunePlan.from_params(params, objective.blocks, base_lr=objective.protocol.base_lr)
    return json.dumps({b: float(f"{lr:.6g}") for b, lr in plan.learning_rates.items()})


def retrain_scores(
    objective: Any,
    spec: Any,
    trial: FrozenTrial,
    cache: RetrainCache,
    *,
    epochs: int | None,
    used: set[str],
    say: str,
) -> list[float]:
    """Macro test accuracy of ``trial``'s plan retrained once per :data:`FINAL_SEEDS` (cached;
    the cache keys read go into ``used``)."""
    from biotune_optuna.studies._retrain import final_evaluation
    from biotune_optuna.studies._retrain import test_summary

    plan = plan_key(objective, trial.params)
    scores = []
    for seed in FINAL_SEEDS:
        protocol = final_protocol(spec, seed, epochs)
        identity = protocol_identity(spec, protocol)
        key = f"{identity[0]}|seed={seed}|{plan}"
        if key not in cache.retrains:
            start = time.perf_counter()
            result = final_evaluation(objective, objective.strategy_of(trial.params), protocol)
            summary = test_summary(result)
            entry = {
                "test_macro_accuracy": summary["test_macro_accuracy_per_seed"][0],
                "test_top1_accuracy": summary["test_top1_accuracy_per_seed"][0],
                "val_macro_accuracy": summary["val_macro_accuracy_per_seed"][0],
                "epochs": summary["epochs_per_seed"][0],
                "trainable_fraction": summary["trainable_fraction"],
                "seconds": time.perf_counter() - start,
                "plan": json.loads(plan),
            }
            cache.put(key, entry, identity)
            print(
                f"  retrain {say} seed {seed}: test {entry['test_macro_accuracy']:.4f} "
                f"in {entry['seconds']:.1f} s",
                flush=True,
            )
        used.add(key)
        scores.append(float(cache.retrains[key]["test_macro_accuracy"]))
    return scores


def _recommend() -> Any:
    from biotune_optuna.studies import recommend

    return recommend


def study_record(
    study: optuna.Study,
    sampler: str,
    seed: int,
    budgets: Sequence[int],
    score: Any,
) -> dict[str, Any]:
    """One study's record: recommended trials, their scores (``score(trial)`` -> per-seed
    test accuracies), best observed values, duplicates and the best-so-far curve."""
    from biotune_optuna.samplers._configurations import duplicate_trials
    from biotune_optuna.trials import TRAINED_BLOCKS_ATTR
    from biotune_optuna.trials import WALL_TIME_ATTR

    recommend = _recommend()
    trials = finished_trials(study)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    curve = best_curve(trials, maximize=maximize)
    repeated = duplicate_trials(trials)
    record: dict[str, Any] = {
        "task": TASK,
        "sampler": sampler,
        "seed": seed,
        "study": study.study_name,
        "direction": "maximize" if maximize else "minimize",
        "score_name": SCORE_NAME,
        "value_name": VALUE_NAME,
        "trials": len(trials),
        "duplicates": len(repeated),
        "distinct": len(trials) - len(repeated),
        "duplicate_trials": repeated,
        "empty_plans": sum(t.user_attrs.get(TRAINED_BLOCKS_ATTR) == 0 for t in trials),
        "training_seconds": sum(t.user_attrs.get(WALL_TIME_ATTR, 0.0) for t in trials),
        **{k: {} for k in ("score_at", "score_per_seed_at", "best_val_at", "duplicates_at")},
        **{k: {} for k in ("distinct_at", "recommended_at", "rule_at", "estimate_at")},
        "curve": curve,
    }
    for budget in budgets:
        if len(trials) < budget:
            continue
        key, first = str(budget), trials[:budget]
        last = first[-1].number
        record["best_val_at"][key] = curve[budget - 1]
        record["duplicates_at"][key] = sum(n <= last for n in repeated)
        record["distinct_at"][key] = budget - record["duplicates_at"][key]
        chosen = recommend(first, direction=study.direction)
        if chosen is None:
            continue
        per_seed = score(chosen.trial)
        record["recommended_at"][key] = chosen.trial.number
        record["rule_at"][key] = chosen.rule
        record["estimate_at"][key] = chosen.estimate
        record["score_per_seed_at"][key] = per_seed
        record["score_at"][key] = sum(per_seed) / len(per_seed)
    return record


def _score_trial(
    objective: Any,
    spec: Any,
    cache: RetrainCache,
    trial: FrozenTrial,
    *,
    epochs: int | None,
    used: set[str],
) -> list[float]:
    say = f"{spec.name} #{trial.number}"
    return retrain_scores(objective, spec, trial, cache, epochs=epochs, used=used, say=say)


def score_studies(
    base: Any, args: argparse.Namespace, cache: RetrainCache, used: set[str]
) -> list[dict[str, Any]]:
    """A record for every sampler × seed study that exists (the retrains' keys into ``used``)."""
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import load_study
    from biotune_optuna.studies._session import study_exists

    objective = None
    records = []
    for seed in args.seeds:
        for sampler in args.samplers:
            spec = base.with_overrides(sampler=sampler, seed=seed)
            if not study_exists(spec.storage, spec.name):
                print(f"seed {seed} {sampler}: no study `{spec.name}` yet", flush=True)
                continue
            if objective is None:  # data and blocks are the same for every study
                objective = build_objective(spec)
            study = load_study(spec)

            score = functools.partial(
                _score_trial, objective, spec, cache, epochs=args.final_epochs, used=used
            )
            record = study_record(study, sampler, seed, args.budgets, score)
            records.append(record)
            shown = ", ".join(f"{b}: {v:.4f}" for b, v in record["score_at"].items())
            print(f"seed {seed} {sampler}: {record['trials']} trials, test {shown}", flush=True)
    return records


def retrain_cost(cache: RetrainCache, used: set[str]) -> dict[str, Any]:
    """Unique plans behind the scores, their retrains and the seconds those took."""
    seconds = [cache.retrains[key]["seconds"] for key in used]
    return {
        "unique_plans": len({key.split("|", 2)[2] for key in used}),
        "retrains": len(used),
        "retrain_seconds_total": round(float(sum(seconds)), 1),
        "retrain_seconds_mean": round(float(sum(seconds) / len(seconds)), 2) if seconds else None,
    }


def spec_comments(path: Path) -> str:
    """The comment block at the top of a spec file (how its task is cut for a CPU)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(" ".join(lines).split())


def _protocol_words(description: Mapping[str, Any]) -> str:
    protocol, data = description["protocol"], description["data"]
    return (
        f"{data.get('max_train_images', 'all')} train / {data.get('max_val_images', 'all')} "
        f"val images of `{data.get('source')}` (the whole train and val splits of the task's "
        f"cut; the test split whole), {protocol['image_size']} px, at most "
        f"{protocol['max_epochs']} epoch(s) with the best epoch on val kept (patience "
        f"{protocol['patience']}), batch {protocol['batch_size']}, {protocol['optimizer']} at "
        f"base lr {protocol['base_lr']:g}, device `{protocol['device']}`"
    )


def write_outputs(payload: Mapping[str, Any], stem: Path) -> str:
    """``<stem>.json`` (the payload) and ``<stem>.md`` (its tables); return the markdown."""
    budgets = payload["budgets"]
    cost = payload["retrain_cost"]
    empty = sum(r.get("empty_plans", 0) for r in payload["records"])
    trials = sum(r["trials"] for r in payload["records"])
    text = (
        "# Sampler race: what a user gets (the recommended plan, retrained and tested)\n\n"
        f"Task: `{payload['spec']}`. {payload['task_cut']}\n\n"
        "**Score**: for each study and budget B, the trial that "
        "`biotune_optuna.studies.recommend` picks among the study's first B finished "
        "trials (validation values only; the test split chooses nothing), its plan retrained "
        "on the whole train split with early stopping on the whole val split and tested once "
        f"per training seed; training seeds {', '.join(map(str, payload['final_seeds']))} "
        "for every study, independent of the study seed (study seed k = sampler seed k and "
        "the search's training seed k); score = mean macro test accuracy of the two runs. "
        f"Final runs: {_protocol_words(payload['final_protocol'])}. The optimistic column is "
        "the best validation value the study observed by B trials (the luckiest of noisy "
        "one-fold draws, what `study.best_value` reports). Duplicates: trials whose "
        "configuration repeats an earlier trial's in the same study "
        "(`biotune_optuna.samplers.duplicate_trials`: same cells, continuous genes within "
        "1 %, for BioTune genes the same plan); distinct = trials - duplicates. Plans that "
        "fine-tune no block are all one configuration (never trained, worst value at once): "
        f"{empty} of the {trials} trials here, most of the duplicates of random-like "
        "samplers (`empty_plans` per study in the JSON).\n\n"
        f"{race_tables(payload['records'], budgets, payload['samplers'])}\n"
        f"Retrain cost: {cost['unique_plans']} unique plans x {len(payload['final_seeds'])} "
        f"seeds = {cost['retrains']} final runs, {cost['retrain_seconds_total']} s in all, "
        f"{cost['retrain_seconds_mean']} s each on average (cached in "
        "`benchmarks/results/sampler_race_retrains.json`).\n\n"
        "Commands (resumable; `run` is `paper_table.py samplers`'s runner, same studies):\n\n"
        + "\n".join(f"    {c}" for c in payload["commands"])
        + f"\n\nWritten at commit {payload['commit']}; {payload['machine']}.\n"
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    stem.with_suffix(".md").write_text(text)
    return text


def _commands(args: argparse.Namespace) -> list[str]:
    seeds = ",".join(map(str, args.seeds))
    samplers = ",".join(args.samplers)
    epochs = f" --final-epochs {args.final_epochs}" if args.final_epochs is not None else ""
    script = ".venv/bin/python benchmarks/sampler_race.py --threads 1"
    return [
        f"{script} run --seeds {seeds} --samplers {samplers}",
        f"{script} score --seeds {seeds} --samplers {samplers}{epochs}",
        ".venv/bin/python benchmarks/sampler_race.py report",
    ]


def score(args: argparse.Namespace, base: Any, stem: Path, cache_path: Path) -> None:
    """Score every study that exists and write the tables."""
    cache = RetrainCache(cache_path)
    used: set[str] = set()
    records = score_studies(base, args, cache, used)
    payload = {
        "task": TASK,
        "spec": str(base.path.relative_to(HERE.parent)) if base.path else "<spec>",
        "task_cut": spec_comments(base.path) if base.path else "",
        "samplers": list(args.samplers),
        "seeds": list(args.seeds),
        "budgets": list(args.budgets),
        "final_seeds": list(FINAL_SEEDS),
        "final_protocol": protocol_identity(base, final_protocol(base, 0, args.final_epochs))[1],
        "retrain_cost": retrain_cost(cache, used),
        "commands": getattr(args, "commands", None) or _commands(args),
        "commit": paper_table._commit(),
        "machine": paper_table._machine(),
        "records": records,
    }
    print(write_outputs(payload, stem))


def smoke(args: argparse.Namespace) -> None:
    """Everything in a minute: 2 samplers x 1 seed x 10 trials on 64 + 64 images, in a
    temporary directory (the results in ``benchmarks/results`` are left alone)."""
    from biotune_optuna.studies import load_spec

    base = load_spec(args.spec).with_overrides(trials=10)
    with tempfile.TemporaryDirectory(prefix="sampler-race-smoke-") as directory:
        base = dataclasses.replace(
            base,
            storage=f"sqlite:///{directory}/smoke.db",
            data={**base.data, "max_train_images": 64, "max_val_images": 64},
        )
        args.samplers, args.seeds, args.budgets = list(SMOKE_SAMPLERS), [0], [5, 10]
        paper_table.run_race(base, args.samplers, args.seeds)
        args.commands = [".venv/bin/python benchmarks/sampler_race.py --threads 1 --smoke"]
        score(args, base, Path(directory) / "sampler_race", Path(directory) / "retrains.json")


def _stem(args: argparse.Namespace) -> Path:
    suffix = f"_e{args.final_epochs}" if args.final_epochs is not None else ""
    return RESULTS / f"sampler_race{suffix}"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line, and the options every part shares (defaults of ``--smoke``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", type=Path, default=RACE_SPEC)
    common.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4])
    common.add_argument("--samplers", type=lambda t: t.split(","), default=list(SAMPLERS))
    common.add_argument("--budgets", type=_ints, default=list(BUDGETS))
    common.add_argument(
        "--final-epochs",
        type=int,
        default=None,
        help="epochs of the final runs (default: the spec's; other values write "
        "sampler_race_e<N>.md/json)",
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--smoke", action="store_true", help="2 samplers x 1 seed x 10 trials, in a minute"
    )
    sub = parser.add_subparsers(dest="part")
    sub.add_parser("run", parents=[common], help="run or resume the race's studies")
    sub.add_parser("score", parents=[common], help="retrain recommended plans, write tables")
    sub.add_parser("report", parents=[common], help="the tables again from the JSON")
    return parser, common


def main() -> None:
    parser, common = _parser()
    args = parser.parse_args()
    if args.part is None:
        if not args.smoke:
            parser.error("give run, score, report or --smoke")
        args = common.parse_args([], namespace=args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.smoke:
        smoke(args)
        return
    if args.part == "report":
        payload = json.loads(_stem(args).with_suffix(".json").read_text())
        print(write_outputs(payload, _stem(args)))
        return
    from biotune_optuna.studies import load_spec

    base = load_spec(args.spec)
    if args.part == "run":
        paper_table.run_race(base, args.samplers, args.seeds)
    elif args.part == "score":
        score(args, base, _stem(args), RESULTS / "sampler_race_retrains.json")


if __name__ == "__main__":
    main()
