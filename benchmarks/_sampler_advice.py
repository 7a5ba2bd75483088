"""Which sampler to pick: the README's block, written from the plan-table race's JSON.

The README quotes the race on the **test** tables only (the tables no preset was tuned on) and
writes nothing by hand: ``benchmarks/table_race.py report`` rewrites the block between
:data:`START` and :data:`END` in ``README.md`` from ``benchmarks/results/table_race.json``, and
``tests/benchmarks/test_sampler_advice.py`` fails when the README's block is not what the JSON
gives. For every scored budget: each entry's mean rank (1 = best) with its 95 % bootstrap interval,
the Friedman test, and the *leading group*: the best-ranked entry and every entry that is not
significantly different from it (:func:`leading_group`); and each entry's median seconds per
study (sampler and replay together, one core), what its choices cost before any training.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from biotune_optuna.studies import _race_statistics as stats


__all__ = [
    "ALPHA",
    "END",
    "START",
    "advice_block",
    "block_of",
    "leading_group",
    "replace_block",
    "update_readme",
]

ALPHA = 0.05
START = "<!-- sampler-advice:start (written by benchmarks/table_race.py report) -->"
END = "<!-- sampler-advice:end -->"


def leading_group(scores: Mapping[str, Sequence[float]]) -> list[str]:
    """The best-ranked entry, then (in rank order) every entry not significantly different from
    it: Wilcoxon signed-rank of the leader against each other entry, Holm-corrected over those
    comparisons, α = 0.05."""
    ranks = stats.mean_ranks(scores)
    order = sorted(ranks, key=lambda e: (ranks[e], e))
    apart = {t.method for t in stats.wilcoxon_holm(scores, order[0]) if t.p_holm < ALPHA}
    return [e for e in order if e not in apart]


def advice_block(
    scores_at: Mapping[int, Mapping[str, Sequence[float]]],
    *,
    seconds: Mapping[str, float],
    label: Callable[[str], str],
    tables: Sequence[str],
    seeds: int,
) -> str:
    """The README block: ranks per budget and the leading group at each.

    Args:
        scores_at: ``{budget: {entry: scores over the (table, seed) blocks}}``.
        seconds: Each entry's median seconds per study of the full budget.
        label: An entry's display name.
        tables: The test tables the blocks come from.
        seeds: Seeds per table.
    """
    budgets = sorted(scores_at)
    ranks = {b: stats.mean_ranks(scores_at[b]) for b in budgets}
    intervals = {b: stats.bootstrap_mean_ranks(scores_at[b]) for b in budgets}
    last = budgets[-1]
    order = sorted(ranks[last], key=lambda e: (ranks[last][e], e))
    header = (
        "| sampler | "
        + " | ".join(f"mean rank after {b} trials" for b in budgets)
        + f" | seconds per {last}-trial study |"
    )
    lines = [
        f"Test tables {', '.join(f'`{t}`' for t in tables)} × {seeds} seeds: mean rank "
        "(1 = best) of the recorded test accuracy of the plan each study recommends, "
        "95 % bootstrap interval in brackets; the median seconds a study of the sampler "
        "took with the training replayed (its own cost, one core).",
        "",
        header,
        "|" + "---|" * (len(budgets) + 2),
    ]
    for entry in order:
        cells = [
            f"{ranks[b][entry]:.2f} [{intervals[b][entry][0]:.2f}, {intervals[b][entry][1]:.2f}]"
            for b in budgets
        ]
        cells.append(f"{seconds[entry]:.2g}")
        lines.append(f"| {label(entry)} | " + " | ".join(cells) + " |")
    lines.append("")
    groups = {b: leading_group(scores_at[b]) for b in budgets}
    for b in budgets:
        _, p = stats.friedman(scores_at[b])
        lines.append(
            f"- After {b} trials (Friedman p = {p:.2g}): best mean rank "
            f"`{label(groups[b][0])}`; not significantly different from it (Wilcoxon–Holm, "
            f"α = 0.05): {_names(groups[b][1:], label)}."
        )
    lines.append(_pick(groups, order, seconds, label))
    return "\n".join([START, *lines, END])


def _names(entries: Sequence[str], label: Callable[[str], str]) -> str:
    return ", ".join(f"`{label(e)}`" for e in entries) or "none"


def _pick(
    groups: Mapping[int, Sequence[str]],
    order: Sequence[str],
    seconds: Mapping[str, float],
    label: Callable[[str], str],
) -> str:
    """The reading for a user: the entries in every budget's leading group (the cheapest of
    them named), and those in none."""
    always = [e for e in order if all(e in g for g in groups.values())]
    never = [e for e in order if not any(e in g for g in groups.values())]
    cheapest = min(always, key=lambda e: (seconds[e], e)) if always else None
    words = f"; the cheapest of them per study: `{label(cheapest)}`" if cheapest else ""
    return (
        f"- In the leading group at every budget: {_names(always, label)}{words}. "
        f"Significantly behind the best at every budget: {_names(never, label)}."
    )


def replace_block(text: str, block: str) -> str:
    """``text`` with its advice block replaced by ``block`` (both markers must be there)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no block between {START!r} and {END!r}")
    return text[:start] + block + text[end + len(END) :]


def update_readme(path: Path, block: str) -> bool:
    """Rewrite the block in the README at ``path``; whether it changed."""
    text = path.read_text()
    new = replace_block(text, block)
    if new != text:
        path.write_text(new)
    return new != text


def block_of(text: str) -> str:
    """The README's current block, markers included."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no block between {START!r} and {END!r}")
    return text[start : end + len(END)]
