"""Naming convention of BioTune genes, shared by the sampler and the fine-tuning objective.

BioTune (Colan, Davila, Hasegawa, arXiv:2508.15367, §II) encodes a fine-tuning plan for a backbone
cut into blocks ``m_0..m_B`` as ``B + 2`` genes in ``[0, 1]``: one importance index per block and
one freezing threshold. Block ``b`` is fine-tuned iff its importance is strictly above the
threshold. The sampler is generic, but when a search space holds genes named by this convention it
also honours the paper's rules that depend on their meaning (an initial genotype or an immigrant
must select at least one block; elite exploitation only perturbs selected blocks).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any


#: Parameter name prefix of a block's importance gene, e.g. ``"importance:layer3"``.
IMPORTANCE_PREFIX = "importance:"
#: Parameter name of the freezing threshold gene.
THRESHOLD_PARAM = "freeze_threshold"


def importance_param(block: str) -> str:
    """Return the parameter name of the importance gene of ``block``."""
    return f"{IMPORTANCE_PREFIX}{block}"


def learning_rate_multiplier(importance: float) -> float:
    """Learning-rate multiplier of a fine-tuned block: ``10 ** (2 * (importance - 0.5))``.

    Log-uniform in the importance over ``(0.1, 10]``; 0.5 gives 1 (arXiv:2508.15367, §II).
    """
    return float(10.0 ** (2.0 * (importance - 0.5)))


def biotune_gene_indices(names: Sequence[str]) -> tuple[list[int], int] | None:
    """Locate BioTune genes among parameter names.

    Args:
        names: Parameter names in genotype order.

    Returns:
        ``(importance_indices, threshold_index)`` if ``names`` holds the threshold and at least one
        importance gene, else :obj:`None`.
    """
    if THRESHOLD_PARAM not in names:
        return None
    importance = [i for i, name in enumerate(names) if name.startswith(IMPORTANCE_PREFIX)]
    if not importance:
        return None
    return importance, list(names).index(THRESHOLD_PARAM)


def block_names(params: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Block names of the importance genes among parameter names, in the order given."""
    return [p[len(IMPORTANCE_PREFIX) :] for p in params if p.startswith(IMPORTANCE_PREFIX)]


def selected_blocks(params: Mapping[str, Any]) -> list[str]:
    """Return the blocks a BioTune genotype fine-tunes (importance strictly above the threshold).

    Args:
        params: Trial parameters holding the threshold and the importance genes.

    Returns:
        Block names in the order of ``params``.
    """
    threshold = float(params[THRESHOLD_PARAM])
    return [
        name[len(IMPORTANCE_PREFIX) :]
        for name, value in params.items()
        if name.startswith(IMPORTANCE_PREFIX) and float(value) > threshold
    ]
