"""A cheap stand-in for the fine-tuning objective, with the same genes and a known optimum.

Fine-tuning a network for every trial takes minutes; comparing samplers, testing resumption and
running the demo need an objective that answers in microseconds but looks like the real one to
the sampler. :class:`SyntheticFineTuning` takes BioTune's ``B + 2`` genes (one importance per
block and the freezing threshold, arXiv:2508.15367 §II), decodes them into a freeze mask and
per-block learning-rate multipliers ``10 ** (2 * (nu_b - 0.5))`` exactly as the real plan does, and
scores the plan with a fixed, seeded landscape:

* each block has a gain from fine-tuning (negative for early, generic blocks, positive for late,
  task-specific ones, drawn around that trend) and a preferred learning-rate multiplier; a
  fine-tuned block earns its gain minus a penalty growing with ``log10(lr / preferred)**2``;
* training the late blocks while freezing the early ones interacts: a fine-tuned block whose
  predecessor is frozen loses a little (features drift without adapting their input);
* a plan that fine-tunes nothing scores 0, the worst fitness, as the real objective does.

The score is a validation "accuracy" in ``[0, 1]``, maximised. With ``epochs > 1`` a trial also
reports a learning curve, epoch by epoch, that ends at the score: plans with higher learning
rates rise faster, so early epochs rank plans roughly but not exactly as their ends do (what a
multi-fidelity pruner over epochs faces), and pruners can stop a trial at any epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import optuna

from biotune_optuna.plan import importance_param
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.trials import EpochCallback
from biotune_optuna.trials import prune_if_asked


if TYPE_CHECKING:
    pass

#: The most blocks a landscape has: every trial suggests one gene per block, so 100000 blocks
#: never finish a trial; real backbones have a few to a few dozen (ResNet-50: 6, ViT-L: 26).
MAX_BLOCKS = 64
#: The most epochs a landscape's learning curve has.
MAX_EPOCHS = 1000


class SyntheticFineTuning:
    """A seeded synthetic fine-tuning landscape over BioTune genes (maximise).

    Args:
        n_blocks: Number of blocks (one importance gene each, plus the threshold: 7 genes for
            the default 6, the block count of ResNet-50 in the paper), at most
            :data:`MAX_BLOCKS`.
        seed: Seed of the landscape (not of the search).
        epochs: Epochs of each trial's learning curve (:meth:`learning_curve`); above 1, a
            trial reports its value after every epoch (``trial.report``), so pruners work.

    Attributes:
        blocks: The landscape's block names, ``block0`` to ``block<n_blocks - 1>``.
        on_epoch: Called as ``on_epoch(trial, epoch, value)`` after every epoch of a learning
            curve (the interface the fine-tuning objective shares,
            :class:`~biotune_optuna.trials.StudyObjective`); never with one epoch.
    """

    def __init__(self, *, n_blocks: int = 6, seed: int = 0, epochs: int = 1) -> None:
        if not 1 <= n_blocks <= MAX_BLOCKS:
            raise ValueError(f"`n_blocks` must be in [1, {MAX_BLOCKS}], got {n_blocks}.")
        if not 1 <= epochs <= MAX_EPOCHS:
            raise ValueError(f"`epochs` must be in [1, {MAX_EPOCHS}], got {epochs}.")
        self.epochs = epochs
        rng = np.random.default_rng(seed)
        depth = np.linspace(0.0, 1.0, n_blocks)
        self.blocks = [f"block{b}" for b in range(n_blocks)]
        self.gain = 0.06 * (depth - 0.35) + rng.normal(0.0, 0.02, n_blocks)
        self.preferred_log_lr = rng.uniform(-0.8, 0.8, n_blocks)
        self.base_accuracy = 0.80
        self.on_epoch: EpochCallback | None = None

    @property
    def search_space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The genes, for ``BioTuneSampler(search_space=...)``: ``plan_search_space(blocks)``."""
        return dict(plan_search_space(self.blocks))

    @property
    def param_names(self) -> list[str]:
        """Names of the genes, importances in block order and the threshold last."""
        return [importance_param(b) for b in self.blocks] + [THRESHOLD_PARAM]

    def score(self, genes: dict[str, float]) -> float:
        """Accuracy of the plan that ``genes`` decodes to."""
        threshold = genes[THRESHOLD_PARAM]
        nu = np.array([genes[importance_param(b)] for b in self.blocks])
        trained = nu > threshold
        if not trained.any():
            return 0.0
        log_lr = 2.0 * (nu - 0.5)
        lr_penalty = 0.05 * (log_lr - self.preferred_log_lr) ** 2
        value = self.base_accuracy + float(np.sum(trained * (self.gain - lr_penalty)))
        drift = trained[1:] & ~trained[:-1]
        value -= 0.01 * float(drift.sum())
        return float(min(1.0, max(0.0, value)))

    def best_possible(self) -> float:
        """The optimum, by brute force over masks (each block at its preferred learning rate)."""
        best = 0.0
        n = len(self.blocks)
        for mask in range(1, 2**n):
            trained = np.array([(mask >> b) & 1 for b in range(n)], dtype=bool)
            value = self.base_accuracy + float(np.sum(self.gain[trained]))
            value -= 0.01 * float((trained[1:] & ~trained[:-1]).sum())
            best = max(best, value)
        return float(min(1.0, best))

    def learning_curve(self, genes: dict[str, float]) -> list[float]:
        """The value after each epoch, ending at :meth:`score`: ``score · (1 − e^{−k t}) /
        (1 − e^{−k E})`` at epoch ``t`` of ``E``, with a rate ``k`` that grows with the mean
        log learning rate of the trained blocks."""
        final = self.score(genes)
        nu = np.array([genes[importance_param(b)] for b in self.blocks])
        trained = nu > genes[THRESHOLD_PARAM]
        log_lr = float(np.mean(2.0 * (nu[trained] - 0.5))) if trained.any() else 0.0
        rate = max(0.2, 0.6 + 0.5 * log_lr)
        end = 1.0 - np.exp(-rate * self.epochs)
        return [final * float(1.0 - np.exp(-rate * t)) / end for t in range(1, self.epochs + 1)]

    def __call__(self, trial: optuna.Trial) -> float:
        genes = {name: trial.suggest_float(name, 0.0, 1.0) for name in self.param_names}
        if self.epochs == 1:
            return self.score(genes)
        curve = self.learning_curve(genes)
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, epoch, value)
            prune_if_asked(trial, epoch, value, last=len(curve))
        return curve[-1]
