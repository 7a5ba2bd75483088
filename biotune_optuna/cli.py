"""The ``biotune-optuna`` command line: run, inspect, compare, retrain and browse studies.

Every command takes a study spec (a TOML file, see ``studies/demo.toml``). ``--sampler`` and
``--seed`` select a sibling study of the spec (``<name>-<sampler>``, ``-seed<k>``), so that the
same spec runs under every sampler and seed and ``compare`` finds them all.

Exit codes: 0 success, 2 bad input (nothing written), 1 any other failure.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import logging
from pathlib import Path
import signal
import sys
import threading
from typing import Any
import warnings

import optuna

from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.strategies import STRATEGIES


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)


def _workers(text: str) -> int:
    """``--workers``: a count, or ``auto`` (0 here: one per visible GPU)."""
    return 0 if text == "auto" else _positive_int(text)


def _budgets(text: str) -> list[int]:
    return [_positive_int(part) for part in text.split(",") if part.strip()]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biotune-optuna",
        description=(
            "BioTune (arXiv:2508.15367) as an Optuna sampler: search which blocks of a "
            "pretrained CNN to fine-tune, and at what learning rate."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=description)
        command.add_argument("spec", type=Path, help="study spec (TOML), e.g. studies/demo.toml")
        command.add_argument(
            "--sampler",
            choices=tuple(SAMPLERS),
            help="run or read the spec's study under this sampler (study <name>-<sampler>)",
        )
        command.add_argument(
            "--seed", type=_seed, help="another seed (study <name>[-<sampler>]-seed<k>)"
        )
        command.add_argument(
            "--strategy",
            choices=tuple(STRATEGIES),
            help="a baseline fine-tuning strategy instead of BioTune's plans "
            "(study <name>-<strategy>)",
        )
        command.add_argument("--study-name", help="the study's name, instead of the derived one")
        noise = command.add_mutually_exclusive_group()
        noise.add_argument("-q", "--quiet", action="store_true", help="print only the result")
        noise.add_argument(
            "-v", "--verbose", action="store_true", help="also every epoch and Optuna's log"
        )
        return command

    run = spec_command(
        "run",
        "create or resume a study and run it to its budget",
        "Create the spec's study, or resume it, and run trials until it holds its budget of "
        "finished trials. Running the same command again after a crash or Ctrl-C resumes it.",
    )
    budget = run.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=_positive_int, help="budget in trials (total)")
    budget.add_argument(
        "--generations", type=_positive_int, help="budget in BioTune generations (total)"
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="run N worker processes on the study (auto: one per visible GPU); each GPU "
        "worker sees only its own device. Other hosts may run the same command.",
    )
    run.add_argument(
        "--max-failures",
        type=_positive_int,
        default=5,
        metavar="K",
        help="stop (exit 1, study kept) after K failed trials in a row (default 5)",
    )
    run.add_argument("--worker-id", type=int, default=None, help=argparse.SUPPRESS)
    spec_command(
        "status", "trials per state, generation, best so far, recommended", "Show progress."
    )
    spec_command(
        "best",
        "the recommended plan as a table",
        "Show the study's recommended trial (an estimate robust to fold and seed noise: a "
        "Gaussian process over all trials) with its decoded plan, and the best single value.",
    )
    compare = spec_command(
        "compare",
        "compare studies: table and best-so-far plots",
        "Compare the spec's study with its sibling studies (other samplers and seeds, as "
        "`run --sampler/--seed` names them) or with the studies given by --study: a table of "
        "the best value at fixed budgets (median and IQR over seeds) and best-so-far plots.",
    )
    compare.add_argument(
        "--study",
        action="append",
        default=None,
        metavar="NAME",
        help="a study of the spec's storage to compare (repeatable; default: the siblings)",
    )
    compare.add_argument(
        "--budgets", type=_budgets, default=None, help="comma-separated trial budgets"
    )
    compare.add_argument("--output", type=Path, help="directory of the table and plots")
    retrain = spec_command(
        "retrain",
        "retrain the recommended plan on the full train split and test it",
        "Retrain the recommended plan (see `best`) on the whole train split (early stopping "
        "on val), test it once per seed, save the weights and the plan as JSON.",
    )
    retrain.add_argument("--output", type=Path, help="directory (default: the spec's)")
    retrain.add_argument(
        "--trial", type=int, help="retrain this trial's plan, not the recommended one"
    )
    baselines = spec_command(
        "baselines",
        "BioTune's recommended plan against the usual ways of fine-tuning, as a table",
        "Run (or resume) the spec's BioTune study and the searches some baselines need, then "
        "train every method's final model on the whole train split, several seeds, and test "
        "it: macro test accuracy mean ± std, trainable share, training seconds (final runs "
        "and search). Writes baselines.md and baselines.json.",
    )
    baselines.add_argument(
        "--strategies",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=None,
        help=f"comma-separated subset of {','.join(STRATEGIES)} (default: all)",
    )
    baselines.add_argument(
        "--final-seeds", type=_positive_int, default=3, help="final runs per method (default 3)"
    )
    baselines.add_argument("--output", type=Path, help="directory of the table")
    dashboard = sub.add_parser(
        "dashboard",
        help="browse a study in optuna-dashboard",
        description="Start optuna-dashboard on the spec's storage, with its artifact store.",
    )
    dashboard.add_argument("spec", type=Path, help="study spec (TOML)")
    dashboard.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (local only)")
    dashboard.add_argument("--port", type=_positive_int, default=8080)
    return parser


def _spec(args: argparse.Namespace, **overrides: Any) -> Any:
    from biotune_optuna.studies import load_spec

    spec = load_spec(args.spec)
    return spec.with_overrides(
        sampler=getattr(args, "sampler", None),
        seed=getattr(args, "seed", None),
        name=getattr(args, "study_name", None),
        strategy=getattr(args, "strategy", None),
        **overrides,
    )


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _display_storage(storage: str) -> str:
    from biotune_optuna.studies.storage import display_storage

    return display_storage(storage)


# ------------------------------------------------------------------------------------------
# run


class _Progress:
    """A trial bar and an epoch bar (tqdm, on a terminal), and one line per finished trial."""

    def __init__(self, args: argparse.Namespace, total: int, max_epochs: int) -> None:
        from tqdm.auto import tqdm

        self.args = args
        self.tqdm = tqdm
        self.disable = True if args.quiet else None  # None: bars only on a terminal
        self.trials = tqdm(total=total, desc="trials", unit="trial", disable=self.disable)
        self.max_epochs = max_epochs
        self.epochs: Any = None

    def on_epoch(self, trial: optuna.Trial, epoch: int, value: float) -> None:
        if self.epochs is None:
            self.epochs = self.tqdm(
                total=self.max_epochs,
                desc=f"trial {trial.number} epochs",
                unit="epoch",
                leave=False,
                disable=self.disable,
            )
        self.epochs.update(1)
        self.epochs.set_postfix(val=f"{value:.4f}")
        if self.args.verbose:
            self.tqdm.write(f"  trial {trial.number} epoch {epoch}: running mean {value:.4f}")

    def on_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.epochs is not None:
            self.epochs.close()
            self.epochs = None
        self.trials.update(1)
        if self.args.quiet:
            return
        attrs = trial.user_attrs
        if trial.state == optuna.trial.TrialState.COMPLETE:
            value = f"value {trial.value:.4f}"
        else:
            value = trial.state.name.lower()
        parts = [f"trial {trial.number:>3}"]
        if "generation" in attrs:
            parts.append(f"gen {attrs['generation']} {attrs.get('role', ''):<9}")
        if "fold" in attrs:
            parts.append(f"fold {attrs['fold']}")
        parts.append(value)
        if "trainable_fraction" in attrs:
            parts.append(f"trainable {100 * attrs['trainable_fraction']:5.1f}%")
        if "wall_time_s" in attrs:
            parts.append(f"{attrs['wall_time_s']:6.1f} s")
        self.tqdm.write("  ".join(parts))

    def close(self) -> None:
        if self.epochs is not None:
            self.epochs.close()
        self.trials.close()


def _run(args: argparse.Namespace) -> int:
    from biotune_optuna.plan import plan_search_space
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import DashboardUpdater
    from biotune_optuna.studies import describe_objective
    from biotune_optuna.studies import finished_trials
    from biotune_optuna.studies import open_study
    from biotune_optuna.studies import run_to_budget
    from biotune_optuna.studies import save_study_figures
    from biotune_optuna.studies import save_study_note

    worker = args.worker_id is not None
    if worker:
        from biotune_optuna.studies.workers import stop_with_parent

        stop_with_parent()
    spec = _spec(args, trials=args.trials, generations=args.generations)
    objective = build_objective(spec)  # bad model or data fails here, before any write
    search_space = (
        objective.search_space
        if hasattr(objective, "search_space")
        else plan_search_space(objective.blocks)
    )
    study = open_study(
        spec,
        search_space=search_space,
        objective_description=describe_objective(spec),
    )
    target = spec.budget_for(search_space)
    done = finished_trials(study)
    remaining = max(0, target - done)
    n_workers = 1 if worker else _count_workers(args, spec)
    if not worker:
        _say(
            args,
            f"study `{spec.name}` in {_display_storage(spec.storage)}\n"
            f"  {describe_objective(spec)}\n"
            f"  {_describe_strategy(spec)}sampler {spec.sampler}, seed {spec.seed}, budget "
            f"{spec.describe_budget(search_space)}: "
            f"{done} finished, running {remaining} more"
            + (f" on {n_workers} workers" if n_workers > 1 else ""),
        )
        if done == 0:
            save_study_note(study, spec)
    if n_workers > 1 and remaining:
        _start_workers(args, spec, n_workers)
    else:  # also with the budget met: dead trials are failed, and their retries run
        progress = _Progress(args, remaining, spec.protocol.max_epochs)
        if hasattr(objective, "on_epoch"):
            objective.on_epoch = progress.on_epoch
        interrupt = _StopAfterTrial(study)
        try:
            with interrupt:
                run_to_budget(
                    study,
                    objective,
                    target,
                    callbacks=[DashboardUpdater(spec), progress.on_trial],
                    max_failures_in_a_row=args.max_failures,
                    stop_requested=lambda: interrupt.requested,
                    say=lambda text: print(f"biotune-optuna: {text}", file=sys.stderr),
                )
        finally:
            progress.close()
        if interrupt.requested:
            raise KeyboardInterrupt
    if worker:
        return 0
    _report_running(study, spec.grace_period)
    save_study_figures(study)
    save_study_note(study, spec)
    if not args.quiet:
        _print_generations(study)
    _print_best(study)
    return 0


class _StopAfterTrial:
    """Ctrl-C stops the run after the running trial; a second Ctrl-C stops it at once.

    Either way the study stays resumable: a trial interrupted inside the objective is FAILED
    by Optuna, one interrupted elsewhere is retried once its heartbeat goes silent.
    """

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.study.stop()
        print(
            "biotune-optuna: stopping after the running trial (Ctrl-C again to stop now)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _StopAfterTrial:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _count_workers(args: argparse.Namespace, spec: Any) -> int:
    """``--workers``, with ``auto`` as the number of GPUs the fine-tuning may use."""
    if args.workers:
        return int(args.workers)
    return max(1, len(_gpus_for(spec)))


def _gpus_for(spec: Any) -> list[str]:
    """The GPUs to pin workers to: none for the synthetic objective or a fixed device."""
    from biotune_optuna.studies.workers import visible_gpus

    if spec.objective != "finetune" or spec.protocol.device not in ("auto", "cuda"):
        return []
    return visible_gpus()


def _start_workers(args: argparse.Namespace, spec: Any, n_workers: int) -> None:
    from biotune_optuna.studies.workers import run_workers
    from biotune_optuna.studies.workers import worker_command
    from biotune_optuna.studies.workers import worker_environments

    gpus = _gpus_for(spec)
    environments = worker_environments(n_workers, gpus=gpus)
    where = (
        ", ".join(
            f"worker {k}: GPU {env['CUDA_VISIBLE_DEVICES']}" for k, env in enumerate(environments)
        )
        if gpus
        else f"CPU, {environments[0].get('OMP_NUM_THREADS', 'inherited')} threads each"
    )
    _say(args, f"  {n_workers} workers ({where})")
    commands = []
    for k in range(n_workers):
        arguments = ["run", str(args.spec), "--worker-id", str(k)]
        for flag in ("sampler", "seed", "strategy", "study_name", "trials", "generations"):
            value = getattr(args, flag)
            if value is not None:
                arguments += [f"--{flag.replace('_', '-')}", str(value)]
        arguments += ["--max-failures", str(args.max_failures)]
        arguments += ["-q"] if args.quiet else (["-v"] if args.verbose else [])
        commands.append(worker_command(arguments))
    codes = run_workers(commands, environments, say=lambda line: print(line, flush=True))
    failed = {k: code for k, code in enumerate(codes) if code != 0}
    if failed:
        listing = ", ".join(f"worker {k} exited with {code}" for k, code in failed.items())
        raise RuntimeError(f"{listing}; the study is kept, run the same command to resume")


def _describe_strategy(spec: Any) -> str:
    if spec.strategy == "biotune":
        return ""
    given = ", ".join(f"{k}={v}" for k, v in spec.strategy_options.items())
    searched = ", ".join(spec.strategy_search)
    return (
        f"strategy {spec.strategy}"
        + (f" ({given})" if given else "")
        + (f", searching {searched}" if searched else "")
        + "; "
    )


def _print_generations(study: optuna.Study) -> None:
    rows: dict[int, list[float]] = {}
    for t in study.get_trials(deepcopy=False):
        if isinstance(t.user_attrs.get("generation"), int):
            value = t.value if t.value is not None else float("nan")
            rows.setdefault(t.user_attrs["generation"], []).append(value)
    if not rows:
        return
    print("\ngeneration  trials  best in generation  best so far")
    best_so_far = float("-inf")
    for g in sorted(rows):
        finite = [v for v in rows[g] if v == v]
        best = max(finite) if finite else float("nan")
        best_so_far = max(best_so_far, best) if finite else best_so_far
        print(f"{g:>10}  {len(rows[g]):>6}  {best:>18.4f}  {best_so_far:>11.4f}")


def _print_best(study: optuna.Study) -> None:
    """The study's recommended trial, its estimate and plan; the best single value apart."""
    from biotune_optuna.recommendation import current_recommendation
    from biotune_optuna.studies.report import best_plan_rows
    from biotune_optuna.studies.report import markdown_table
    from biotune_optuna.studies.report import strategy_markdown

    recommendation = current_recommendation(study)
    if recommendation is None:
        print("no complete trial yet")
        return
    chosen = recommendation.trial
    print(
        f"\nrecommended trial #{chosen.number}: estimate {recommendation.estimate:.4f} "
        f"({_RULE_WORDS.get(recommendation.rule, recommendation.rule)}, "
        f"{recommendation.n_trials} complete trials)"
    )
    for label, trial in (("its own value", chosen), ("best single value", study.best_trial)):
        attrs = trial.user_attrs
        line = f"  {label}: trial #{trial.number}, {trial.value:.4f}"
        if "fold" in attrs:
            line += f" (validation macro accuracy, fold {attrs['fold']})"
        if "trainable_fraction" in attrs and trial is chosen:
            line += f", {100 * attrs['trainable_fraction']:.1f}% of the parameters trained"
        print(line)
    if "freeze_threshold" not in chosen.params:  # a baseline strategy's trial
        print(strategy_markdown(chosen))
        return
    base_lr = float(study.user_attrs.get("base_lr", 1e-3))
    rows = best_plan_rows(chosen, base_lr)
    print(f"freeze threshold {chosen.params.get('freeze_threshold', float('nan')):.3f}")
    print(markdown_table(["block", "importance", "plan", "lr multiplier", "lr"], rows))


