"""The ``biotune-optuna`` command line.

Exit codes: 0 success, 2 bad input, 1 any other failure.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import logging
from pathlib import Path
import sys

import optuna

from biotune_optuna.samplers import BioTuneSampler
from biotune_optuna.samplers import importance_param
from biotune_optuna.samplers import learning_rate_multiplier
from biotune_optuna.samplers import selected_blocks
from biotune_optuna.samplers import THRESHOLD_PARAM
from biotune_optuna.samplers import trial_budget
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
        help="run (or resume) a BioTune study on the synthetic fine-tuning objective",
        description=(
            "Run a BioTune study on a cheap synthetic fine-tuning landscape with the genes of a "
            "6-block backbone. The study is stored, so running the command again resumes it."
        ),
    )
    demo.add_argument("--storage", default=DEFAULT_DEMO_STORAGE, help="Optuna storage URL")
    demo.add_argument("--study-name", default="biotune-synthetic-demo")
    demo.add_argument(
        "--generations",
        type=_positive_int,
        default=10,
        help="generations after the initial population (10 -> 140 trials in total)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    demo.add_argument("--landscape-seed", type=int, default=0, help="seed of the landscape")
    demo.add_argument("-q", "--quiet", action="store_true", help="print only the best plan")
    return parser


def _prepare_sqlite_dir(storage: str) -> None:
    prefix = "sqlite:///"
    if storage.startswith(prefix):
        path = Path(storage[len(prefix) :])
        if not path.parent.exists():
            raise UsageError(f"directory of the SQLite file does not exist: {path.parent}")


def _run_demo(args: argparse.Namespace) -> int:
    _prepare_sqlite_dir(args.storage)
    objective = SyntheticFineTuning(seed=args.landscape_seed)
    sampler = BioTuneSampler(seed=args.seed)
    target = trial_budget(args.generations)
    study = optuna.create_study(
        storage=args.storage,
        study_name=args.study_name,
        sampler=sampler,
        direction="maximize",
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(f"study `{args.study_name}` exists and is not maximising")
    done = len(study.trials)
    remaining = max(0, target - done)
    if not args.quiet:
        print(
            f"study `{args.study_name}` in {args.storage}: {done} trials stored, "
            f"running {remaining} more to reach {target} ({args.generations} generations)"
        )
    if remaining:
        study.optimize(objective, n_trials=remaining)
    if not args.quiet:
        _print_generations(study)
    _print_best(study, objective)
    return 0


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
