"""An incremental, per-process index of a study's trials as BioTune population members.

Nothing here is state of its own: every field is derived from trials and attrs in storage (or from
lineages this process has just written there), so a fresh process rebuilds the same index. It is
updated incrementally: finished trials never change, so each ask only looks at trials that were
unfinished or new at the previous ask.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections import defaultdict
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from functools import cached_property
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from biotune_optuna.samplers._keys import DUPLICATE_RETRY_KEY
from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.trials import FOLD_ATTR
from biotune_optuna.trials import RETRY_HISTORY_KEY
from biotune_optuna.trials import RUNG_KEY


#: A running trial that has no lineage this long after it started is taken for orphaned.
ORPHAN_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Member:
    """A finished trial that belongs to the search (it carries a lineage).

    Attributes:
        number: The trial's number.
        loss: Its fitness in minimisation form: the value of a COMPLETE trial; for a PRUNED
            trial ranked by its rung, the value it reported at the last step it reached; +inf
            for FAIL, and for PRUNED when pruned trials take the worst fitness (the paper's).
        params: Its parameters.
        lineage: Its place in the search.
        fidelity: How far it trained: infinite for a COMPLETE trial, the last reported step
            (epoch) of a PRUNED trial ranked by its rung, -inf for the worst fitness.
        fold: The data fold it trained on, as its objective recorded it (the ``fold`` user
            attr, :data:`~biotune_optuna.trials.FOLD_ATTR`); ``None`` if none did.
    """

    number: int
    loss: float
    params: dict[str, Any]
    lineage: dict[str, Any]
    fidelity: float = math.inf
    fold: int | None = None

    @cached_property
    def rank(self) -> tuple[float, float, int]:
        """Sort key, best first: a deeper rung first, then the loss at it, then age.

        Successive halving stops a plan at a rung because plans measured at the same rung did
        better; so a plan stopped at rung ``r`` ranks below every plan that went past ``r``, and
        among the plans stopped at ``r`` by what ``r`` showed.
        """
        return (-self.fidelity, self.loss, self.number)

    @property
    def generation(self) -> int:
        return int(self.lineage["generation"])

    @property
    def slot(self) -> int | None:
        return self.lineage.get("slot")

    @property
    def role(self) -> str:
        return str(self.lineage["role"])


class StudyIndex:
    """Finished members by number and generation, plus a view of the unfinished trials."""

    def __init__(self, direction: StudyDirection, *, rank_pruned: bool = False) -> None:
        self.maximize = direction == StudyDirection.MAXIMIZE
        self._sign = -1.0 if self.maximize else 1.0
        self.rank_pruned = rank_pruned
        self.settings_checked = False
        # The prior plans of a warm start, best first (None: not read from storage yet).
        self.warm_plans: list[dict[str, Any]] | None = None
        # Genotypes of members per search space (derived from their params, never changes).
        self.genes_cache: dict[tuple[tuple[str, str], ...], dict[int, np.ndarray]] = {}
        self.members: dict[int, Member] = {}
        # Bumped when a member's fitness changes after it was added (its plan was continued
        # to a further rung of a budget-aware study), so models fitted to members refit.
        self.revision = 0
        # Whether the study is budget-aware (its trials carry rung records, _rungs).
        self.budget_aware = False
        self.by_generation: dict[int, list[Member]] = defaultdict(list)
        # Per generation: how many finished members hold each slot.
        self.finished_slots: dict[int, Counter[int]] = defaultdict(Counter)
        # Trials a heartbeat retry replaced (their worker died): the retry holds their slot.
        self.superseded: set[int] = set()
        self._superseded_sorted: list[int] = []
        self.max_generation = 0
        self.written: dict[int, dict[str, Any]] = {}  # lineages this process wrote
        self.populations: dict[int, list[int]] = {}  # memo of the stored population per generation
        # Per generation g: the members of population(g - 1) and their extinction values.
        self.parents_cache: dict[int, tuple[list[Member], np.ndarray]] = {}
        # Per gene space: the configurations of finished members and the members added, and
        # the candidate ranker with the (count, last number) of members it was fitted to.
        self.configurations: dict[tuple[tuple[str, str], ...], tuple[Any, set[int]]] = {}
        self.rankers: dict[tuple[tuple[str, str], ...], tuple[tuple[int, int], Any]] = {}
        # Per gene space: each member's parameters as the ranker's observations.
        self.observation_rows: dict[tuple[tuple[str, str], ...], dict[int, Any]] = {}
        # Intersection of the distributions of all COMPLETE trials (the relative search space
        # Optuna's IntersectionSearchSpace infers), kept incrementally; None before any.
        self.intersection: dict[str, BaseDistribution] | None = None
        self._seen_finished: set[int] = set()
        self._scan_from = 0
        # View of unfinished trials at the last update.
        self.unfinished_lineages: list[dict[str, Any]] = []
        self.unfinished_numbers: list[int] = []  # the trial of each unfinished lineage
        self.unfinished_without_lineage: list[tuple[int, datetime | None]] = []

    def fitness_of(self, trial: FrozenTrial) -> tuple[float, float]:
        """A finished trial's ``(loss, fidelity)`` (see :class:`Member`)."""
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            return self._sign * float(trial.value), math.inf
        steps = trial.intermediate_values
        if self.rank_pruned and trial.state == TrialState.PRUNED and steps:
            last = max(steps)
            value = float(steps[last])
            if math.isfinite(value):
                return self._sign * value, float(last)
        return math.inf, -math.inf

    def note_written(self, number: int, lineage: dict[str, Any]) -> None:
        self.written[number] = lineage
        self._note_lineage(number, lineage)

    def _note_lineage(self, number: int, lineage: dict[str, Any]) -> None:
        self.max_generation = max(self.max_generation, int(lineage["generation"]))

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        """Index newly finished trials and refresh the view of unfinished ones."""
        self.unfinished_lineages = []
        self.unfinished_numbers = []
        self.unfinished_without_lineage = []
        advancing = True
        for pos in range(self._scan_from, len(trials)):
            trial = trials[pos]
            number = trial.number
            lineage = trial.system_attrs.get(LINEAGE_KEY) or self.written.get(number)
            for original in trial.system_attrs.get(RETRY_HISTORY_KEY) or ():
                self._supersede(int(original))
            if DUPLICATE_RETRY_KEY in trial.system_attrs:
                self._supersede(number)  # a second retry of one dead trial: never in the search
            if RUNG_KEY in trial.system_attrs:
                self.budget_aware = True
            head = _continued_head(trial)
            if head is not None:  # a continuation: its plan's member, further trained
                if trial.state.is_finished() and number not in self._seen_finished:
                    self._seen_finished.add(number)
                    self._continue(head, trial)
                if not trial.state.is_finished():
                    advancing = False
                elif advancing:
                    self._scan_from = pos + 1
                continue
            if trial.state.is_finished():
                if number not in self._seen_finished:
                    self._seen_finished.add(number)
                    if trial.state == TrialState.COMPLETE:
                        self._intersect(trial.distributions)
                    if lineage is not None:
                        self._add_member(trial, lineage)
                if advancing:
                    self._scan_from = pos + 1
                continue
            advancing = False
            if lineage is not None:
                self._note_lineage(number, lineage)
                self.unfinished_lineages.append(lineage)
                self.unfinished_numbers.append(number)
            elif trial.state == TrialState.RUNNING:
                self.unfinished_without_lineage.append((number, trial.datetime_start))

    def _intersect(self, distributions: dict[str, BaseDistribution]) -> None:
        if self.intersection is None:
            self.intersection = dict(distributions)
        elif any(distributions.get(n) != d for n, d in self.intersection.items()):
            self.intersection = {
                n: d for n, d in self.intersection.items() if distributions.get(n) == d
            }

    def _add_member(self, trial: FrozenTrial, lineage: dict[str, Any]) -> None:
        self._note_lineage(trial.number, lineage)
        if trial.number in self.superseded:
            return
        loss, fidelity = self.fitness_of(trial)
        fold = trial.user_attrs.get(FOLD_ATTR)
        fold = fold if isinstance(fold, int) and not isinstance(fold, bool) else None
        member = Member(trial.number, loss, trial.params, lineage, fidelity, fold)
        self.members[trial.number] = member
        self.by_generation[member.generation].append(member)
        if member.slot is not None:
            self.finished_slots[member.generation][member.slot] += 1

    def _continue(self, head: int, trial: FrozenTrial) -> None:
        """A continuation of member ``head``'s plan finished: the member now ranks by the
        furthest rung its plan reached and its value there (budget-aware studies, _rungs)."""
        member = self.members.get(head)
        if member is None:
            return
        loss, fidelity = self.fitness_of(trial)
        if fidelity < member.fidelity:
            return  # the continuation failed or stopped short: the member keeps its rung
        updated = dataclasses.replace(member, loss=loss, fidelity=fidelity)
        self.members[head] = updated
        peers = self.by_generation[member.generation]
        peers[peers.index(member)] = updated
        self.revision += 1

    def _supersede(self, number: int) -> None:
        """Trial ``number`` died and was retried: its retry takes its place in the search.

        The retry copies the dead trial's lineage (Optuna's
        :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` copies every system attr),
        so it holds the same generation and slot; the dead trial, FAILED, leaves the search
        instead of filling the slot with the worst fitness.
        """
        if number in self.superseded:
            return
        self.superseded.add(number)
        bisect.insort(self._superseded_sorted, number)
        member = self.members.pop(number, None)
        if member is None:
            return
        self.by_generation[member.generation].remove(member)
        if member.slot is not None:
            slots = self.finished_slots[member.generation]
            slots[member.slot] -= 1
            if slots[member.slot] <= 0:
                del slots[member.slot]

    def n_finished_slots(self, generation: int) -> int:
        """Distinct slots of ``generation`` held by a finished trial."""
        return len(self.finished_slots[generation])

    def others_unfinished(self, number: int) -> bool:
        """Whether a trial other than ``number`` is unfinished (parallel workers)."""
        return any(n != number for n in self.unfinished_numbers) or any(
            n != number for n, _ in self.unfinished_without_lineage
        )

    def slot_taken_by_another(self, number: int, generation: int, slot: int) -> bool:
        """Whether a trial other than ``number`` holds ``slot`` of ``generation``."""
        if self.finished_slots[generation][slot] > 0:
            return True
        return any(
            n != number and lin["generation"] == generation and lin.get("slot") == slot
            for n, lin in zip(self.unfinished_numbers, self.unfinished_lineages)
        )

    def position(self, number: int) -> int:
        """The place of trial ``number`` in the search: its number less the dead trials
        before it that a retry replaced.

        An uninterrupted study's positions are its trial numbers; after a worker died, the
        dead trial and its retry shift every later number by one, not the positions, so
        random streams keyed by position propose the same genotypes as an uninterrupted run.
        """
        return number - bisect.bisect_left(self._superseded_sorted, number)

    def place(self, trial: FrozenTrial) -> int:
        """The place in the search of ``trial``'s first attempt (a heartbeat retry's is that
        of the trial it retries), which keys its random streams: every attempt draws the same."""
        history = trial.system_attrs.get(RETRY_HISTORY_KEY)
        first = history[0] if isinstance(history, list) and history else trial.number
        return self.position(int(first))

    def next_slot(self, generation: int, skip: int = 0) -> int:
        """The lowest slot of ``generation`` no finished or running trial holds, after
        ``skip`` such free slots (left for trials about to take them)."""
        taken = {
            lin["slot"]
            for lin in self.unfinished_lineages
            if lin["generation"] == generation and lin.get("slot") is not None
        }
        taken.update(self.finished_slots[generation])
        slot = 0
        while True:
            if slot not in taken:
                if skip == 0:
                    return slot
                skip -= 1
            slot += 1

    def pending_before(self, number: int) -> int:
        """Running trials created before ``number`` whose lineage is not visible yet.

        They are about to take slots of the current generation (another worker is between
        creating its trial and proposing for it); counting them keeps two workers that read
        storage at the same moment from taking the same slot. A trial left running without a
        lineage for longer than :data:`ORPHAN_AFTER` (its worker died before its first suggest)
        is no longer counted.
        """
        if not self.unfinished_without_lineage:
            return 0
        now = datetime.now()
        return sum(
            1
            for n, started in self.unfinished_without_lineage
            if n < number and (started is None or now - started < ORPHAN_AFTER)
        )


def _continued_head(trial: FrozenTrial) -> int | None:
    """The member whose plan ``trial`` continues (its rung record's head), else ``None``."""
    record = trial.system_attrs.get(RUNG_KEY)
    head = record.get("head") if isinstance(record, dict) else None
    return head if isinstance(head, int) else None
