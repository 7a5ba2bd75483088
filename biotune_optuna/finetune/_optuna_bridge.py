"""Optuna's private API as the fine-tuning engine uses it, in one place.

``pyproject.toml`` allows any ``optuna>=5.0,<6``, and a minor release may rename a private
attribute. Every private name the engine touches is reached through this module and listed in
:data:`PRIVATE_ATTRIBUTES`, which ``tests/test_optuna_bridges.py`` resolves against the
installed Optuna, naming this module and the version when one is gone.
"""

from __future__ import annotations

import optuna


__all__ = ["PRIVATE_ATTRIBUTES", "PRIVATE_NAMES", "study_id", "trial_id"]

#: Private names imported from Optuna, as ``"module:name"`` (none).
PRIVATE_NAMES: tuple[str, ...] = ()
#: Private attributes read from Optuna's objects, as ``"Class.attribute"``.
PRIVATE_ATTRIBUTES = ("Study._study_id", "Trial._trial_id")


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (``study._study_id``)."""
    return study._study_id


def trial_id(trial: optuna.trial.Trial) -> int:
    """The live trial's id in its storage (``trial._trial_id``)."""
    return trial._trial_id
