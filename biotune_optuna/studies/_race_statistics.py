"""Judge a race with the statistics a reviewer expects (Demšar, JMLR 7, 2006; Benavoli et al.,
JMLR 17, 2016): mean ranks with bootstrap intervals, a Friedman test, pairwise Wilcoxon
signed-rank tests with Holm's correction, and a critical-difference figure.

Scores come as ``{method: [score per block]}``; a *block* is one (task, seed) pair, the same
blocks for every method, larger scores better. Ranks are 1 for the best, ties share the mean
rank. Everything is deterministic (the bootstrap takes a seed), so a report regenerates byte
for byte from the same scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from pathlib import Path
import textwrap
from typing import Any

import numpy as np


__all__ = [
    "PairTest",
    "bootstrap_mean_ranks",
    "friedman",
    "holm",
    "mean_ranks",
    "rank_matrix",
    "save_cd_figure",
    "significant_pairs",
    "wilcoxon_holm",
]


def rank_matrix(scores: Mapping[str, Sequence[float]]) -> tuple[list[str], np.ndarray]:
    """The methods and their ranks per block (``blocks × methods``; 1 = best, ties averaged)."""
    from scipy.stats import rankdata

    methods = list(scores)
    values = np.array([scores[m] for m in methods], dtype=float).T
    if values.ndim != 2 or not values.size:
        raise ValueError("scores: every method needs the same, non-empty list of blocks")
    return methods, np.vstack([rankdata(-row) for row in values])


def mean_ranks(scores: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Each method's mean rank over the blocks."""
    methods, ranks = rank_matrix(scores)
    return {m: float(r) for m, r in zip(methods, ranks.mean(axis=0))}


def bootstrap_mean_ranks(
    scores: Mapping[str, Sequence[float]], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """A 95 % percentile-bootstrap interval of each method's mean rank (blocks resampled)."""
    methods, ranks = rank_matrix(scores)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ranks), size=(n_boot, len(ranks)))
    means = ranks[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return {m: (float(lo), float(hi)) for m, lo, hi in zip(methods, low, high)}


def friedman(scores: Mapping[str, Sequence[float]]) -> tuple[float, float]:
    """Friedman's test that all methods rank alike: ``(statistic, p)`` (``nan`` if < 3)."""
    from scipy.stats import friedmanchisquare

    columns = [np.asarray(v, dtype=float) for v in scores.values()]
    if len(columns) < 3 or len(columns[0]) < 2:
        return float("nan"), float("nan")
    if all(np.array_equal(columns[0], c) for c in columns[1:]):
        return 0.0, 1.0
    result = friedmanchisquare(*columns)
    return float(result.statistic), float(result.pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order (family-wise error control)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return [float(a) for a in adjusted]


@dataclasses.dataclass(frozen=True)
class PairTest:
    """A Wilcoxon signed-rank test of ``method`` against the reference, over the blocks.

    Attributes:
        method: The other method.
        wins: Blocks where the reference scores higher.
        ties: Blocks with equal scores.
        losses: Blocks where the reference scores lower.
        median_difference: Median of reference minus method.
        p: Two-sided p-value (``1`` when every difference is zero).
        p_holm: ``p`` after Holm's correction over the reference's comparisons.
    """

    method: str
    wins: int
    ties: int
    losses: int
    median_difference: float
    p: float
    p_holm: float


def wilcoxon_holm(scores: Mapping[str, Sequence[float]], reference: str) -> list[PairTest]:
    """The reference against every other method: Wilcoxon signed-rank (zero differences split
    between the signs, Pratt's ``zsplit``), two-sided, Holm-corrected over the family."""
    base = np.asarray(scores[reference], dtype=float)
    rows: list[dict[str, Any]] = []
    for method, values in scores.items():
        if method == reference:
            continue
        diff = base - np.asarray(values, dtype=float)
        p = _signed_rank_p(diff)
        rows.append(
            {
                "method": method,
                "wins": int((diff > 0).sum()),
                "ties": int((diff == 0).sum()),
                "losses": int((diff < 0).sum()),
                "median_difference": float(np.median(diff)),
                "p": p,
            }
        )
    adjusted = holm([row["p"] for row in rows])
    return [PairTest(**row, p_holm=a) for row, a in zip(rows, adjusted)]


def _signed_rank_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences (``zsplit``; 1 if all zero)."""
    from scipy.stats import wilcoxon

    return 1.0 if not np.any(diff) else float(wilcoxon(diff, zero_method="zsplit").pvalue)


def significant_pairs(
    scores: Mapping[str, Sequence[float]], *, alpha: float = 0.05
) -> set[frozenset[str]]:
    """The pairs of methods that differ significantly: Wilcoxon signed-rank over all pairs,
    Holm-corrected over the whole family, ``p < alpha`` (what :func:`save_cd_figure` needs)."""
    names = list(scores)
    pairs, ps = [], []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pairs.append(frozenset((a, b)))
            ps.append(_signed_rank_p(np.asarray(scores[a], float) - np.asarray(scores[b], float)))
    return {pair for pair, p in zip(pairs, holm(ps)) if p < alpha}


def _cliques(order: list[str], apart: set[frozenset[str]]) -> list[tuple[int, int]]:
    """Maximal runs of methods (in rank order) no two of which are significantly apart."""
    runs: list[tuple[int, int]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and all(
            frozenset((order[k], order[j + 1])) not in apart for k in range(i, j + 1)
        ):
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def save_cd_figure(
    ranks: Mapping[str, float],
    apart: set[frozenset[str]],
    path: str | Path,
    *,
    title: str,
) -> Path:
    """A critical-difference figure: methods on the mean-rank axis (best on the left), a bar
    joining each group of methods no two of which differ significantly.

    ``apart`` holds the pairs that *do* differ significantly (e.g. Wilcoxon–Holm p < 0.05).
    The SVG is written without a date or random ids, so the same input gives the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(ranks, key=lambda m: (ranks[m], m))
    low, high = 1, max(len(order), 2)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(order)))
    ax.set_xlim(low - 0.3, high + 0.3)  # rank 1 on the left
    ax.set_ylim(-len(order) - 0.5, 1.2)
    ax.hlines(0.8, low, high, color="black", linewidth=1)
    for r in range(low, high + 1):
        ax.vlines(r, 0.8, 0.95, color="black", linewidth=1)
        ax.text(r, 1.0, str(r), ha="center", va="bottom", fontsize=8)
    for i, method in enumerate(order):
        y = -i - 0.6
        ax.plot([ranks[method]] * 2, [0.8, y], color="0.4", linewidth=0.8)
        ax.text(
            ranks[method],
            y,
            f"  {method} ({ranks[method]:.2f})  ",
            va="center",
            ha="left" if i < len(order) / 2 else "right",
            fontsize=8,
        )
    for n, (a, b) in enumerate(_cliques(order, apart)):
        y = 0.6 - 0.16 * n
        ax.hlines(y, ranks[order[a]] - 0.03, ranks[order[b]] + 0.03, color="tab:red", linewidth=3)
    ax.set_title("\n".join(textwrap.wrap(title, 100)), fontsize=9, pad=16)
    ax.axis("off")
    path = Path(path)
    plt.rcParams["svg.hashsalt"] = "biotune-optuna"
    fig.savefig(
        path, format=path.suffix.lstrip(".") or "svg", metadata={"Date": None}, bbox_inches="tight"
    )
    plt.close(fig)
    return path
