"""Plan tables: real fine-tuning recorded once on a grid of plans, replayed in milliseconds.

A tabular benchmark in the sense of HPOBench, NAS-Bench and LCBench, for *what to fine-tune*:
every plan of a full factorial grid over a backbone's blocks (each block frozen, or trained at
one of a few learning-rate multipliers spanning ``[0.1, 10]``) was trained by the engine, on each
data fold of the paper's protocol (arXiv:2508.15367, §III) and with each training seed; a table
keeps, per run, the validation macro accuracy after every epoch, the wall time, and the test
macro accuracy of the run's best-validation weights.

Grid rule: a BioTune genotype decodes to a plan exactly as in a live study
(:meth:`~biotune_optuna.plan.FineTunePlan.from_params`); each trained block's multiplier
``10^(2(ν − 0.5))`` is then taken to the recorded level nearest in ``log10`` (with levels 0.1, 1
and 10: ``ν <= 0.25`` → 0.1, ``ν <= 0.75`` → 1, else 10), a frozen block stays frozen. So every
plan a sampler proposes is a recorded grid point, at most half a level step away in log
learning rate, and the mask is never changed.

File format (version 1): one gzip-compressed JSON object, keys sorted::

    {"format": "biotune-plan-table", "version": 1, "name": ..., "task": {...},
     "blocks": [...], "levels": [0.1, 1.0, 10.0], "base_lr": ..., "n_folds": 2, "seeds": [0],
     "max_epochs": 8, "protocol": {...}, "recorded_with": {...},
     "plans": {"<code>": {"trainable_fraction": f,
                          "runs": [[fold, seed, seconds, test, [val_1, ..., val_E]], ...]}}}

A plan's *code* has one character per block: ``0`` frozen, ``k`` trained at ``levels[k - 1]``.
The plan that trains nothing (all ``0``) is not recorded: the engine scores it 0 untrained.
This module imports without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import gzip
import itertools
import json
import math
from pathlib import Path
from typing import Any

from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import learning_rate_multiplier


__all__ = [
    "DEFAULT_LEVELS",
    "TABLE_FORMAT",
    "TABLE_VERSION",
    "PlanTable",
    "TableError",
    "TableRun",
    "grid_codes",
    "plan_of_code",
]

TABLE_FORMAT = "biotune-plan-table"
TABLE_VERSION = 1
#: The learning-rate multipliers a table records by default: the ends and the middle of the
#: genes' range ``[0.1, 10]``.
DEFAULT_LEVELS = (0.1, 1.0, 10.0)


class TableError(ValueError):
    """A plan table that cannot be read or does not fit what asks for it (one line)."""


@dataclasses.dataclass(frozen=True)
class TableRun:
    """One recorded training run of a plan.

    Attributes:
        fold: The data fold it trained and validated on.
        seed: Its training seed.
        seconds: Its wall time (all epochs, validation and the test scoring included).
        test: Test macro accuracy of its best-validation weights.
        val: Validation macro accuracy after each epoch.
    """

    fold: int
    seed: int
    seconds: float
    test: float
    val: tuple[float, ...]

    @property
    def best(self) -> float:
        """Its best validation macro accuracy: the value the engine gives this run."""
        return max(self.val)

    def running_best(self) -> list[float]:
        """The best validation macro accuracy so far after each epoch (what a trial reports)."""
        return list(itertools.accumulate(self.val, max))

    def to_row(self) -> list[Any]:
        return [self.fold, self.seed, self.seconds, self.test, list(self.val)]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TableRun:
        fold, seed, seconds, test, val = row
        return cls(int(fold), int(seed), float(seconds), float(test), tuple(map(float, val)))


def grid_codes(n_blocks: int, n_levels: int) -> list[str]:
    """Every plan code of the grid but the empty plan, in an order that keeps plans with the
    same frozen prefix together (so the engine's cache of frozen features is reused)."""
    symbols = "0" + "".join(str(k) for k in range(1, n_levels + 1))
    codes = ("".join(c) for c in itertools.product(symbols, repeat=n_blocks))
    return [code for code in codes if set(code) != {"0"}]


def plan_of_code(
    code: str, blocks: Sequence[str], levels: Sequence[float], *, base_lr: float
) -> FineTunePlan:
    """The plan a grid code stands for: its frozen blocks, its trained blocks at exactly their
    levels (genes ``ν = 0.5 + log10(level) / 2`` over a threshold below every gene)."""
    if len(code) != len(blocks):
        raise TableError(f"code {code!r} has {len(code)} blocks, the table {len(blocks)}")
    importances = [
        -1.0 if c == "0" else 0.5 + math.log10(levels[int(c) - 1]) / 2 for c in code
    ]
    return FineTunePlan(
        blocks=tuple(blocks), importances=tuple(importances), threshold=-0.5, base_lr=base_lr
    )


@dataclasses.dataclass
class PlanTable:
    """A recorded plan table (see the module docstring for the file format).

    Attributes:
        name: The table's name.
        blocks: The backbone's blocks the grid is over, in forward order.
        levels: The learning-rate multipliers recorded.
        base_lr: The base learning rate the multipliers scale.
        n_folds: The protocol's data folds.
        seeds: The training seeds recorded on each fold.
        max_epochs: Epochs of every run (no early stopping while recording).
        plans: Per plan code, its trainable share and its runs.
        task: What was trained on (data, model, classes, split sizes).
        protocol: The training protocol, as recorded.
        recorded_with: Library versions, commit, device and CPU time of the recording.
    """

    name: str
    blocks: tuple[str, ...]
    levels: tuple[float, ...]
    base_lr: float
    n_folds: int
    seeds: tuple[int, ...]
    max_epochs: int
    plans: dict[str, dict[str, Any]]
    task: dict[str, Any] = dataclasses.field(default_factory=dict)
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    recorded_with: dict[str, Any] = dataclasses.field(default_factory=dict)

    def code_of(self, plan: FineTunePlan) -> str:
        """The grid point of a plan: its mask, each trained block's multiplier at the nearest
        level in ``log10`` (the grid rule of the module docstring)."""
        if tuple(plan.blocks) != self.blocks:
            raise TableError(f"the plan's blocks {plan.blocks} are not the table's {self.blocks}")
        logs = [math.log10(level) for level in self.levels]
        code = []
        for row in plan.rows():
            if row.frozen:
                code.append("0")
                continue
            x = math.log10(learning_rate_multiplier(row.importance))
            nearest = min(range(len(logs)), key=lambda k: (abs(logs[k] - x), k))
            code.append(str(nearest + 1))
        return "".join(code)

    def runs(self, code: str, *, fold: int | None = None) -> list[TableRun]:
        """The recorded runs of a plan (of one fold, if given); none for the empty plan."""
        entry = self.plans.get(code)
        if entry is None:
            if set(code) == {"0"}:
                return []
            raise TableError(f"plan {code!r} is not recorded in table {self.name!r}")
        runs = [TableRun.from_row(row) for row in entry["runs"]]
        return [run for run in runs if fold is None or run.fold == fold]

    def trainable_fraction(self, code: str) -> float:
        """The share of the parameters the plan trains (0 for the empty plan)."""
        entry = self.plans.get(code)
        return 0.0 if entry is None else float(entry["trainable_fraction"])

    def test_accuracy(self, code: str) -> float:
        """What a user acting on the plan gets: its runs' mean test macro accuracy."""
        runs = self.runs(code)
        return sum(run.test for run in runs) / len(runs) if runs else 0.0

    def expected_value(self, code: str) -> float:
        """The plan's mean validation value over its recorded runs (its true fitness)."""
        runs = self.runs(code)
        return sum(run.best for run in runs) / len(runs) if runs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "name": self.name,
            "blocks": list(self.blocks),
            "levels": list(self.levels),
            "base_lr": self.base_lr,
            "n_folds": self.n_folds,
            "seeds": list(self.seeds),
            "max_epochs": self.max_epochs,
            "plans": self.plans,
            "task": self.task,
            "protocol": self.protocol,
            "recorded_with": self.recorded_with,
        }

    def save(self, path: str | Path) -> Path:
        """Write the table (gzip JSON, keys sorted, no timestamp: the same table, the same
        bytes) through a temporary file, so a reader never sees half of it."""
        path = Path(path)
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        tmp = path.with_name(path.name + ".tmp")
        # No name or time in the gzip header: the same table is the same bytes.
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out,
        ):
            out.write(text.encode())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PlanTable:
        """Read a table written by :meth:`save`.

        Raises:
            TableError: If the file is missing, not a plan table, or of another version.
        """
        path = Path(path)
        try:
            with gzip.open(path, "rt") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise TableError(f"{path}: no such plan table") from None
        except (OSError, EOFError, ValueError) as exc:
            raise TableError(f"{path}: not a plan table ({exc})") from None
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "table") -> PlanTable:
        if not isinstance(data, Mapping) or data.get("format") != TABLE_FORMAT:
            raise TableError(f"{source}: not a plan table (no format {TABLE_FORMAT!r})")
        if data.get("version") != TABLE_VERSION:
            raise TableError(
                f"{source}: plan table version {data.get('version')!r}; this biotune_optuna "
                f"reads version {TABLE_VERSION}"
            )
        try:
            return cls(
                name=str(data["name"]),
                blocks=tuple(map(str, data["blocks"])),
                levels=tuple(map(float, data["levels"])),
                base_lr=float(data["base_lr"]),
                n_folds=int(data["n_folds"]),
                seeds=tuple(map(int, data["seeds"])),
                max_epochs=int(data["max_epochs"]),
                plans=dict(data["plans"]),
                task=dict(data.get("task", {})),
                protocol=dict(data.get("protocol", {})),
                recorded_with=dict(data.get("recorded_with", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"{source}: a damaged plan table ({exc!r})") from None
