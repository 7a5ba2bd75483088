"""Many asynchronous workers on a recorded plan table, simulated: time from the recorded seconds.

A study with ``W`` workers is replayed as an event-driven simulation, with no sleeping: each
worker asks the study for a trial (``study.ask()``: the sampler sees the other workers' trials
RUNNING, as on a shared storage) and trains it epoch by epoch through the replay objective
(:meth:`~biotune_optuna.studies._replay.TableObjective.steps`), each epoch taking the recorded
seconds of that plan's run on that fold. Events are epoch ends, processed in simulated-time order
(ties by worker): at each, the epoch's value is reported and the pruner asked, exactly as a live
worker would at that moment; a finished trial is told to the study (``study.tell``) and its
worker asks for the next one at once. So a sampler that cannot propose without waiting for other
trials would show up as a gap in a worker's busy time (``idle_s``), and a genetic algorithm that
breeds from stale generations shows up as worse plans at the same epochs than with one worker.

The simulation stops when the workers have trained ``epoch_budget`` epochs in all (or
``max_trials`` trials were asked). Its record holds every trial (grid code, fold, state, value,
the epochs it trained, simulated start and end, worker) and an anytime curve: after every
COMPLETE trial, the epochs trained so far by all workers (running trials' finished epochs
included), the simulated time, and the recommended plan's recorded test accuracy (optionally
thinned, and one at the stop). With one worker it is the sequential
study of :func:`~biotune_optuna.studies._race.race_study`. Imports without torch.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

import optuna

from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers import SAMPLERS
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._race import RaceEntry
from biotune_optuna.studies._recommendation import recommend
from biotune_optuna.studies._replay import TABLE_CODE_ATTR
from biotune_optuna.studies._replay import TableObjective
from biotune_optuna.trials import EPOCHS_ATTR
from biotune_optuna.trials import FOLD_ATTR


__all__ = ["simulate_study"]

#: Kinds of event, in the order they are taken at one simulated time.
_ASK, _EPOCH = 0, 1

_STATE = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "fail",
}


class _Simulation:
    """The state of one simulated study: the clock, the workers' trials, what was spent."""

    def __init__(
        self, table: PlanTable, entry: RaceEntry, seed: int, max_trials: int, gap: float
    ) -> None:
        self.table = table
        self.objective = TableObjective(table)
        self.study = optuna.create_study(
            direction="maximize",
            sampler=SAMPLERS.create(
                entry.sampler,
                seed=seed,
                search_space=self.objective.search_space,
                options=entry.sampler_options,
            ),
            pruner=PRUNERS.create(entry.pruner, entry.pruner_options),
        )
        self.max_trials = max_trials
        self.gap = gap
        # (simulated time, 0 for a worker's ask or 1 for an epoch's end, worker): at one time,
        # a worker that just finished asks before any epoch ends, as it would at once.
        self.events: list[tuple[float, int, int]] = []
        self.running: dict[int, tuple[optuna.Trial, Any, float]] = {}
        self.epochs = 0.0
        self.asked = 0
        self.busy = 0.0
        self.rows: list[list[Any]] = []
        self.curve: list[list[Any]] = []

    def start(self, worker: int, now: float) -> None:
        """The worker asks for a trial at ``now`` and starts it."""
        if self.asked >= self.max_trials:
            return
        self.asked += 1
        trial = self.study.ask()
        self.running[worker] = (trial, self.objective.steps(trial), now)
        self.advance(worker, now)

    def advance(self, worker: int, now: float) -> None:
        """Report the worker's finished epoch (if any) and start its next, or end the trial."""
        _, steps, _ = self.running[worker]
        try:
            seconds = next(steps)
        except StopIteration as done:
            self.finish(worker, now, optuna.trial.TrialState.COMPLETE, float(done.value))
        except optuna.TrialPruned:
            self.finish(worker, now, optuna.trial.TrialState.PRUNED, None)
        else:
            self.busy += seconds
            heapq.heappush(self.events, (now + seconds, _EPOCH, worker))

    def finish(
        self, worker: int, now: float, state: optuna.trial.TrialState, value: float | None
    ) -> None:
        trial, _, started = self.running.pop(worker)
        frozen = self.study.tell(trial, value, state=state)
        spent = float(frozen.user_attrs.get(EPOCHS_ATTR, 0.0))
        self.rows.append(
            [
                frozen.user_attrs.get(TABLE_CODE_ATTR),
                frozen.user_attrs.get(FOLD_ATTR),
                _STATE.get(state, state.name.lower()),
                None if frozen.value is None else round(float(frozen.value), 6),
                spent,
                round(started, 3),
                round(now, 3),
                worker,
            ]
        )
        if state == optuna.trial.TrialState.COMPLETE and (
            not self.curve or self.epochs - self.curve[-1][0] >= self.gap
        ):
            self.point(now)
        heapq.heappush(self.events, (now, _ASK, worker))  # it asks again at once

    def point(self, now: float) -> None:
        """An anytime-curve point: epochs so far, the time, the recommendation and its test."""
        chosen = recommend(self.study, direction="maximize")
        code = None if chosen is None else chosen.trial.user_attrs[TABLE_CODE_ATTR]
        test = None if code is None else round(self.table.test_accuracy(code), 6)
        point = [self.epochs, round(now, 3), code, test]
        if self.curve and self.curve[-1][0] == self.epochs:
            self.curve[-1] = point
        else:
            self.curve.append(point)


def simulate_study(
    table: PlanTable,
    entry: RaceEntry,
    *,
    seed: int,
    workers: int = 1,
    epoch_budget: float,
    max_trials: int = 5000,
    point_every: float = 0.0,
) -> dict[str, Any]:
    """Simulate one seeded study of ``entry`` on ``table`` with ``workers`` asynchronous workers.

    Args:
        table: The recorded table to replay.
        entry: The sampler and pruner.
        seed: The sampler's seed.
        workers: How many workers train trials at once.
        epoch_budget: Stop once the workers trained this many epochs in all.
        max_trials: Stop asking for trials after this many.
        point_every: A curve point after a COMPLETE trial only once this many epochs were
            trained since the last point (0: after every one); and one at the stop.

    Returns:
        ``{"seed", "workers", "seconds", "idle_s", "makespan_s", "trials": [[code, fold, state,
        value, epochs, start_s, end_s, worker], ...], "curve": [[epochs, time_s, recommended
        code, its recorded test], ...]}`` (``seconds``: the simulation's own wall time).
    """
    clock = time.perf_counter()
    sim = _Simulation(table, entry, seed, max_trials, point_every)
    for worker in range(workers):
        heapq.heappush(sim.events, (0.0, _ASK, worker))
    now = 0.0
    while sim.events and sim.epochs < epoch_budget:
        now, kind, worker = heapq.heappop(sim.events)
        if kind == _ASK:
            sim.start(worker, now)
            continue
        sim.epochs += 1.0
        sim.advance(worker, now)
    sim.point(now)
    # Busy seconds of epochs still in flight at the stop are not training the budget paid for.
    in_flight = sum(at - now for at, kind, _ in sim.events if kind == _EPOCH)
    makespan = now
    return {
        "seed": seed,
        "workers": workers,
        "seconds": round(time.perf_counter() - clock, 3),
        "idle_s": round(max(workers * makespan - (sim.busy - in_flight), 0.0), 3),
        "makespan_s": round(makespan, 3),
        "trials": sim.rows,
        "curve": sim.curve,
    }