#: How ``best`` names each rule of :func:`biotune_optuna.recommendation.recommend`.
_RULE_WORDS = {
    "smoothed": "Gaussian-process mean over the trials, fold offsets and noise taken out",
    "mean": "mean of the plan's evaluations; too few trials for a model",
    "max": "best single value",
}


# ------------------------------------------------------------------------------------------
# status, best, compare


def _status(args: argparse.Namespace) -> int:
    from biotune_optuna.studies import load_study
    from biotune_optuna.studies import running_trials_health
    from biotune_optuna.studies.report import status_summary

    spec = _spec(args)
    study = load_study(spec)
    summary = status_summary(study)
    states = ", ".join(f"{n} {s.lower()}" for s, n in summary["states"].items()) or "none"
    print(f"study `{summary['study']}` in {_display_storage(spec.storage)}")
    print(f"  sampler     {summary['sampler']}")
    print(f"  budget      {summary['budget'] or spec.describe_budget()}")
    print(f"  trials      {summary['trials']} ({states})")
    if summary["generation"] is not None:
        print(f"  generation  {summary['generation']}")
    if summary["best_value"] is not None:
        print(f"  best        {summary['best_value']:.4f} (trial #{summary['best_trial']})")
        print(
            f"  recommended {summary['recommended_estimate']:.4f} (trial "
            f"#{summary['recommended_trial']}, estimated: {summary['recommended_rule']})"
        )
    else:
        print("  best        none yet")
    for number, health in running_trials_health(study, spec.grace_period):
        print(f"  running     trial {number}: {health}")
    return 0


