"""The numbers a person reads: shares of parameters, and the comparison figures."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from biotune_optuna.plan import importance_param
from biotune_optuna.plan import plan_search_space
from biotune_optuna.plan import THRESHOLD_PARAM
from biotune_optuna.studies._report import compare_figures
from biotune_optuna.studies._report import format_mean_std
from biotune_optuna.studies._report import format_share
from biotune_optuna.studies._report import frozen_head_warning


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [
        (0.0, "0"),
        (1.0, "100"),
        (0.37, "37.0"),
        (0.0004, "0.04"),  # a tiny block is not "0.0" like an empty plan
        (0.000004, "0.0004"),
        (0.99996, "99.996"),  # nearly all is not "100.0"
        (1e-9, "1e-07"),
    ],
)
def test_format_share_never_rounds_some_to_none_or_all(fraction: float, shown: str) -> None:
    assert format_share(fraction) == shown


def _study(values: list[float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for value in values:
        study.add_trial(optuna.trial.create_trial(value=value))
    return study


def test_one_study_per_group_is_drawn_without_a_band(tmp_path: Path) -> None:
    groups = {"biotune": [_study([0.1, 0.9, 0.92])], "tpe": [_study([0.5, 0.8, 0.95])]}
    html, png = compare_figures(groups, tmp_path, "demo")
    text = html.read_text()
    assert "one study each: no spread" in text and "interquartile" not in text
    assert '"fill":"tonexty"' not in text  # no IQR band
    assert png.stat().st_size > 0


def test_the_value_axis_is_not_squashed_by_a_chance_level_first_trial(tmp_path: Path) -> None:
    first = [0.1] + [0.90 + 0.001 * i for i in range(19)]
    groups = {"a": [_study(first), _study(first)], "b": [_study([0.5] + [0.93] * 19)]}
    html, _ = compare_figures(groups, tmp_path, "demo")
    text = html.read_text()
    assert "median and interquartile band over seeds" in text
    assert '"fill":"tonexty"' in text  # group a has two studies: its band is drawn
    assert "earlier trials lower" in text
    # The axis starts near 0.9, not at 0.1.
    low = float(text.split('"range":[')[1].split(",")[0])
    assert 0.85 < low < 0.91, low


def _plan_trial(head: float, **attrs: object) -> optuna.trial.FrozenTrial:
    blocks = ("stem", "stage1", "head")
    params = {**{importance_param(b): v for b, v in zip(blocks, (0.9, 0.2, head))}}
    params[THRESHOLD_PARAM] = 0.5
    return optuna.trial.create_trial(
        value=0.9,
        params=params,
        distributions=plan_search_space(blocks),
        user_attrs=attrs,
    )


def test_a_plan_that_freezes_the_new_head_is_warned_about_with_its_cure() -> None:
    warning = frozen_head_warning(_plan_trial(head=0.3))
    assert warning is not None
    assert "`head`" in warning and "always_train_head = true" in warning
    assert frozen_head_warning(_plan_trial(head=0.7)) is None
    # What was trained counts: with always_train_head the trial's frozen_blocks lack the head.
    assert frozen_head_warning(_plan_trial(head=0.3, frozen_blocks="stage1")) is None
    assert frozen_head_warning(_plan_trial(head=0.3, frozen_blocks="stage1,\u00a0head"))
    assert frozen_head_warning(_plan_trial(head=0.3, frozen_blocks=["stage1", "head"]))
    baseline = optuna.trial.create_trial(value=0.9, params={}, distributions={})
    assert frozen_head_warning(baseline) is None


def test_best_and_the_note_show_the_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_dashboard import get_note

    from biotune_optuna.cli._best import print_best
    from biotune_optuna.studies import save_study_note

    study = optuna.create_study(direction="maximize")
    study.add_trial(_plan_trial(head=0.3))
    print_best(study)
    assert "warning: this plan freezes `head`" in capsys.readouterr().out
    save_study_note(study)
    assert "always_train_head = true" in get_note(study)


def test_one_run_is_shown_without_a_spread() -> None:
    assert format_mean_std([0.91612]) == "0.9161"
    assert format_mean_std([0.9, 0.92]) == "0.9100 ± 0.0100"
    assert format_mean_std([0.9, 0.92], scale=100, digits=2) == "91.00 ± 1.00"
