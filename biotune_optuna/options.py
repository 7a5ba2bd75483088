"""Plain-valued options a study spec may give, their types and the values they take.

One rule for every table that a spec's values are checked against: the samplers' and pruners'
options (:data:`~biotune_optuna.samplers._registry.SPEC_OPTIONS`,
:data:`~biotune_optuna.samplers.PRUNERS`),
the strategies' hyperparameters (:data:`~biotune_optuna.finetune._registry.STRATEGIES`) and the
spec's
own keys. Numbers must be finite and fit in 64 bits, as TOML says. Imports without torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


__all__ = ["MAX_SEED", "Option", "format_setting", "number_problem", "type_problem"]

#: The largest seed: Optuna's samplers seed NumPy's ``RandomState``, which takes ``[0, 2**32)``.
MAX_SEED = 2**32 - 1
#: Integers must fit in 64 bits, as TOML says (Python's would not overflow, NumPy and C do).
_INT64 = 2**63


def number_problem(value: Any) -> str | None:
    """Why a number cannot be used anywhere (``None``: it can, or it is no number).

    NaN and the infinities are refused (a NaN option never equals itself, so a study that
    stored one could never be resumed; an infinite one turns arithmetic into NaN), and so are
    integers beyond TOML's 64 bits, which overflow NumPy, torch and the storages.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return f"must fit in 64 bits (|value| < 2**63), got {value}"
    return None


@dataclasses.dataclass(frozen=True)
class Option:
    """A plain-valued option: its type and the values it may take.

    Attributes:
        kind: ``bool``, ``int``, ``float``, ``str``…, checked by :func:`type_problem`.
        low: The smallest value of a number (``None``: no bound below).
        high: The largest value of a number (``None``: no bound above).
        above: ``low`` itself is excluded (the value must exceed it, e.g. ``sigma0 > 0``).
        choices: The values a string may take (empty: any).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The allowed values in words, e.g. ``">= 0"``, ``"> 0"`` or ``"in [0, 1]"``."""
        if self.choices:
            return f"one of {', '.join(map(repr, self.choices))}"
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.above else '['}{self.low}, {self.high}]"
        if self.low is not None:
            return f"{'>' if self.above else '>='} {self.low}"
        return f"<= {self.high}" if self.high is not None else "any"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a valid value of this option (``None``: valid)."""
        problem = type_problem(value, self.kind)
        if problem is not None:
            return problem
        if self.choices:
            ok = value in self.choices
        elif self.kind in (int, float):
            ok = (
                self.low is None or (value > self.low if self.above else value >= self.low)
            ) and (self.high is None or value <= self.high)
        else:
            ok = True
        return None if ok else f"must be {self.describe()}, got {value!r}"


def type_problem(value: Any, kind: type) -> str | None:
    """Why ``value`` is not of plain type ``kind`` (ints pass as floats, bools never as ints).

    Numbers must also be finite and fit in 64 bits (:func:`number_problem`).
    """
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if ok:
        return number_problem(value) if kind in (int, float) else None
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return f"expected {names.get(kind, kind.__name__)}, got {value!r}"


def format_setting(value: Any) -> str:
    """An option's value for tables: floats to 3 digits, ``None`` as ``auto`` (a default
    that follows the protocol, e.g. LP-FT's ``lp_epochs``)."""
    if value is None:
        return "auto"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
