"""Which sampler a study was run with, and the check that it is continued with the same.

``optuna.load_study`` without ``sampler=`` attaches a TPE sampler, which would silently turn a
BioTune study (arXiv:2508.15367) into a TPE one; the fine-tuning objective runs
:func:`check_study_sampler` at a study's first trial in each process. The record lives beside
the sampler's own storage keys (:mod:`biotune_optuna.samplers._keys`).
"""

from __future__ import annotations

import optuna

from biotune_optuna.samplers._keys import SAMPLER_USER_ATTR
from biotune_optuna.samplers._keys import SETTINGS_KEY
from biotune_optuna.samplers._optuna_bridge import storage_of
from biotune_optuna.samplers._optuna_bridge import study_id_of
from biotune_optuna.samplers._registry import BIOTUNE_PRESETS
from biotune_optuna.samplers._registry import sampler_name


__all__ = ["SamplerMismatchError", "check_study_sampler", "recorded_sampler"]


class SamplerMismatchError(RuntimeError):
    """A study is being continued with another sampler than the one it was run with."""


def recorded_sampler(study: optuna.Study) -> str | None:
    """The registry name of the sampler a study was run with (``None``: none recorded).

    A study created from a spec records its sampler's name in the user attr
    :data:`SAMPLER_USER_ATTR`; a study that BioTune has sampled through the Python API carries
    BioTune's settings (:data:`SETTINGS_KEY`) but not which preset, and reads ``"biotune"``.
    """
    recorded = study.user_attrs.get(SAMPLER_USER_ATTR)
    if recorded is not None:
        return str(recorded)
    attrs = storage_of(study).get_study_system_attrs(study_id_of(study))
    return "biotune" if SETTINGS_KEY in attrs else None


def check_study_sampler(study: optuna.Study) -> None:
    """Refuse to continue a study under another sampler than the one it was run with.

    A study created from a spec records its sampler's name; a study that BioTune has sampled
    carries BioTune's settings. ``optuna.load_study`` without ``sampler=`` attaches a TPE
    sampler, which would silently turn a BioTune study into a TPE one.

    Raises:
        SamplerMismatchError: If the study's recorded sampler is not the one attached.
    """
    recorded = recorded_sampler(study)
    current = sampler_name(study.sampler)
    # A study sampled through the Python API records BioTune's settings but not which preset.
    either_preset = recorded == "biotune" and SAMPLER_USER_ATTR not in study.user_attrs
    if either_preset and current in BIOTUNE_PRESETS:
        return
    if recorded is not None and current != recorded:
        raise SamplerMismatchError(
            f"study `{study.study_name}` was run with the {recorded!r} sampler but is being "
            f"continued with {type(study.sampler).__name__}; `optuna.load_study` without "
            "`sampler=` falls back to TPE. Pass the study's own sampler, with its settings, "
            "to `optuna.create_study(..., load_if_exists=True)`."
        )
