"""``[sampler] warm_start`` in a spec: sources parsed, read into plans, bad input refused."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from biotune_optuna.cli import main
from biotune_optuna.plan import FineTunePlan
from biotune_optuna.studies import SpecError
from biotune_optuna.studies._plan_table import PlanTable
from biotune_optuna.studies._spec import load_spec
from biotune_optuna.studies._warm_start import DEFAULT_TOP
from biotune_optuna.studies._warm_start import genes_of_code
from biotune_optuna.studies._warm_start import warm_start_plans
from tests.conftest import table_spec
from tests.studies.test_plan_table import BLOCKS
from tests.studies.test_plan_table import fake_table


def spec_with(tmp_path: Path, warm_start: str, *, sampler: str = "biotune-plus") -> Path:
    text = table_spec(trials=6, table="fake.json.gz").replace(
        "[sampler]\n", f'[sampler]\nname = "{sampler}"\nwarm_start = {warm_start}\n'
    )
    fake_table().save(tmp_path / "fake.json.gz")
    (tmp_path / "spec.toml").write_text(text)
    return tmp_path / "spec.toml"


def test_sources_are_parsed_with_paths_resolved_and_a_default_top(tmp_path: Path) -> None:
    spec = load_spec(
        spec_with(tmp_path, '[{table = "src.json.gz"}, {study = "a", storage = "sqlite:///a.db"}]')
    )
    assert spec.sampler_options["warm_start"] == [
        {"table": str(tmp_path / "src.json.gz"), "top": DEFAULT_TOP},
        {"study": "a", "storage": f"sqlite:///{tmp_path / 'a.db'}", "top": DEFAULT_TOP},
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"src.json.gz"', "expected list, got 'src.json.gz'"),
        ("[]", "must be a non-empty list"),
        ('[{table = "a", study = "b"}]', "entry 0 must give `table"),
        ('[{table = "a", top = 0}]', "entry 0: top must be in [1, 1000]"),
        ('[{study = "a"}]', "entry 0 must give `table"),
        ("[3]", "entry 0 must be a table"),
    ],
)
def test_bad_sources_are_one_line(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(spec_with(tmp_path, value))
    text = str(error.value)
    assert "[sampler] warm_start: " in text and message in text and "\n" not in text


def test_only_the_biotune_presets_take_a_warm_start(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="takes no option 'warm_start'"):
        load_spec(spec_with(tmp_path, '[{table = "x"}]', sampler="tpe"))


def test_a_code_becomes_genes_that_give_the_code_back() -> None:
    table = fake_table()
    for code in table.plans:
        params = genes_of_code(code, table.blocks, table.levels)
        assert all(0.0 <= value <= 1.0 for value in params.values())
        assert table.code_of(FineTunePlan.from_params(params, table.blocks)) == code


def test_a_table_gives_its_best_plans_by_validation_value(tmp_path: Path) -> None:
    table = fake_table()
    table.save(tmp_path / "t.json.gz")
    plans = warm_start_plans([{"table": str(tmp_path / "t.json.gz"), "top": 3}], BLOCKS)
    best = sorted(table.plans, key=lambda c: -table.expected_value(c))[:3]
    assert [p["params"] for p in plans] == [genes_of_code(c, BLOCKS, table.levels) for c in best]
    assert [p["value"] for p in plans] == [round(table.expected_value(c), 6) for c in best]
    assert {p["source"] for p in plans} == {"table:t.json.gz"}


def test_a_run_seeds_its_first_trials_from_a_table_and_an_earlier_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = fake_table()
    source.save(tmp_path / "src.json.gz")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    fake_table().save(earlier / "fake.json.gz")
    (earlier / "spec.toml").write_text(table_spec(trials=8, table="fake.json.gz"))
    assert main(["run", str(earlier / "spec.toml"), "-q"]) == 0
    sources = (
        '[{table = "src.json.gz", top = 2}, '
        '{study = "replay", storage = "sqlite:///earlier/replay.db", top = 1}]'
    )
    assert main(["run", str(spec_with(tmp_path, sources)), "-q"]) == 0
    study = optuna.load_study(study_name="replay", storage=f"sqlite:///{tmp_path / 'replay.db'}")
    seeded = [t.user_attrs.get("warm_start") for t in study.trials]
    assert [s["source"] for s in seeded[:3]] == [
        "table:src.json.gz",
        "study:replay",
        "table:src.json.gz",
    ]
    assert seeded[3:] == [None] * 3
    best = max(source.plans, key=source.expected_value)
    assert study.trials[0].user_attrs["table_code"] == best
    assert study.user_attrs["warm_start"]["sources"] == ["study:replay", "table:src.json.gz"]


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ('[{table = "missing.json.gz"}]', "cannot read table"),
        ('[{table = "other.json.gz"}]', "is over blocks a, b, the study's are low, mid, high"),
        ('[{study = "nope", storage = "sqlite:///e.db"}]', "cannot read study `nope`"),
    ],
)
def test_an_unusable_source_exits_2_with_one_line_and_no_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: str, message: str
) -> None:
    other = fake_table()
    PlanTable(**{**other.__dict__, "blocks": ("a", "b"), "plans": {}}).save(
        tmp_path / "other.json.gz"
    )
    optuna.create_study(study_name="x", storage=f"sqlite:///{tmp_path / 'e.db'}")
    assert main(["run", str(spec_with(tmp_path, sources))]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    db = f"sqlite:///{tmp_path / 'replay.db'}"
    assert not (tmp_path / "replay.db").exists() or optuna.get_all_study_names(db) == []


def test_a_study_created_by_a_run_that_stopped_before_its_first_trial_still_warm_starts(
    tmp_path: Path,
) -> None:
    from biotune_optuna.studies import prepare_study

    source = fake_table()
    source.save(tmp_path / "src.json.gz")
    spec = load_spec(spec_with(tmp_path, '[{table = "src.json.gz", top = 2}]'))
    prepare_study(spec)  # the study exists, no trial has run: as if killed right there
    assert main(["run", str(tmp_path / "spec.toml"), "-q"]) == 0
    study = optuna.load_study(study_name="replay", storage=f"sqlite:///{tmp_path / 'replay.db'}")
    seeded = [t.user_attrs.get("warm_start") for t in study.trials]
    assert [s["source"] for s in seeded[:2]] == ["table:src.json.gz"] * 2
    assert study.user_attrs["warm_start"]["sources"] == ["table:src.json.gz"]