def _report_running(study: optuna.Study, grace_period: int) -> None:
    """After a run that met its budget: say which trials still run and whether they are
    dead (another host's dead trial is failed and retried once its grace period is over)."""
    from biotune_optuna.studies import running_trials_health

    for number, health in running_trials_health(study, grace_period):
        if health.startswith("alive"):
            continue
        print(
            f"biotune-optuna: trial {number} is still RUNNING ({health}); the next `run` "
            "fails and retries it once it is known dead",
            file=sys.stderr,
        )


def _best(args: argparse.Namespace) -> int:
    from biotune_optuna.studies import load_study

    _print_best(load_study(_spec(args)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from biotune_optuna.studies import study_exists
    from biotune_optuna.studies.report import compare_figures
    from biotune_optuna.studies.report import compare_rows
    from biotune_optuna.studies.report import markdown_table
    from biotune_optuna.studies.session import reading_storage
    from biotune_optuna.studies.session import study_names

    spec = _spec(args)
    base = spec.name
    if args.study:
        names = args.study
        for name in names:
            if not study_exists(spec.storage, name):
                raise UsageError(f"no study `{name}` in {_display_storage(spec.storage)}")
    else:
        if not study_exists(spec.storage, base):
            raise UsageError(f"no study `{base}` in {_display_storage(spec.storage)}")
        names = [
            name
            for name in study_names(spec.storage)
            if name == base or name.startswith(f"{base}-")
        ]
    storage = reading_storage(spec.storage)
    groups: dict[str, list[optuna.Study]] = {}
    for name in sorted(names):
        study = optuna.load_study(study_name=name, storage=storage)
        label = study.user_attrs.get("sampler", type(study.sampler).__name__)
        strategy = study.user_attrs.get("strategy", "biotune")
        if strategy != "biotune":  # a baseline's search: not the same genes
            label = f"{strategy} ({label})"
        groups.setdefault(label, []).append(study)
    budgets = args.budgets or sorted({spec.budget // 4, spec.budget // 2, spec.budget} - {0})
    header, rows = compare_rows(groups, budgets)
    table = markdown_table(header, rows)
    out = args.output or (spec.path.resolve().parent / "compare" / base)
    paths = compare_figures(groups, out, base)
    listing = ", ".join(f"{k}: {len(v)}" for k, v in groups.items())
    (out / "compare.md").write_text(
        f"# {base}: samplers compared\n\nStudies ({listing}) in "
        f"`{_display_storage(spec.storage)}`.\n\n{table}\n"
    )
    print(table)
    _say(args, f"\nwrote {out / 'compare.md'}, " + ", ".join(str(p) for p in paths))
    return 0


# ------------------------------------------------------------------------------------------
# retrain, dashboard


def _retrain(args: argparse.Namespace) -> int:
    from biotune_optuna.studies import build_objective
    from biotune_optuna.studies import load_study
    from biotune_optuna.studies.retrain import retrain_best_plan

    spec = _spec(args)
    study = load_study(spec)
    trial = None
    if args.trial is not None:
        matches = [t for t in study.get_trials(deepcopy=False) if t.number == args.trial]
        if not matches or matches[0].state != optuna.trial.TrialState.COMPLETE:
            raise UsageError(f"study `{spec.name}` has no complete trial #{args.trial}")
        trial = matches[0]
    if spec.objective != "finetune":
        raise UsageError("retrain needs a fine-tuning spec ([objective] kind = 'finetune')")
    objective = build_objective(spec)
    output = args.output or (spec.retrain_dir / spec.name)
    _say(args, f"retraining the plan of study `{spec.name}` on the full train split ...")
    results = retrain_best_plan(spec, study, objective, output, trial=trial)
    if spec.artifacts is not None:
        from optuna.artifacts import FileSystemArtifactStore
        from optuna.artifacts import upload_artifact

        spec.artifacts.mkdir(parents=True, exist_ok=True)
        store = FileSystemArtifactStore(str(spec.artifacts))
        for name in ("plan.json", "results.json"):
            upload_artifact(
                artifact_store=store, file_path=str(output / name), study_or_trial=study
            )
    per_seed = ", ".join(f"{a:.4f}" for a in results["test_macro_accuracy_per_seed"])
    print(
        f"trial #{results['trial']} retrained on {results['train_images']} images, "
        f"{len(results['seeds'])} seed{'' if len(results['seeds']) == 1 else 's'}: "
        "test macro accuracy "
        f"{results['test_macro_accuracy_mean']:.4f} ± {results['test_macro_accuracy_std']:.4f} "
        f"({per_seed})"
    )
    _say(args, f"wrote {output}/plan.json, results.json and {len(results['weights'])} weights")
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from biotune_optuna.studies.baselines import BASELINE_ROWS
    from biotune_optuna.studies.baselines import compare_baselines

    if args.strategy is not None:
        raise UsageError("baselines compares every strategy; --strategy does not apply")
    spec = _spec(args)
    rows = BASELINE_ROWS
    if args.strategies:
        unknown = sorted(set(args.strategies) - set(STRATEGIES))
        if unknown:
            raise UsageError(
                f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}"
            )
        rows = tuple(row for row in BASELINE_ROWS if row.strategy in args.strategies)
    output = args.output or (spec.path.resolve().parent / "baselines" / spec.name)
    table, _ = compare_baselines(
        spec,
        n_seeds=args.final_seeds,
        output=output,
        rows=rows,
        say=(lambda text: None) if args.quiet else (lambda text: print(text, flush=True)),
    )
    print(table)
    _say(args, f"\nwrote {output / 'baselines.md'} and baselines.json")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from biotune_optuna.studies import load_spec
    from biotune_optuna.studies import serve_dashboard
    from biotune_optuna.studies.storage import file_of_storage

    spec = load_spec(args.spec)
    path = file_of_storage(spec.storage)
    if path is not None and not path.is_file():
        raise UsageError(f"no study storage at {path} yet; `biotune-optuna run {args.spec}` first")
    url = f"http://{args.host}:{args.port}/dashboard/"
    print(f"optuna-dashboard for {_display_storage(spec.storage)} at {url} (Ctrl-C to stop)")
    serve_dashboard(spec.storage, host=args.host, port=args.port, artifacts=spec.artifacts)
    return 0


_COMMANDS = {
    "run": _run,
    "status": _status,
    "best": _best,
    "compare": _compare,
    "retrain": _retrain,
    "baselines": _baselines,
    "dashboard": _dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biotune-optuna`` console script."""
    from biotune_optuna.samplers import SamplerMismatchError
    from biotune_optuna.studies import SpecError
    from biotune_optuna.studies.storage import masked_text

    parser = _build_parser()
    args = parser.parse_args(argv)  # exits with 2 on bad arguments
    verbose = getattr(args, "verbose", False)
    optuna.logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
    if not verbose:  # heartbeats and their retries are "experimental" in Optuna 5
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, SpecError, SamplerMismatchError) as exc:
        print(f"biotune-optuna: error: {masked_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biotune-optuna: interrupted; run the same command to resume", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, exit 1; -v shows the traceback
        if verbose:
            raise
        message = masked_text(str(exc))  # a driver's error may quote a URL
        print(f"biotune-optuna: failed: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
