"""BioTune's recommended plan against the usual ways of fine-tuning, on the spec's data (torch).

The paper's comparison (arXiv:2508.15367, Table II): every method trained the same way (the
spec's protocol, data, epochs and seeds), its final model trained on the whole train split with
early stopping on the val split, tested once per seed; macro test accuracy mean ± std, the share
of parameters trained, and the compute: the final runs, plus the search before them (BioTune's
study; the block sweep of surgical fine-tuning; any hyperparameter search a spec asks for).

Every search is an Optuna study in the spec's storage (``<name>`` for BioTune,
``<name>-<strategy>`` for baselines), so the command resumes, and the dashboard shows them.
A searched method's final model uses its study's recommended trial
(:func:`~biotune_optuna.studies._recommendation.current_recommendation`, the same rule for every
sampler and strategy), not its luckiest single evaluation. Finished rows are kept in
``baselines.json`` and not trained again.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from biotune_optuna.options import format_setting
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._report import format_mean_std
from biotune_optuna.studies._report import format_share
from biotune_optuna.studies._report import markdown_table
from biotune_optuna.studies._retrain import final_evaluation
from biotune_optuna.studies._retrain import test_summary
from biotune_optuna.studies._session import prepare_study
from biotune_optuna.studies._session import run_to_budget
from biotune_optuna.studies._spec import default_sampler
from biotune_optuna.studies._spec import SpecError
from biotune_optuna.studies._spec import StudySpec
from biotune_optuna.studies._storage import masked_data
from biotune_optuna.studies._storage import masked_text
from biotune_optuna.trials import WALL_TIME_ATTR


__all__ = ["BASELINE_ROWS", "BaselineRow", "compare_baselines"]


@dataclasses.dataclass(frozen=True)
class BaselineRow:
    """One row of the table: a strategy with some hyperparameters given.

    Attributes:
        label: The row's name in the table.
        strategy: The strategy's registry name.
        options: Its given hyperparameters (the others: defaults, or searched).
        search: Hyperparameters to search (default: the strategy's own search).
        trials: Budget of that search (default: one trial per choice, or the spec's budget).
    """

    label: str
    strategy: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    search: tuple[str, ...] | None = None
    trials: int | None = None

    @property
    def key(self) -> str:
        """The row's suffix of study names (``lora-r4``, ``full-search-lr``)."""
        key = self.strategy + "".join(f"-{k[0]}{v}" for k, v in self.options.items())
        return key + "".join(f"-search-{k}" for k in self.search or ())


#: The default rows: BioTune and the baselines of arXiv:2508.15367 and arXiv:2406.10050.
BASELINE_ROWS = (
    BaselineRow("BioTune (best plan)", BIOTUNE),
    BaselineRow("Full fine-tuning", "full"),
    BaselineRow("Linear probe", "linear_probe"),
    BaselineRow("LP-FT", "lp_ft"),
    BaselineRow("Surgical (best block on val)", "surgical"),
    BaselineRow("Auto-RGN", "auto_rgn"),
    BaselineRow("L2-SP", "l2sp"),
    BaselineRow("L1-SP", "l1sp"),
    BaselineRow("LoRA r=4", "lora", {"rank": 4}),
    BaselineRow("LoRA r=8", "lora", {"rank": 8}),
    BaselineRow("LoRA r=16", "lora", {"rank": 16}),
    BaselineRow("Layer-wise lr decay", "llrd"),
)


def _row_spec(spec: StudySpec, row: BaselineRow) -> StudySpec:
    if row.strategy == BIOTUNE:
        return spec
    sibling = spec.with_overrides(strategy=row.strategy, trials=row.trials)
    search = sibling.strategy_search if row.search is None else row.search
    search = tuple(k for k in search if k not in row.options)
    return dataclasses.replace(
        sibling,
        name=f"{spec.name}-{row.key}",
        strategy_options={**sibling.strategy_options, **row.options},
        strategy_search=search,
        sampler=default_sampler(row.strategy, search),
    )


def _search_seconds(study: optuna.Study) -> tuple[float, int]:
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return float(sum(t.user_attrs.get(WALL_TIME_ATTR, 0.0) for t in trials)), len(trials)


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={format_setting(v)}" for k, v in settings.items())


@dataclasses.dataclass(frozen=True)
class _Search:
    """What a row's search chose: the recommended trial's parameters, and its cost."""

    params: dict[str, Any]
    seconds: float = 0.0
    trials: int = 0
    study: str | None = None


def compare_baselines(
    spec: StudySpec,
    *,
    n_seeds: int,
    output: Path,
    rows: Sequence[BaselineRow] = BASELINE_ROWS,
    say: Callable[[str], None] = print,
) -> tuple[str, list[dict[str, Any]]]:
    """Run (or resume) BioTune's study and the baselines' searches, train every method's final
    model ``n_seeds`` times, and write ``baselines.md`` and ``baselines.json`` to ``output``.

    Args:
        spec: A fine-tuning spec whose strategy is BioTune (its study is the BioTune row).
        n_seeds: Final training runs per method (the paper: 3).
        output: Directory of the table.
        rows: The methods.
        say: Where progress lines go.

    Returns:
        The markdown table and the rows' results.
    """
    from biotune_optuna.studies._objectives import build_objective

    if spec.objective != "finetune" or spec.strategy != BIOTUNE:
        raise SpecError(f"{spec.source}: baselines needs a BioTune fine-tuning spec")
    final_protocol = dataclasses.replace(spec.protocol, n_seeds=n_seeds)
    output.mkdir(parents=True, exist_ok=True)
    store = output / "baselines.json"
    done: dict[str, dict[str, Any]] = {}
    if store.is_file():
        done = {r["key"]: r for r in json.loads(store.read_text()).get("rows", [])}
    base = build_objective(spec)
    results: list[dict[str, Any]] = []
    for row in rows:
        if row.strategy == BIOTUNE and spec.sampler != BIOTUNE:  # e.g. --sampler tpe
            row = dataclasses.replace(row, label=f"Best plan found by {spec.sampler}")
        row_spec = _row_spec(spec, row)
        objective = _row_objective(base, spec, row, row_spec)
        search = _search(row, row_spec, objective, say)
        strategy = _row_strategy(objective, row, row_spec, search.params, spec.protocol.base_lr)
        settings = dict(strategy.settings) if row.strategy != BIOTUNE else {}
        key = ":".join(
            [row.key, json.dumps({**settings, **search.params}, sort_keys=True), str(n_seeds)]
            + [f"{search.study}#{search.trials}"] * bool(search.study)
        )
        if key in done:
            say(f"{row.label}: kept from {store}")
            results.append(done[key])
            continue
        summary = test_summary(final_evaluation(objective, strategy, final_protocol))
        entry = {
            "key": key,
            "label": row.label,
            "strategy": row.strategy,
            "settings": settings,
            "plan": strategy.describe() if row.strategy == BIOTUNE else None,
            "search_study": search.study,
            "search_trials": search.trials,
            "search_seconds": search.seconds,
            **summary,
        }
        results.append(entry)
        done[key] = entry
        store.write_text(json.dumps(masked_data({"rows": list(done.values())}), indent=2) + "\n")
        say(_result_line(row.label, summary))
    table = baseline_table(results, n_seeds)
    # Reports are shared: no password of a URL goes into them.
    (output / "baselines.md").write_text(
        masked_text(_table_header(spec, base.data, n_seeds) + table) + "\n"
    )
    rows_and_table = {"rows": list(done.values()), "table": [r["key"] for r in results]}
    store.write_text(json.dumps(masked_data(rows_and_table), indent=2) + "\n")
    return table, results


def _result_line(label: str, summary: dict[str, Any]) -> str:
    return (
        f"{label}: test macro accuracy "
        f"{format_mean_std(summary['test_macro_accuracy_per_seed'])}, "
        f"{format_share(summary['trainable_fraction'])}% trained, {summary['seconds']:.0f} s"
    )


def _row_objective(base: Any, spec: StudySpec, row: BaselineRow, row_spec: StudySpec) -> Any:
    """The row's objective: BioTune's own, or the baseline's on the same backbone, data and
    feature cache."""
    if row.strategy == BIOTUNE:
        return base
    from biotune_optuna.finetune import FineTuneObjective

    return FineTuneObjective(
        base.backbone,
        base.data,
        spec.protocol,
        fold_of_trial=spec.schedule.fold_of_trial,
        cache=base.cache,
        strategy=row.strategy,
        strategy_options=row_spec.strategy_options,
        search=row_spec.strategy_search,
    )


def _search(
    row: BaselineRow, row_spec: StudySpec, objective: Any, say: Callable[[str], None]
) -> _Search:
    """Run (or resume) the row's study, if it is defined by a search (BioTune's genes, a
    baseline's searched hyperparameters), and take its recommended trial."""
    space = objective.search_space
    if not space:
        return _Search({})
    study, _ = prepare_study(row_spec, objective=objective)
    ran = run_to_budget(study, objective, row_spec.budget_for(space))
    seconds, trials = _search_seconds(study)
    chosen = current_recommendation(study)
    if chosen is None:
        raise SpecError(f"study `{study.study_name}` has no complete trial")
    say(
        f"{row.label}: study `{study.study_name}` {trials} trials "
        f"({ran} run now), recommended trial #{chosen.trial.number} (estimate "
        f"{chosen.estimate:.4f}), best validation {study.best_value:.4f}"
    )
    return _Search(chosen.trial.params, seconds, trials, study.study_name)


def _row_strategy(
    objective: Any,
    row: BaselineRow,
    row_spec: StudySpec,
    params: dict[str, Any],
    base_lr: float,
) -> Any:
    """The strategy the row's final model trains with: BioTune's recommended plan, or the
    baseline with its given and searched hyperparameters."""
    if row.strategy == BIOTUNE:
        return objective.strategy_of(params)
    from biotune_optuna.finetune._strategies import build_strategy
    return build_strategy(row.strategy, {**row_spec.strategy_options, **params}, base_lr=base_lr)


def _table_header(spec: StudySpec, data: Any, n_seeds: int) -> str:
    """What the table was measured on: data, model, protocol, final runs."""
    model = spec.model.source if spec.model is not None else None
    protocol = spec.protocol
    return (
        f"# {spec.name}: BioTune against baselines\n\n"
        f"Data `{data.name}`: {len(data.train_labels)} train, {len(data.val_labels)} val, "
        f"{len(data.test_labels)} test images; model `{model}`; protocol "
        f"{protocol.image_size} px, ≤ {protocol.max_epochs} epochs (patience "
        f"{protocol.patience}), batch {protocol.batch_size}, {protocol.optimizer} "
        f"at base lr {protocol.base_lr:g}, cosine t_max {protocol.t_max}. Final "
        f"models: whole train split, early stopping on val, test once per seed "
        f"({n_seeds} seeds from {protocol.seed}).\n\n"
    )


def baseline_table(results: Sequence[dict[str, Any]], n_seeds: int) -> str:
    """The markdown table of :func:`compare_baselines`' rows."""
    header = [
        "method",
        "hyperparameters",
        f"test macro acc. (mean ± std, {n_seeds} seeds)" if n_seeds > 1 else "test macro acc.",
        "trainable %",
        f"final training s ({n_seeds} seeds)",
        "search s (trials)",
    ]
    best = max((r["test_macro_accuracy_mean"] for r in results), default=np.nan)
    lines = []
    for r in results:
        accuracy = format_mean_std(r["test_macro_accuracy_per_seed"], scale=100, digits=2)
        if r["test_macro_accuracy_mean"] == best:
            accuracy = f"**{accuracy}**"
        if r["strategy"] == BIOTUNE and r.get("plan"):
            lrs = r["plan"]["learning_rates"]
            trained = [b for b, lr in lrs.items() if lr > 0]
            what = f"plan: trains {', '.join(trained)}"
        else:
            what = _settings_text(r["settings"])
        search = f"{r['search_seconds']:.0f} ({r['search_trials']})" if r["search_trials"] else "–"
        lines.append(
            [
                r["label"],
                what,
                accuracy,
                format_share(r["trainable_fraction"]),
                f"{r['seconds']:.0f}",
                search,
            ]
        )
    return markdown_table(header, lines)
