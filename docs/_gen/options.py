"""The page of samplers, pruners and strategies, generated from their registries.

Nothing here is written by hand: this page prints the samplers' descriptions and the options a
spec may give each (type and values, from ``SPEC_OPTIONS``), the pruners' options (``PRUNERS``)
and every strategy with its hyperparameters (default, search range and help, from
``STRATEGIES``). What a sampler's or a pruner's option does is the first sentence of its
constructor argument's entry in the class's docstring (:mod:`docstrings`), the one place it is
documented; an option without one fails the build.
"""

from __future__ import annotations

from typing import Any

import docstrings
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import registries
from text import cell
from text import sentence


PAGE = "reference/options.md"

_KINDS = {bool: "true / false", int: "integer", float: "number", str: "string"}


def _options_table(cls: type, options: dict[str, Any]) -> list[str]:
    """The table of ``options``, the constructor arguments of ``cls`` that a spec may give."""
    if not options:
        return ["No options."]
    rows = ["| option | type | values | what it does |", "|---|---|---|---|"]
    for key, option in options.items():
        kind = _KINDS.get(option.kind, option.kind.__name__)
        values = "—" if option.kind is bool else cell(option.describe())
        rows.append(f"| `{key}` | {kind} | {values} | {cell(docstrings.description(cls, key))} |")
    return rows


def _samplers() -> list[str]:
    lines = [
        "## Samplers",
        "",
        "`[sampler] name` in a spec, `--sampler` on the command line, or "
        "`biotune_optuna.samplers.SAMPLERS.create(name, seed=…, search_space=…, options={…})`. "
        "Each runs with Optuna 5's defaults unless the spec gives one of the options below "
        "(the constructor arguments that take plain values).",
    ]
    for name, (_, cls, description) in registries.SAMPLERS.items():
        if not description.startswith(cls.__name__):
            description = f"{cls.__name__}: {description}"
        lines += ["", f"### `{name}`", "", sentence(description), ""]
        lines += _options_table(cls, registries.SPEC_OPTIONS[name])
    return lines


def _pruners() -> list[str]:
    lines = [
        "## Pruners",
        "",
        "`[pruner] name` in a spec; the default is `none`: the paper trains every plan "
        "to its end.",
    ]
    for name, (cls, options) in registries.PRUNERS.items():
        lines += [
            "",
            f"### `{name}`",
            "",
            f"Optuna's `{cls.__name__}`: {docstrings.summary(cls)}",
            "",
        ]
        lines += _options_table(cls, options)
    return lines


def _distribution(distribution: BaseDistribution | None) -> str:
    if distribution is None:
        return "the backbone's blocks"
    if isinstance(distribution, CategoricalDistribution):
        return ", ".join(map(str, distribution.choices))
    if isinstance(distribution, FloatDistribution | IntDistribution):
        scale = ", log" if distribution.log else ""
        return f"{distribution.low:g} – {distribution.high:g}{scale}"
    return str(distribution)


def _strategies() -> list[str]:
    lines = [
        "## Strategies",
        "",
        "`[strategy] name` in a spec, `--strategy` on the command line. A hyperparameter named "
        "in `[strategy] search` is searched over its range; otherwise it takes its default or "
        "the value the spec gives.",
    ]
    for name, info in registries.STRATEGIES.items():
        lines += ["", f"### `{name}`: {info.title}", "", sentence(info.description)]
        if info.search:
            lines += ["", f"Searched by default: {', '.join(f'`{s}`' for s in info.search)}."]
        lines.append("")
        if not info.hyperparameters:
            lines.append("No hyperparameters: the genes are searched by the sampler.")
            continue
        lines += ["| hyperparameter | default | search range | what it does |"]
        lines += ["|---|---|---|---|"]
        for key, hp in info.hyperparameters.items():
            default = "—" if hp.default is None else f"`{hp.default}`"
            lines.append(
                f"| `{key}` | {default} | {_distribution(hp.distribution)} | {cell(hp.help)} |"
            )
    return lines


def page() -> str:
    """The page's Markdown."""
    lines = [
        "# Samplers, pruners and strategies",
        "",
        "<!-- Generated from the registries and the samplers' and pruners' docstrings by "
        "docs/_gen/options.py: edit those, not this page. -->",
        "",
        "Every name a spec may give, and its options, from the registries the spec is "
        "checked against. Numbers must be finite and fit in 64 bits.",
        "",
        *_samplers(),
        "",
        *_pruners(),
        "",
        *_strategies(),
    ]
    return "\n".join(lines) + "\n"
