"""Reading the study's storage into a per-process index, and writing each trial's lineage.

Every decision of the sampler is derived from what storage holds (Colan, Davila, Hasegawa,
arXiv:2508.15367, §III, made resumable): the finished trials, the lineages, the per-generation
populations and the settings the study was started with. The index of each study is built
incrementally (:class:`~biotune_optuna.samplers._lineage.StudyIndex`).
"""

from __future__ import annotations

from typing import Any
from typing import TYPE_CHECKING
import warnings

from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.samplers import _keys
from biotune_optuna.samplers._lineage import StudyIndex
from biotune_optuna.samplers._optuna_bridge import cached_trials
from biotune_optuna.samplers._optuna_bridge import storage_of
from biotune_optuna.samplers._optuna_bridge import study_id_of
from biotune_optuna.samplers._optuna_bridge import trial_id_of
from biotune_optuna.samplers._storage_io import write_trial_attrs


if TYPE_CHECKING:
    from optuna.study import Study


class StudyReader:
    """The index of each study this sampler works on, kept in step with storage.

    Args:
        rank_pruned: Rank a PRUNED trial by its rung (see
            :class:`~biotune_optuna.samplers._lineage.StudyIndex`).
        settings: ``{"structure": ..., "options": ...}``: the sampler's settings, stored with a
            new study and compared with a resumed one's (a structural change is refused, an
            option change warned about).
    """

    def __init__(self, *, rank_pruned: bool, settings: dict[str, dict[str, Any]]) -> None:
        self._rank_pruned = rank_pruned
        self._settings = settings
        self._indexes: dict[tuple[int, int], tuple[Any, StudyIndex]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_indexes"] = {}  # rebuilt from storage on use
        return state

    def sync(self, study: Study, *, check_settings: bool, fresh: bool = False) -> StudyIndex:
        """The study's index, updated with its trials (``fresh``: read past Optuna's view of
        the study, which it keeps for a whole trial)."""
        storage, study_id = storage_of(study), study_id_of(study)
        key = (id(storage), study_id)
        entry = self._indexes.get(key)
        if entry is None:
            # The storage object is kept alive with the index, so its id is never reused.
            entry = (storage, StudyIndex(study.direction, rank_pruned=self._rank_pruned))
            self._indexes[key] = entry
        index = entry[1]
        if check_settings and not index.settings_checked:
            self._check_settings(study)
            index.settings_checked = True
        if fresh:
            index.update(storage.get_all_trials(study_id, deepcopy=False))
        else:
            index.update(cached_trials(study))
        return index

    def _check_settings(self, study: Study) -> None:
        stored = study_attrs(study).get(_keys.SETTINGS_KEY)
        mine = self._settings
        if stored is None:
            set_study_attr(study, _keys.SETTINGS_KEY, mine)
            return
        changed = _differences(stored.get("structure", {}), mine["structure"])
        if changed:
            raise ValueError(
                f"BioTuneSampler settings differ from those study `{study.study_name}` was "
                f"started with ({changed}); resume it with the same settings or start a new study."
            )
        options = _differences(stored.get("options", {}), mine["options"])
        if options:
            warnings.warn(
                f"Study `{study.study_name}` continues with other BioTuneSampler options than it "
                f"was started with ({options}).",
                stacklevel=3,
            )

    def write_lineage(
        self, study: Study, trial: FrozenTrial, index: StudyIndex, lineage: dict[str, Any]
    ) -> None:
        """Store a trial's lineage (a system attr) and its dashboard mirror (user attrs; a
        trial seeded from a prior plan also says which)."""
        user_attrs = {
            _keys.GENERATION_USER_ATTR: lineage["generation"],
            _keys.ROLE_USER_ATTR: lineage["role"],
            _keys.PARENTS_USER_ATTR: lineage["parents"],
        }
        if "warm_start" in lineage and index.warm_plans:
            plan = index.warm_plans[lineage["warm_start"]]
            user_attrs[_keys.WARM_START_USER_ATTR] = {
                "plan": lineage["warm_start"],
                "source": plan["source"],
                "value": plan["value"],
            }
        write_trial_attrs(
            storage_of(study),
            trial_id_of(trial),
            system_attrs={_keys.LINEAGE_KEY: lineage},
            user_attrs=user_attrs,
        )
        index.note_written(trial.number, lineage)


def _differences(stored: dict[str, Any], mine: dict[str, Any]) -> str:
    changed = {k: (v, mine.get(k)) for k, v in stored.items() if mine.get(k) != v}
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())


def has_lineage(trial: FrozenTrial, index: StudyIndex) -> bool:
    """Whether ``trial`` already holds its place in the search."""
    return _keys.LINEAGE_KEY in trial.system_attrs or trial.number in index.written


def frozen_trials(study: Study, numbers: list[int]) -> list[FrozenTrial]:
    """The study's trials of the given numbers, in that order."""
    by_number = {t.number: t for t in cached_trials(study)}
    return [by_number[n] for n in numbers if n in by_number]


def running_trials(study: Study) -> list[FrozenTrial]:
    """The study's RUNNING trials, as Optuna's view of the study holds them."""
    return list(cached_trials(study, states=(TrialState.RUNNING,)))


def study_attrs(study: Study) -> dict[str, Any]:
    """The study's system attrs, read from storage."""
    return storage_of(study).get_study_system_attrs(study_id_of(study))


def set_study_attr(study: Study, key: str, value: Any) -> None:
    """Store a study system attr."""
    storage_of(study).set_study_system_attr(study_id_of(study), key, value)
