"""Study specs: a TOML file that says everything a study needs (imports without torch).

A spec names the study and its storage, the sampler and its options, the pruner, the objective
(a pretrained backbone, a dataset and the training protocol of arXiv:2508.15367, or the cheap
synthetic landscape), the budget and the seed. Specs are data, never executed: custom code
enters only through an explicit ``"<module>:<factory>"`` model source.

Relative paths in a spec (the SQLite file, data roots, the artifact and retrain directories, a
state dict) are relative to the spec file's directory, so a spec works from any working
directory. Every problem is reported as ``<file>: [<section>] <key>: <problem>``.

Every number anywhere in a spec must be finite and fit in 64 bits; seeds must be in
``[0, 2**32)`` (what Optuna's samplers take); options have the ranges their tables state
(:data:`~biotune_optuna.samplers.SPEC_OPTIONS`, :data:`PRUNERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
from pathlib import Path
import sys
from typing import Any

from biotune_optuna.options import MAX_SEED
from biotune_optuna.options import number_problem
from biotune_optuna.options import Option
from biotune_optuna.options import type_problem
from biotune_optuna.protocol import TrainingProtocol
from biotune_optuna.samplers import BIOTUNE_PRESETS
from biotune_optuna.samplers import check_option
from biotune_optuna.samplers import check_pruner_option
from biotune_optuna.samplers import create_pruner
from biotune_optuna.samplers import create_sampler
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.samplers import trial_budget
from biotune_optuna.strategies import BIOTUNE
from biotune_optuna.strategies import grid_size
from biotune_optuna.strategies import is_grid
from biotune_optuna.strategies import searches_choices_only
from biotune_optuna.strategies import STRATEGIES
from biotune_optuna.strategies import strategy_settings
from biotune_optuna.studies._errors import SpecError
from biotune_optuna.studies._heartbeat import DEFAULT_GRACE_PERIOD
from biotune_optuna.studies._heartbeat import DEFAULT_HEARTBEAT_INTERVAL
from biotune_optuna.studies._heartbeat import heartbeat_problem
from biotune_optuna.studies._heartbeat import shortest_grace_period
from biotune_optuna.studies.storage import storage_problem
from biotune_optuna.synthetic import MAX_BLOCKS


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SpecError", "StudySpec", "load_spec", "parse_spec"]

OBJECTIVES = ("finetune", "synthetic")
DATA_SOURCES = ("digits", "torchvision:<Name>", "folder")
#: BioTune's paper preset; the fold schedule and generation budgets of other samplers use it
#: unless the spec's BioTune sampler or ``[budget]`` says otherwise.
DEFAULT_SCHEDULE = (10, 3)

_SEED = Option(int, 0, MAX_SEED)
_AT_LEAST_1 = Option(int, 1)

#: Section → key → its type (or types), or an :class:`Option` with the values it takes.
_SECTIONS: dict[str, dict[str, Any]] = {
    "study": {
        "name": str,
        "storage": str,
        "seed": _SEED,
        "artifacts": str,
        "description": str,
        "heartbeat_interval": int,
        "grace_period": int,
    },
    "sampler": {"name": str},  # plus the sampler's options
    "pruner": {"name": str},  # plus the pruner's options
    "budget": {
        "trials": _AT_LEAST_1,
        "generations": _AT_LEAST_1,
        "population_size": int,
        "n_elites": int,
    },
    "objective": {"kind": str, "n_blocks": Option(int, 2, MAX_BLOCKS), "seed": _SEED},
    "model": {
        "source": str,
        "weights": (str, bool),
        "blocks": dict,
        "head": str,
        "state_dict": str,
        "mean": list,
        "std": list,
    },
    "data": {
        "source": str,
        "root": str,
        "download": bool,
        "val_fraction": float,
        "test_fraction": float,
        "seed": _SEED,
        "max_train_images": _AT_LEAST_1,
        "max_val_images": _AT_LEAST_1,
    },
    "protocol": {
        **{f.name: type(f.default) for f in dataclasses.fields(TrainingProtocol)},
        "seed": _SEED,
    },
    "retrain": {"output": str},
    "strategy": {"name": str, "search": list},  # plus the strategy's hyperparameters
}
_OPEN_SECTIONS = {"sampler", "pruner", "strategy"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudySpec:
    """A validated study spec. Build it with :func:`load_spec` or :func:`parse_spec`.

    Attributes:
        name: The study's name in the storage.
        storage: Storage URL: ``sqlite:///``, ``journal:///`` or a server's (relative file
            paths already resolved; see :mod:`biotune_optuna.studies.storage`).
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds without a heartbeat after which a running trial is taken for
            dead, failed and retried with the same parameters.
        sampler: Registry name of the sampler (see :data:`biotune_optuna.samplers.SAMPLERS`).
        sampler_options: Options of the sampler's constructor.
        pruner: Registry name of the pruner (``"none"``: the paper trains every plan fully).
        pruner_options: Options of the pruner's constructor.
        seed: Seed of the sampler and of training.
        trials: Budget in trials (finished trials the study should hold), if given so.
        generations: Budget in BioTune generations after the initial population, if given so.
        schedule: ``(N, E)`` of the BioTune schedule that converts generations to trials and
            places every sampler's trials on the same data folds.
        objective: ``"finetune"`` or ``"synthetic"``.
        objective_options: Options of the synthetic landscape (``n_blocks``, ``seed``).
        model: The ``[model]`` table (for ``finetune``).
        data: The ``[data]`` table (for ``finetune``).
        protocol: The training protocol.
        artifacts: Directory of the study's artifact store.
        retrain_dir: Where ``retrain`` writes weights, the plan and the results.
        description: Free text shown in the study note.
        path: The spec file, if it came from one.
        text: The spec's TOML text (shown in the study note).
        overrides: Command-line overrides applied on top of the file, for the record.
        strategy: ``"biotune"`` (the genes) or a baseline of
            :data:`biotune_optuna.strategies.STRATEGIES`.
        strategy_options: The baseline's given hyperparameters.
        strategy_search: The baseline's searched hyperparameters.
        auto_budget: The budget follows the search (1 trial when nothing is searched, the
            grid's size for categorical searches), as for ``--strategy`` without ``--trials``.
    """

    name: str
    storage: str
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: int = DEFAULT_GRACE_PERIOD
    sampler: str = "biotune"
    sampler_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pruner: str = "none"
    pruner_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    trials: int | None = None
    generations: int | None = None
    schedule: tuple[int, int] = DEFAULT_SCHEDULE
    objective: str = "finetune"
    objective_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    protocol: TrainingProtocol = dataclasses.field(default_factory=TrainingProtocol)
    artifacts: Path | None = None
    retrain_dir: Path | None = None
    description: str = ""
    path: Path | None = None
    text: str = ""
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    strategy: str = BIOTUNE
    strategy_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    strategy_search: tuple[str, ...] = ()
    auto_budget: bool = False

    @property
    def source(self) -> str:
        """The spec file's name for messages."""
        return str(self.path) if self.path is not None else "<spec>"

    def budget_for(self, search_space: Mapping[str, Any]) -> int:
        """The budget of a study whose objective searches ``search_space``.

        :attr:`budget`, unless :attr:`auto_budget`: then 1 trial if nothing is searched (every
        trial would train the same), the grid's size if only choices are, else :attr:`budget`.
        """
        if self.auto_budget and self.strategy != BIOTUNE:
            if not search_space:
                return 1
            if is_grid(search_space):
                return grid_size(search_space)
        return self.budget

    @property
    def budget(self) -> int:
        """The budget in trials: given, or converted from generations with :attr:`schedule`."""
        if self.trials is not None:
            return self.trials
        population_size, n_elites = self.schedule
        return trial_budget(
            self.generations or 0, population_size=population_size, n_elites=n_elites
        )

    def describe_budget(self, search_space: Mapping[str, Any] | None = None) -> str:
        """The budget in words; of a study searching ``search_space`` if given
        (:meth:`budget_for`: a strategy's automatic budget is said in trials)."""
        if search_space is not None and self.budget_for(search_space) != self.budget:
            return f"{self.budget_for(search_space)} trials"
        if self.trials is not None:
            return f"{self.trials} trials"
        n, e = self.schedule
        return f"{self.generations} generations = {self.budget} trials (N={n}, E={e})"

    def with_overrides(
        self,
        *,
        sampler: str | None = None,
        seed: int | None = None,
        trials: int | None = None,
        generations: int | None = None,
        name: str | None = None,
        strategy: str | None = None,
    ) -> StudySpec:
        """This spec with command-line overrides; a different sampler or seed is another study.

        With ``strategy`` other than the spec's, the study is named ``<name>-<strategy>``; the
        strategy runs with its default hyperparameters and searches what it defines by a
        search (surgical fine-tuning's block), on the grid sampler when that search is
        categorical (else TPE), and, without ``trials``/``generations``, its budget follows
        that search (:meth:`budget_for`).

        With ``sampler`` other than the spec's, the study is named ``<name>-<sampler>`` and the
        sampler runs with its defaults (the spec's options are for the spec's sampler; BioTune
        gets the spec's schedule as ``N`` and ``E``); with
        ``seed`` other than the spec's, ``-seed<k>`` is appended. ``name`` overrides both.
        The BioTune schedule (folds, generation budgets) stays the spec's, so the studies
        compare on equal terms.
        """
        if trials is not None and generations is not None:
            raise SpecError("give --trials or --generations, not both")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise SpecError(f"--seed must be in [0, {MAX_SEED}], got {seed}")
        changes: dict[str, Any] = {}
        study_name = self.name
        if strategy is not None and strategy != self.strategy:
            if strategy not in STRATEGIES:
                raise SpecError(
                    f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}"
                )
            if self.objective == "synthetic" and strategy != BIOTUNE:
                raise SpecError(
                    f"{self.source}: [objective] kind: --strategy {strategy!r}: the synthetic "
                    "objective has BioTune's genes only"
                )
            search = strategy_settings(strategy, {})[1] if strategy != BIOTUNE else ()
            auto = _strategy_sampler(strategy, search)
            options = (
                dict(zip(("population_size", "n_elites"), self.schedule))
                if auto == BIOTUNE
                else {}
            )
            changes.update(
                strategy=strategy,
                strategy_options={},
                strategy_search=search,
                sampler=auto,
                sampler_options=options,
                auto_budget=trials is None and generations is None,
            )
            study_name += f"-{strategy}"
        if sampler is not None and sampler != changes.get("sampler", self.sampler):
            if sampler not in SAMPLERS:
                raise SpecError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
            options: dict[str, Any] = {}
            if sampler in BIOTUNE_PRESETS:  # the spec's schedule is BioTune's N and E
                options = dict(zip(("population_size", "n_elites"), self.schedule))
            changes.update(sampler=sampler, sampler_options=options)
            study_name += f"-{sampler}"
        if seed is not None and seed != self.seed:
            changes["seed"] = seed
            changes["protocol"] = dataclasses.replace(self.protocol, seed=seed)
            study_name += f"-seed{seed}"
        if trials is not None:
            changes.update(trials=trials, generations=None)
        if generations is not None:
            changes.update(trials=None, generations=generations)
        for key, value in (("trials", trials), ("generations", generations)):
            if value is not None and value < 1:
                raise SpecError(f"--{key} must be >= 1, got {value}")
        final_sampler = changes.get("sampler", self.sampler)
        final_strategy = changes.get("strategy", self.strategy)
        if final_sampler == "grid" and final_strategy == BIOTUNE:
            raise SpecError("the grid sampler enumerates choices; BioTune's genes are continuous")
        if final_sampler == BIOTUNE and final_strategy != BIOTUNE:
            raise SpecError(
                f"the biotune sampler searches BioTune's genes, not {final_strategy}'s "
                "hyperparameters"
            )
        changes["name"] = name or study_name
        record = {
            k: v
            for k, v in {
                "sampler": sampler,
                "seed": seed,
                "trials": trials,
                "generations": generations,
                "study_name": name,
                "strategy": strategy,
            }.items()
            if v is not None
        }
        changes["overrides"] = {**self.overrides, **record}
        return dataclasses.replace(self, **changes)


