"""FineTunePlan: the genes, their decoding (arXiv:2508.15367, §II) and suggestion on a trial."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from biotune_optuna.plan import FineTunePlan
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import suggest_plan


BLOCKS = ("stem", "layer1", "layer2", "fc")


def test_search_space_has_b_plus_2_unit_genes_named_after_blocks() -> None:
    space = plan_search_space(BLOCKS)
    assert list(space) == [
        "importance:stem",
        "importance:layer1",
        "importance:layer2",
        "importance:fc",
        "freeze_threshold",
    ]
    assert all(d == optuna.distributions.FloatDistribution(0.0, 1.0) for d in space.values())


def test_mask_is_strict_and_learning_rates_follow_the_formula() -> None:
    plan = FineTunePlan(BLOCKS, (0.5, 0.2, 1.0, 0.0), threshold=0.5, base_lr=1e-3)
    assert plan.freeze_mask == (True, True, False, True)  # 0.5 is not > 0.5
    assert plan.selected == ("layer2",)
    assert plan.frozen == ("stem", "layer1", "fc")
    assert plan.learning_rates == {
        "stem": 0.0,
        "layer1": 0.0,
        "layer2": pytest.approx(1e-2),
        "fc": 0.0,
    }
    assert plan.learning_rate("stem") == pytest.approx(1e-3)  # ν = 0.5 → 1×
    assert plan.learning_rate("fc") == pytest.approx(1e-4)  # ν = 0 → 0.1×
    assert plan.frozen_prefix == 2
    assert not plan.is_empty


def test_empty_plan() -> None:
    plan = FineTunePlan(BLOCKS, (0.1, 0.2, 0.3, 0.4), threshold=0.9)
    assert plan.is_empty
    assert plan.frozen_prefix == 4
    assert set(plan.learning_rates.values()) == {0.0}


def test_summary_is_one_line_of_trained_blocks_with_2_digit_multipliers() -> None:
    plan = FineTunePlan(BLOCKS, (0.5, 0.2, 0.84, 0.996), threshold=0.3)
    assert plan.summary() == "stem, layer2 ×4.8, fc ×9.8"  # ×1 (the base rate) goes unsaid
    assert [r.block for r in plan.rows() if not r.frozen] == ["stem", "layer2", "fc"]
    extremes = FineTunePlan(BLOCKS, (1.0, 0.01, 0.4, 0.0), threshold=0.0)
    assert extremes.summary() == "stem ×10, layer1 ×0.1, layer2 ×0.63"  # no exponent form
    empty = FineTunePlan(BLOCKS, (0.1, 0.2, 0.3, 0.4), threshold=0.9)
    assert empty.summary() == "nothing fine-tuned (all 4 blocks frozen)"


def test_suggest_plan_on_a_study_records_every_gene() -> None:
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1)
    )
    trial = study.ask()
    plan = suggest_plan(trial, BLOCKS, base_lr=3e-4)
    assert set(trial.params) == set(plan_search_space(BLOCKS))
    assert plan == FineTunePlan.from_params(trial.params, BLOCKS, base_lr=3e-4)
    assert plan.base_lr == 3e-4


def test_fixed_trial_and_missing_genes() -> None:
    params = {
        "importance:stem": 0.9,
        "importance:layer1": 0.1,
        "importance:layer2": 0.7,
        "importance:fc": 0.8,
        "freeze_threshold": 0.5,
    }
    plan = suggest_plan(optuna.trial.FixedTrial(params), BLOCKS)
    assert plan.selected == ("stem", "layer2", "fc")
    del params["importance:fc"]
    with pytest.raises(KeyError, match="importance:fc"):
        FineTunePlan.from_params(params, BLOCKS)


@pytest.mark.parametrize(
    ("blocks", "importances", "message"),
    [
        ((), (), "at least one block"),
        (("a", "a"), (0.1, 0.2), "repeated"),
        (("a", "b"), (0.1,), "2 blocks but 1"),
    ],
)
def test_bad_plans(blocks: tuple, importances: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FineTunePlan(blocks, importances, threshold=0.5)


def test_plan_module_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from biotune_optuna.plan import FineTunePlan, suggest_plan\n"
        "print(FineTunePlan(('a', 'b'), (0.2, 0.9), 0.5).selected)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('b',)"


def test_table_lines_are_unbreakable_and_read_back() -> None:
    from biotune_optuna.plan import table_items
    from biotune_optuna.plan import table_line

    line = table_line(["stem", "stage4 ×4.8"])
    assert line == "stem,\u00a0stage4\u00a0×4.8" and " " not in line
    assert table_items(line) == ["stem", "stage4 ×4.8"]
    assert table_line([]) == "none" and table_items("none") == []
    assert table_items(["stem", "head"]) == ["stem", "head"]  # older studies stored lists
