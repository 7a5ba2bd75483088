"""Adversarial values for every option a spec may set: all refused in one line, or accepted.

Issue 18, items 11 and 12, taken systematically rather than case by case: every number of every
sampler, pruner and protocol option is tried with NaN, the infinities, a float that overflows
and an integer beyond 64 bits; every bounded option just outside its bounds and at them; device
strings of every kind. Through :func:`parse_spec` (what ``run`` calls first) and through the
Python API (:func:`create_sampler`, :func:`create_pruner`, :class:`TrainingProtocol`), without
training anything.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
import sys
from typing import Any

import pytest

from biotune_optuna.finetune import TrainingProtocol
from biotune_optuna.options import Option
from biotune_optuna.samplers import PRUNERS
from biotune_optuna.samplers._registry import create_pruner
from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.samplers._registry import SPEC_OPTIONS
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._spec import parse_spec
from biotune_optuna.studies._synthetic import MAX_BLOCKS
from biotune_optuna.studies._synthetic import SyntheticFineTuning


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Values no number may take, as TOML writes them (``1e400`` parses as ``inf``).
NON_FINITE = ["nan", "+nan", "-nan", "inf", "+inf", "-inf", "1e400", "-1e400"]
HUGE_INTS = [str(2**63), str(-(2**63) - 1), "9" * 40]


def base(**sections: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = {
        "study": {"name": "s", "storage": "sqlite:///s.db"},
        "budget": {"trials": 2},
        "objective": {"kind": "synthetic"},
    }
    table.update(sections)
    return table


def refused(table: dict[str, Any], place: str) -> str:
    with pytest.raises(SpecError) as error:
        parse_spec(table, path="adv.toml")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"adv.toml: {place}: "), message
    return message


def toml_value(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def numeric_options() -> list[tuple[str, str, str, Option]]:
    """(section, name, key, option) for every numeric option of every sampler and pruner."""
    found = [
        ("sampler", name, key, option)
        for name, options in SPEC_OPTIONS.items()
        for key, option in options.items()
        if option.kind in (int, float)
    ]
    found += [
        ("pruner", name, key, option)
        for name, (_, options) in PRUNERS.items()
        for key, option in options.items()
        if option.kind in (int, float)
    ]
    return found


OPTIONS = numeric_options()
IDS = [f"{section}-{name}-{key}" for section, name, key, _ in OPTIONS]


@pytest.mark.parametrize(("section", "name", "key", "option"), OPTIONS, ids=IDS)
def test_every_numeric_option_refuses_what_is_no_finite_number(
    section: str, name: str, key: str, option: Option
) -> None:
    for text in [*NON_FINITE, *HUGE_INTS]:
        value = toml_value(text)
        message = refused(base(**{section: {"name": name, key: value}}), f"[{section}] {key}")
        assert "finite" in message or "64 bits" in message or "an integer" in message, message


@pytest.mark.parametrize(("section", "name", "key", "option"), OPTIONS, ids=IDS)
def test_every_bounded_option_refuses_just_outside_and_takes_its_bounds(
    section: str, name: str, key: str, option: Option
) -> None:
    step = 1 if option.kind is int else 1e-9
    if option.low is not None:
        outside = option.low if option.above else option.low - step
        message = refused(base(**{section: {"name": name, key: outside}}), f"[{section}] {key}")
        assert f"must be {option.describe()}" in message, message
        with pytest.raises(ValueError, match=key):
            if section == "sampler":
                create_sampler(name, options={key: outside})
            else:
                create_pruner(name, {key: outside})
    if option.high is not None:
        outside = option.high + step
        refused(base(**{section: {"name": name, key: outside}}), f"[{section}] {key}")
    # The bounds themselves are taken (with what the option needs beside it).
    beside = {
        "threshold": {"lower": 0.0},
        "percentile": {"percentile": 50.0},
        "biotune": {"n_elites": 0},
        "biotune-plus": {"n_elites": 0},
    }.get(name, {})
    # The budget-aware pruner pauses plans for biotune-plus, on trials of several epochs, and
    # its max_resource is the objective's epochs (tests/studies/test_spec.py).
    around = {}
    if name == "rungs":
        around = {
            "sampler": {"name": "biotune-plus"},
            "objective": {"kind": "synthetic", "epochs": 9},
        }
        if key == "max_resource":
            return
    for inside in (option.low, option.high):
        if inside is not None and not (inside == option.low and option.above):
            options = {**beside, key: option.kind(inside)}
            parse_spec(base(**around, **{section: {"name": name, **options}}))


PROTOCOL_NUMBERS = [
    f.name
    for f in dataclasses.fields(TrainingProtocol)
    if isinstance(f.default, int | float) and not isinstance(f.default, bool)
]


@pytest.mark.parametrize("name", PROTOCOL_NUMBERS)
def test_every_protocol_number_refuses_what_is_no_finite_number(name: str) -> None:
    default = getattr(TrainingProtocol(), name)
    values = NON_FINITE + HUGE_INTS if isinstance(default, float) else HUGE_INTS
    for text in values:
        table = base(protocol={name: toml_value(text)})
        table.pop("objective")
        refused(table, f"[protocol] {name}")
    if isinstance(default, float):
        for value in (math.nan, math.inf, -math.inf):
            with pytest.raises(ValueError, match=f"protocol.{name} must be finite"):
                TrainingProtocol(**{name: value})


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("model", "mean", [0.5, 0.5, math.nan]),
        ("model", "std", [math.inf, 0.5, 0.5]),
        ("data", "val_fraction", math.nan),
        ("data", "test_fraction", -math.inf),
        ("data", "seed", 2**32),
        ("study", "seed", -1),
        ("strategy", "lr", math.nan),
        ("strategy", "whatever", [1, [2, {"deep": math.inf}]]),
    ],
)
def test_numbers_in_lists_tables_and_other_sections_are_checked_too(
    section: str, key: str, value: Any
) -> None:
    table = base(**{section: {key: value}})
    table.pop("objective")
    if section == "strategy":
        table["strategy"]["name"] = "full"
    refused(table, f"[{section}] {key}")


@pytest.mark.parametrize(
    "device",
    [
        "tpu",
        "gpu",
        "CUDA",
        "cuda:",
        "cuda:-1",
        "cuda:01",
        "cuda:1:2",
        "cuda 0",
        " cpu",
        "cpu:0",
        "mps:0",
        "meta",
        "cuda:99999",
        "",
        "auto:0",
    ],
)
def test_device_strings_torch_would_not_train_on_are_refused(device: str) -> None:
    refused(base(protocol={"device": device}), "[protocol] device")
    with pytest.raises(ValueError, match=r"protocol\.device must be"):
        TrainingProtocol(device=device)


def test_devices_this_machine_lacks_are_refused_before_the_study_opens() -> None:
    torch = pytest.importorskip("torch")
    from biotune_optuna.finetune._protocol import device_problem
    assert device_problem("auto") is None and device_problem("cpu") is None
    assert device_problem("gpu:0").startswith("must be 'auto', 'cpu'")  # the form first
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    problem = device_problem(f"cuda:{count + 9}")
    assert problem is not None and f"'cuda:{count + 9}' was asked for" in problem
    assert (device_problem("cuda") is None) == torch.cuda.is_available()
    if count:
        assert device_problem(f"cuda:{count - 1}") is None


def test_the_synthetic_landscape_is_bounded_in_blocks() -> None:
    assert len(SyntheticFineTuning(n_blocks=MAX_BLOCKS).param_names) == MAX_BLOCKS + 1
    with pytest.raises(ValueError, match=f"in \\[1, {MAX_BLOCKS}\\]"):
        SyntheticFineTuning(n_blocks=MAX_BLOCKS + 1)


def test_model_sources_and_weights_that_are_not_what_they_claim(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from biotune_optuna.finetune import load_backbone

    tiny = "tests.finetune.conftest:tiny_cnn"
    for source, match in [
        ("os:sep", "os:sep is a str, not a callable"),
        ("torch.nn:Linear", "cannot be called without arguments"),
        ("os:getcwd", "returned str, not an nn.Module"),
    ]:
        with pytest.raises(ValueError, match=match):
            load_backbone(source, num_classes=3)
    text = tmp_path / "notes.txt"
    text.write_text("no weights\n")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    for path, match in [
        (text, "is not a weights file saved by torch.save"),
        (tensor, "holds a Tensor, not a state dict"),
        (other, "does not fit Sequential: missing"),
    ]:
        with pytest.raises(ValueError, match=f"^state_dict: .*{match}") as error:
            load_backbone(tiny, num_classes=3, state_dict=path)
        assert "\n" not in str(error.value)