def _strategy_sampler(strategy: str, search: tuple[str, ...]) -> str:
    """The sampler a strategy study gets by default: BioTune for the genes, the grid for
    categorical searches, TPE for others, random (any) when nothing is searched."""
    if strategy == BIOTUNE:
        return BIOTUNE
    if not search:
        return "random"
    return "grid" if searches_choices_only(strategy, search) else "tpe"


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec file.

    Raises:
        SpecError: One line naming the file, the section and the key at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files are UTF-8"
        ) from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc.strerror or exc}") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(table, path=path, text=text)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _resolve_storage(base: Path, url: str) -> str:
    for prefix in ("sqlite:///", "journal:///"):
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            target = url[len(prefix) :]
            if target and target != ":memory:" and not target.startswith("file:"):
                return prefix + str(_resolve(base, target))
    return url


def parse_spec(
    table: Mapping[str, Any], *, path: str | Path | None = None, text: str = ""
) -> StudySpec:
    """Validate a spec given as a mapping (what ``tomllib`` returns).

    Args:
        table: The spec's sections.
        path: The file it came from (for messages and relative paths).
        text: Its source text, kept for the study note.

    Raises:
        SpecError: One line naming the file, the section and the key at fault.
    """
    where = str(path) if path is not None else "<spec>"
    base = Path(path).resolve().parent if path is not None else Path.cwd()

    def fail(section: str, key: str | None, problem: str) -> SpecError:
        place = f"[{section}] {key}" if key else f"[{section}]"
        return SpecError(f"{where}: {place}: {problem}")

    _check_sections(table, where, fail)
    study = dict(table.get("study", {}))
    for key in ("name", "storage"):
        if not study.get(key, "").strip():
            raise fail("study", key, "required, a non-empty string")
    seed = study.get("seed", 0)
    problem = storage_problem(study["storage"].strip())
    if problem is not None:
        raise fail("study", "storage", problem)
    heartbeat_interval, grace_period = _heartbeat(study, fail)

    sampler, sampler_table = _named_part(table, "sampler", "biotune", SAMPLERS, check_option, fail)

    budget = dict(table.get("budget", {}))
    if sampler in BIOTUNE_PRESETS:
        for key in ("population_size", "n_elites"):
            if key in budget and budget[key] != sampler_table.get(key, budget[key]):
                raise fail("budget", key, f"differs from [sampler] {key}; give it once")
            budget.setdefault(key, sampler_table.get(key))
    population_size = budget.get("population_size") or DEFAULT_SCHEDULE[0]
    n_elites = budget.get("n_elites")
    n_elites = DEFAULT_SCHEDULE[1] if n_elites is None else n_elites
    section = (
        "sampler"
        if sampler in BIOTUNE_PRESETS and "population_size" in sampler_table
        else "budget"
    )
    if population_size < 2:
        raise fail(section, "population_size", f"must be >= 2, got {population_size}")
    section = "sampler" if sampler in BIOTUNE_PRESETS and "n_elites" in sampler_table else "budget"
    if not 0 <= n_elites < population_size:
        raise fail(
            section,
            "n_elites",
            f"must be >= 0 and below population_size ({population_size}), got {n_elites}",
        )
    if ("trials" in budget) == ("generations" in budget):
        raise fail("budget", None, "give exactly one of `trials` and `generations`")

    strategy, strategy_options, strategy_search, sampler = _check_strategy(table, sampler, fail)
    if sampler != "grid":  # the grid needs the search space, known when the study opens
        _construct(
            "sampler",
            sampler_table,
            fail,
            create_sampler,
            sampler,
            seed=seed,
            options=sampler_table,
        )
    pruner, pruner_table = _named_part(table, "pruner", "none", PRUNERS, check_pruner_option, fail)
    _construct("pruner", pruner_table, fail, create_pruner, pruner, pruner_table)

    objective_table = dict(table.get("objective", {}))
    objective = objective_table.pop("kind", "finetune")
    if objective not in OBJECTIVES:
        raise fail(
            "objective", "kind", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if objective == "finetune" and objective_table:
        key = next(iter(objective_table))
        raise fail("objective", key, "only for kind = 'synthetic'")

    if objective == "synthetic" and strategy != BIOTUNE:
        raise fail("strategy", "name", "the synthetic objective has BioTune's genes only")
    model = dict(table.get("model", {}))
    data = dict(table.get("data", {}))
    if objective == "synthetic":
        for section_name, content in (("model", model), ("data", data)):
            if content:
                raise fail(section_name, None, "not used by the synthetic objective; remove it")
    else:
        model, data = _check_model(model, base, fail), _check_data(data, base, fail)

    protocol_table = dict(table.get("protocol", {}))
    protocol_table.setdefault("seed", seed)
    try:
        protocol = TrainingProtocol(**protocol_table)
    except ValueError as exc:
        key = next((k for k in protocol_table if f"protocol.{k}" in str(exc)), None)
        problem = str(exc).replace(f"protocol.{key} ", "") if key else str(exc)
        raise fail("protocol", key, problem) from None

    retrain = table.get("retrain", {})
    artifacts = study.get("artifacts")
    return StudySpec(
        name=study["name"].strip(),
        storage=_resolve_storage(base, study["storage"].strip()),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        sampler=sampler,
        sampler_options=sampler_table,
        pruner=pruner,
        pruner_options=pruner_table,
        seed=seed,
        trials=budget.get("trials"),
        generations=budget.get("generations"),
        schedule=(population_size, n_elites),
        objective=objective,
        objective_options=objective_table,
        model=model,
        data=data,
        protocol=protocol,
        artifacts=_resolve(base, artifacts) if artifacts else None,
        retrain_dir=_resolve(base, retrain.get("output", "retrained")),
        description=study.get("description", ""),
        path=Path(path) if path is not None else None,
        text=text,
        strategy=strategy,
        strategy_options=strategy_options,
        strategy_search=strategy_search,
    )


def _check_sections(
    table: Mapping[str, Any], where: str, fail: Callable[[str, str | None, str], SpecError]
) -> None:
    """Known sections and keys, values of their type and range, and numbers finite throughout
    (the open sections' options too, and the items of lists and tables)."""
    for section, content in table.items():
        if section not in _SECTIONS:
            raise SpecError(
                f"{where}: unknown section [{section}]; sections are {', '.join(_SECTIONS)}"
            )
        if not isinstance(content, Mapping):
            raise fail(section, None, "must be a table")
        for key, value in content.items():
            problem = _nested_number_problem(value)
            if problem is not None:
                raise fail(section, key, problem)
        if section in _OPEN_SECTIONS:
            continue
        for key, value in content.items():
            if key not in _SECTIONS[section]:
                raise fail(section, key, f"unknown key; keys are {', '.join(_SECTIONS[section])}")
            rule = _SECTIONS[section][key]
            if isinstance(rule, Option):
                problems = [rule.problem(value)]
            else:
                problems = [
                    type_problem(value, k) for k in (rule if isinstance(rule, tuple) else (rule,))
                ]
            if all(problems):
                raise fail(section, key, problems[0] or "")


def _nested_number_problem(value: Any) -> str | None:
    """The first number in ``value`` (a scalar, list or table) that cannot be used."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if not isinstance(value, list):
        return number_problem(value)
    return next((p for p in map(_nested_number_problem, value) if p is not None), None)


def _heartbeat(
    study: Mapping[str, Any], fail: Callable[[str, str | None, str], SpecError]
) -> tuple[int, int]:
    """``[study] heartbeat_interval`` and ``grace_period`` (default: twice the interval, at
    least :data:`~biotune_optuna.studies._heartbeat.MIN_GRACE_PERIOD`; one rule,
    :func:`~biotune_optuna.studies._heartbeat.shortest_grace_period`), checked as the
    heartbeating storages check them."""
    interval = study.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
    grace_period = study.get("grace_period", shortest_grace_period(interval))
    problem = heartbeat_problem(interval, grace_period)
    if problem is not None:
        key = next(
            (k for k in ("heartbeat_interval", "grace_period") if problem.startswith(k)), None
        )
        raise fail("study", key, problem.removeprefix(f"{key} ") if key else problem)
    return interval, grace_period


def _check_strategy(
    table: Mapping[str, Any], sampler: str, fail: Callable[[str, str | None, str], SpecError]
) -> tuple[str, dict[str, Any], tuple[str, ...], str]:
    """The ``[strategy]`` table: name, given hyperparameters, searched ones, and the sampler
    (a baseline without a ``[sampler]`` name gets the one that fits its search)."""
    options = dict(table.get("strategy", {}))
    name = options.pop("name", BIOTUNE)
    search = options.pop("search", None)
    if name not in STRATEGIES:
        raise fail(
            "strategy", "name", f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}"
        )
    if search is not None and (
        not isinstance(search, list) or any(type_problem(k, str) for k in search)
    ):
        raise fail(
            "strategy", "search", f"expected a list of hyperparameter names, got {search!r}"
        )
    if name == BIOTUNE:
        if options or search:
            key = next(iter(options), "search")
            raise fail("strategy", key, "BioTune's hyperparameters are its genes")
        if sampler == "grid":
            raise fail(
                "sampler",
                "name",
                "the grid sampler enumerates choices; BioTune's genes are continuous",
            )
        return name, {}, (), sampler
    try:
        given, searched = strategy_settings(name, options, search)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise fail("strategy", key, problem) from None
    if "name" not in table.get("sampler", {}):
        sampler = _strategy_sampler(name, searched)
    if sampler == BIOTUNE:
        raise fail(
            "sampler",
            "name",
            f"the biotune sampler searches BioTune's genes; strategy {name!r} needs another "
            f"sampler (e.g. {_strategy_sampler(name, searched)!r})",
        )
    if sampler == "grid" and not searches_choices_only(name, searched):
        raise fail(
            "sampler",
            "name",
            f"the grid sampler enumerates choices; strategy {name!r} searches "
            f"{', '.join(searched) or 'nothing'}",
        )
    return name, given, searched, sampler


def _named_part(
    table: Mapping[str, Any],
    section: str,
    default: str,
    names: Mapping[str, Any],
    check: Callable[[str, str, Any], str | None],
    fail: Callable[[str, str | None, str], SpecError],
) -> tuple[str, dict[str, Any]]:
    """A ``[sampler]``/``[pruner]`` table: its registry ``name`` and its checked options."""
    options = dict(table.get(section, {}))
    name = options.pop("name", default)
    if name not in names:
        raise fail(section, "name", f"unknown {section} {name!r}; choose from {', '.join(names)}")
    for key, value in options.items():
        problem = check(name, key, value)
        if problem:
            raise fail(section, key, problem)
    return name, options


def _construct(
    section: str,
    options: Mapping[str, Any],
    fail: Callable[[str, str | None, str], SpecError],
    create: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Build a component once, so that values its constructor rejects fail here, naming the
    option the error mentions (constructors name their argument)."""
    try:
        create(*args, **kwargs)
    except ValueError as exc:
        key = next((k for k in options if k in str(exc)), None)
        raise fail(section, key, str(exc)) from None


def _check_model(model: dict[str, Any], base: Path, fail: Any) -> dict[str, Any]:
    source = model.setdefault("source", "efficientnet_lite0")
    if source != "efficientnet_lite0" and (":" not in source or not all(source.split(":", 1))):
        raise fail(
            "model",
            "source",
            "use 'efficientnet_lite0', 'torchvision:<name>', 'timm:<name>' or "
            f"'<module>:<factory>', got {source!r}",
        )
    weights = model.get("weights", True)
    model["weights"] = "DEFAULT" if weights is True else (None if weights is False else weights)
    for key in ("mean", "std"):
        if key in model:
            value = model[key]
            if len(value) != 3 or any(type_problem(v, float) for v in value):
                raise fail("model", key, f"expected three numbers, got {value!r}")
            if key == "std" and min(value) <= 0:  # images are divided by it
                raise fail("model", key, f"expected three positive numbers, got {value!r}")
            model[key] = tuple(float(v) for v in value)
    if "blocks" in model:
        blocks = model["blocks"]
        for name, members in blocks.items():
            if not isinstance(members, list) or not members or type_problem(members[0], str):
                raise fail("model", f"blocks.{name}", "expected a non-empty list of module paths")
            if any(type_problem(m, str) for m in members):
                raise fail("model", f"blocks.{name}", "expected strings (module paths)")
    if "state_dict" in model:
        if ":" not in source or source.startswith(("torchvision:", "timm:")):
            raise fail("model", "state_dict", "only for '<module>:<factory>' sources")
        model["state_dict"] = _resolve(base, model["state_dict"])
        if not model["state_dict"].is_file():
            raise fail("model", "state_dict", f"no such file: {model['state_dict']}")
    return model


def _check_data(data: dict[str, Any], base: Path, fail: Any) -> dict[str, Any]:
    source = data.setdefault("source", "digits")
    if source not in ("digits", "folder") and not (
        source.startswith("torchvision:") and source.split(":", 1)[1]
    ):
        raise fail("data", "source", f"use one of {', '.join(DATA_SOURCES)}, got {source!r}")
    if source == "digits":
        if "root" in data or data.get("download"):
            raise fail("data", "root" if "root" in data else "download", "not used by digits")
    else:
        if "root" not in data:
            raise fail("data", "root", f"required for source {source!r}")
        data["root"] = _resolve(base, data["root"])
        if source == "folder" and not data["root"].is_dir():
            raise fail("data", "root", f"no such directory: {data['root']}")
        if source == "folder" and data.get("download"):
            raise fail("data", "download", "not used by folder")
    for key in ("val_fraction", "test_fraction"):
        if key in data and not 0 <= data[key] < 1:
            raise fail("data", key, f"must be in [0, 1), got {data[key]}")
    if data.get("val_fraction", 0.2) + data.get("test_fraction", 0.2) >= 1:
        raise fail("data", "val_fraction", "val_fraction + test_fraction must be below 1")
    return data
