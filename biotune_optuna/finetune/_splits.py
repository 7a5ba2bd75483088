"""A part of a dataset to train, validate or test on: :class:`DataSplit`.

The search trains and validates each plan on one of the paper's stratified folds
(arXiv:2508.15367, §III); a final evaluation uses whole splits. Either way the engine gets the
examples as a :class:`DataSplit`, whose ``key`` names the part for the frozen-prefix feature
cache.
"""

from __future__ import annotations

from collections.abc import Hashable
import dataclasses

import numpy as np
from torch.utils.data import Dataset


__all__ = ["DataSplit"]


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """A part of a dataset: the examples at ``indices``.

    Attributes:
        dataset: The dataset.
        indices: Positions in ``dataset``.
        labels: Their labels, aligned with ``indices``.
        key: Identifies the part for the feature cache (``None``: never cached).
    """

    dataset: Dataset
    indices: np.ndarray
    labels: np.ndarray
    key: Hashable | None = None

    def __len__(self) -> int:
        return len(self.indices)
