"""The ``biotune-optuna`` command line.

Exit codes: 0 success, 2 bad input, 1 any other failure.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import logging
from pathlib import Path
import sys
from typing import Any

import optuna

from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import importance_param
from biotune_optuna.samplers import learning_rate_multiplier
from biotune_optuna.samplers import selected_blocks
from biotune_optuna.samplers import THRESHOLD_PARAM
from biotune_optuna.synthetic import SyntheticFineTuning


DEFAULT_DEMO_STORAGE = "sqlite:///studies/demo.db"


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biotune-optuna",
        description="BioTune (arXiv:2508.15367): search what to fine-tune, as an Optuna sampler.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="run (or resume) a short offline BioTune study: EfficientNet-Lite0 -> digits",
        description=(
            "Run a short BioTune study offline: which blocks of an ImageNet-pretrained "
            "EfficientNet-Lite0 to fine-tune, and at what learning rate, on scikit-learn's "
            "handwritten digits. The study is stored, so running the command again resumes it. "
            "--objective synthetic runs the same genes on a cheap synthetic landscape instead."
        ),
    )
    demo.add_argument("--storage", default=DEFAULT_DEMO_STORAGE, help="Optuna storage URL")
    demo.add_argument("--study-name", default=None, help="default: by objective")
    demo.add_argument(
        "--objective",
        choices=("finetune", "synthetic"),
        default="finetune",
        help="fine-tune Lite0 on digits (default), or the synthetic landscape (seconds)",
    )
    demo.add_argument(
        "--generations",
        type=_positive_int,
        default=None,
        help="generations after the initial population (default: 2 fine-tuning, 10 synthetic)",
    )
    demo.add_argument(
        "--population", type=_positive_int, default=None, help="N (default: 6 fine-tuning, 10)"
    )
    demo.add_argument(
        "--elites", type=_positive_int, default=None, help="E (default: 2 fine-tuning, 3)"
    )
    demo.add_argument("--epochs", type=_positive_int, default=2, help="epochs per training run")
    demo.add_argument("--image-size", type=_positive_int, default=64, help="digit image side")
    demo.add_argument("--seed", type=int, default=0, help="seed of the sampler and training")
    demo.add_argument("--landscape-seed", type=int, default=0, help="seed of the landscape")
    demo.add_argument("-q", "--quiet", action="store_true", help="print only the best plan")
    return parser


def _prepare_sqlite_dir(storage: str) -> None:
    prefix = "sqlite:///"
    if storage.startswith(prefix):
        path = Path(storage[len(prefix) :])
        if not path.parent.exists():
            raise UsageError(f"directory of the SQLite file does not exist: {path.parent}")


def _finetune_objective(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]]:
    if args.image_size < 32:
        raise UsageError(f"--image-size must be at least 32, got {args.image_size}")
    from biotune_optuna.finetune import digits
    from biotune_optuna.finetune import FineTuneObjective
    from biotune_optuna.finetune import load_backbone
    from biotune_optuna.finetune import TrainingProtocol

    data = digits(image_size=args.image_size, seed=0)
    backbone = load_backbone(num_classes=data.num_classes)
    protocol = TrainingProtocol(
        max_epochs=args.epochs,
        n_seeds=1,
        batch_size=32,
        image_size=args.image_size,
        seed=args.seed,
    )
    objective = FineTuneObjective(
        backbone, data, protocol, population_size=args.population, n_elites=args.elites
    )
    return objective, objective.blocks


def _run_demo(args: argparse.Namespace) -> int:
    finetune = args.objective == "finetune"
    args.generations = args.generations or (2 if finetune else 10)
    args.population = args.population or (6 if finetune else 10)
    args.elites = args.elites or (2 if finetune else 3)
    if args.elites >= args.population:
        raise UsageError(f"--elites ({args.elites}) must be below --population")
    name = args.study_name or ("biotune-lite0-digits" if finetune else "biotune-synthetic-demo")
    _prepare_sqlite_dir(args.storage)
    if finetune:
        objective, blocks = _finetune_objective(args)
        search_space = objective.search_space
    else:
        objective = SyntheticFineTuning(seed=args.landscape_seed)
        blocks, search_space = objective.blocks, None
    sampler = BioTuneSampler(
        population_size=args.population,
        n_elites=args.elites,
        search_space=search_space,
        seed=args.seed,
    )
    target = sampler.trial_budget(args.generations)
    study = optuna.create_study(
        storage=args.storage,
        study_name=name,
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),  # the paper trains every plan to its end
        direction="maximize",
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(f"study `{name}` exists and is not maximising")
    done = len(study.trials)
    remaining = max(0, target - done)
    if not args.quiet:
        what = (
            f"EfficientNet-Lite0 (ImageNet) -> digits at {args.image_size} px, "
            f"{args.epochs} epochs per trial"
            if finetune
            else "the synthetic landscape"
        )
        print(
            f"study `{name}` in {args.storage} ({what}): {done} trials stored, "
            f"running {remaining} more to reach {target} ({args.generations} generations)"
        )
    callbacks = [] if args.quiet or not finetune else [_print_trial]
    if remaining:
        study.optimize(objective, n_trials=remaining, callbacks=callbacks)
    if not args.quiet:
        _print_generations(study)
    if finetune:
        _print_best_plan(study, blocks)
    else:
        _print_best(study, objective)
    return 0


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    attrs = trial.user_attrs
    value = "failed" if trial.value is None else f"val macro acc {trial.value:.4f}"
    print(
        f"trial {trial.number:>3}  generation {attrs.get('generation', '?')}  "
        f"{attrs.get('role', ''):<9} fold {attrs.get('fold', '?')}  {value}  "
        f"trainable {100 * attrs.get('trainable_fraction', 0):5.1f}%  "
        f"{attrs.get('wall_time_s', 0):6.1f} s",
        flush=True,
    )


def _print_generations(study: optuna.Study) -> None:
    rows: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        if "generation" in t.user_attrs:
            rows.setdefault(int(t.user_attrs["generation"]), []).append(t)
    print("\ngeneration  trials  best in generation  best so far")
    best_so_far = float("-inf")
    for g in sorted(rows):
        values = [t.value for t in rows[g] if t.value is not None]
        best = max(values) if values else float("nan")
        best_so_far = max(best_so_far, best)
        print(f"{g:>10}  {len(rows[g]):>6}  {best:>18.4f}  {best_so_far:>11.4f}")


def _print_best_plan(study: optuna.Study, blocks: Sequence[str]) -> None:
    from biotune_optuna.plan import FineTunePlan

    best = study.best_trial
    plan = FineTunePlan.from_params(best.params, blocks)
    attrs = best.user_attrs
    print(
        f"\nbest trial #{best.number}: validation macro accuracy {best.value:.4f} "
        f"(fold {attrs.get('fold')}), {100 * attrs.get('trainable_fraction', 0):.1f}% of the "
        f"parameters trained"
    )
    print(f"freeze threshold {plan.threshold:.3f}")
    print(plan.describe())


def _print_best(study: optuna.Study, objective: SyntheticFineTuning) -> None:
    best = study.best_trial
    print(
        f"\nbest trial #{best.number}: accuracy {best.value:.4f} "
        f"(landscape optimum {objective.best_possible():.4f})"
    )
    trained = set(selected_blocks(best.params))
    print(f"freeze threshold {best.params[THRESHOLD_PARAM]:.3f}")
    print("block     importance  plan")
    for block in objective.blocks:
        nu = best.params[importance_param(block)]
        plan = (
            f"fine-tune, lr x{learning_rate_multiplier(nu):.3g}" if block in trained else "frozen"
        )
        print(f"{block:<9} {nu:>10.3f}  {plan}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biotune-optuna`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)  # exits with 2 on bad arguments
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        return _run_demo(args)
    except (UsageError, ValueError) as exc:
        print(f"biotune-optuna: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biotune-optuna: interrupted; run the same command to resume", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
