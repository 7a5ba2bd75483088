"""``compare``: a study and its siblings (or chosen studies), as a table and best-so-far plots."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna

from biotune_optuna.cli._common import positive_ints
from biotune_optuna.cli._common import say
from biotune_optuna.cli._common import spec_of
from biotune_optuna.plan import BIOTUNE
from biotune_optuna.studies import StudySpec
from biotune_optuna.studies._report import compare_figures
from biotune_optuna.studies._report import compare_rows
from biotune_optuna.studies._report import markdown_table
from biotune_optuna.studies._session import missing_study
from biotune_optuna.studies._session import reading_storage
from biotune_optuna.studies._session import study_exists
from biotune_optuna.studies._session import study_names
from biotune_optuna.studies._storage import display_storage


def add_arguments(compare: argparse.ArgumentParser) -> None:
    """The ``compare`` command's own arguments."""
    compare.add_argument(
        "--study",
        action="append",
        default=None,
        metavar="NAME",
        help="a study of the spec's storage to compare (repeatable; default: the siblings)",
    )
    compare.add_argument(
        "--budgets", type=positive_ints, default=None, help="comma-separated trial budgets"
    )
    compare.add_argument("--output", type=Path, help="directory of the table and plots")


def handle(args: argparse.Namespace) -> int:
    """Write and print the comparison table, and write the best-so-far plots."""
    spec = spec_of(args)
    base = spec.name
    groups = _groups(spec.storage, _names_to_compare(args, spec))
    budgets = args.budgets or sorted({spec.budget // 4, spec.budget // 2, spec.budget} - {0})
    header, rows = compare_rows(groups, budgets)
    table = markdown_table(header, rows)
    out = args.output or (spec.path.resolve().parent / "compare" / base)
    paths = compare_figures(groups, out, base)
    listing = ", ".join(f"{k}: {len(v)}" for k, v in groups.items())
    (out / "compare.md").write_text(
        f"# {base}: samplers compared\n\nStudies ({listing}) in "
        f"`{display_storage(spec.storage)}`.\n\n{table}\n"
    )
    print(table)
    say(args, f"\nwrote {out / 'compare.md'}, " + ", ".join(str(p) for p in paths))
    return 0


def _names_to_compare(args: argparse.Namespace, spec: StudySpec) -> list[str]:
    """The ``--study`` names, or the spec's study and its siblings (``<name>-...``).

    Raises:
        SpecError: If a named study, or the spec's own, is not in the storage.
    """
    if args.study:
        for name in args.study:
            if not study_exists(spec.storage, name):
                raise missing_study(spec.storage, name)
        return list(args.study)
    base = spec.name
    if not study_exists(spec.storage, base):
        raise missing_study(spec.storage, base)
    return [
        name for name in study_names(spec.storage) if name == base or name.startswith(f"{base}-")
    ]


def _groups(storage_url: str, names: list[str]) -> dict[str, list[optuna.Study]]:
    """The studies by sampler (a baseline's as ``<strategy> (<sampler>)``: other genes)."""
    storage = reading_storage(storage_url)
    groups: dict[str, list[optuna.Study]] = {}
    for name in sorted(names):
        study = optuna.load_study(study_name=name, storage=storage)
        label = study.user_attrs.get("sampler", type(study.sampler).__name__)
        strategy = study.user_attrs.get("strategy", BIOTUNE)
        if strategy != BIOTUNE:  # a baseline's search: not the same genes
            label = f"{strategy} ({label})"
        groups.setdefault(label, []).append(study)
    return groups
