"""The ``run`` command's progress: tqdm bars on a terminal and one line per finished trial."""

from __future__ import annotations

from typing import Any

import optuna
from tqdm.auto import tqdm

from biotune_optuna.studies._report import format_share
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import GENERATION_ATTR
from biotune_optuna.trials import TRAINABLE_FRACTION_ATTR
from biotune_optuna.trials import WALL_TIME_ATTR


class Progress:
    """A trial bar and an epoch bar (tqdm, on a terminal), and one line per finished trial.

    Args:
        total: The trials this run is to finish.
        max_epochs: The most epochs of a trial.
        quiet: No bars and no lines.
        verbose: Also a line per epoch.
    """

    def __init__(self, total: int, max_epochs: int, *, quiet: bool, verbose: bool) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.disable = True if quiet else None  # None: bars only on a terminal
        self.trials = tqdm(total=total, desc="trials", unit="trial", disable=self.disable)
        self.max_epochs = max_epochs
        self.epochs: Any = None  # the running trial's bar

    def on_epoch(self, trial: optuna.Trial, epoch: int, value: float) -> None:
        """The objective's ``on_epoch``: advance the running trial's epoch bar."""
        if self.epochs is None:
            self.epochs = tqdm(
                total=self.max_epochs,
                desc=f"trial {trial.number} epochs",
                unit="epoch",
                leave=False,
                disable=self.disable,
            )
        self.epochs.update(1)
        self.epochs.set_postfix(val=f"{value:.4f}")
        if self.verbose:
            tqdm.write(f"  trial {trial.number} epoch {epoch}: running mean {value:.4f}")

    def on_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """A study callback: close the epoch bar, advance the trial bar, say the trial."""
        if self.epochs is not None:
            self.epochs.close()
            self.epochs = None
        self.trials.update(1)
        if not self.quiet:
            tqdm.write(trial_line(trial))

    def close(self) -> None:
        """Close the bars."""
        if self.epochs is not None:
            self.epochs.close()
        self.trials.close()


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """A finished trial in one line: number, generation and role, fold, value, cost."""
    attrs = trial.user_attrs
    if trial.state == optuna.trial.TrialState.COMPLETE:
        value = f"value {trial.value:.4f}"
    else:
        value = trial.state.name.lower()
    parts = [f"trial {trial.number:>3}"]
    if GENERATION_ATTR in attrs:
        parts.append(f"gen {attrs[GENERATION_ATTR]} {attrs.get('role', ''):<9}")
    if FOLD_ATTR in attrs:
        parts.append(f"fold {attrs[FOLD_ATTR]}")
    parts.append(value)
    if TRAINABLE_FRACTION_ATTR in attrs:
        parts.append(f"trainable {format_share(attrs[TRAINABLE_FRACTION_ATTR]):>5}%")
    if WALL_TIME_ATTR in attrs:
        parts.append(f"{attrs[WALL_TIME_ATTR]:6.1f} s")
    return "  ".join(parts)
