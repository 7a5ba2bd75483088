"""The recommended plan: an estimate robust to fold and seed noise, the same for every sampler."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import math
from pathlib import Path
import subprocess
import sys

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from biotune_optuna.cli import main
from biotune_optuna.samplers._registry import create_sampler
from biotune_optuna.studies._recommendation import current_recommendation
from biotune_optuna.studies._recommendation import estimate_noise
from biotune_optuna.studies._recommendation import NoiseEstimate
from biotune_optuna.studies._recommendation import recommend
from biotune_optuna.studies._recommendation import Recommendation
from biotune_optuna.studies._recommendation import RECOMMENDATION_KEY
from biotune_optuna.studies._recommendation import recommended_trial
from biotune_optuna.studies._recommendation import record_recommendation
from biotune_optuna.studies._recommendation import stored_recommendation
from biotune_optuna.studies._report import estimate_words
from biotune_optuna.studies._synthetic import SyntheticFineTuning
from tests.conftest import copy_spec


SPACE = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}


def trials_of(points: Sequence[tuple[float, float, float, int | None]]) -> list[FrozenTrial]:
    """COMPLETE trials numbered in order, from ``(x, y, value, fold)`` (fold None: no attr)."""
    trials = []
    for number, (x, y, value, fold) in enumerate(points):
        trial = optuna.trial.create_trial(
            params={"x": x, "y": y},
            distributions=SPACE,
            value=value,
            user_attrs={} if fold is None else {"fold": fold},
        )
        trial.number = number
        trials.append(trial)
    return trials


def background(rng: np.random.Generator, n: int, f: object, noise: float) -> list[tuple]:
    """``n`` plans spread over the space, on alternating folds (no fold effect)."""
    xy = rng.uniform(0.0, 1.0, (n, 2))
    return [(x, y, f(x, y) + rng.normal(0.0, noise), k % 2) for k, (x, y) in enumerate(xy)]


def landscape(x: float, y: float) -> float:
    """Better towards (0.8, 0.8), smooth."""
    return 0.6 - 0.3 * ((x - 0.8) ** 2 + (y - 0.8) ** 2)


def spike_study() -> tuple[list[FrozenTrial], int, set[int]]:
    """Plans spread over the space, and two families of near-identical plans: one around
    (0.3, 0.3), worse, with one lucky evaluation far above its neighbours; one around
    (0.8, 0.8), the best region. Returns the trials, the spike and the plans of the best region
    (true value within 0.01 of the best)."""
    rng = np.random.default_rng(0)
    points = background(rng, 20, landscape, 0.01)
    for _ in range(8):
        jitter, noise = rng.uniform(-0.01, 0.01, 4), rng.normal(0.0, 0.01, 2)
        points.append((0.3 + jitter[0], 0.3 + jitter[1], landscape(0.3, 0.3) + noise[0], 0))
        points.append((0.8 + jitter[2], 0.8 + jitter[3], landscape(0.8, 0.8) + noise[1], 1))
    spike = len(points)
    points.append((0.3, 0.3, 0.75, 0))  # a lucky draw: its neighbours score about 0.45
    good = {k for k, (x, y, _, _) in enumerate(points) if landscape(x, y) > 0.59}
    return trials_of(points), spike, good


def test_a_lucky_spike_is_not_recommended_but_the_better_region_is() -> None:
    trials, spike, good = spike_study()
    smoothed = recommend(trials, direction="maximize")
    best = recommend(trials, rule="max", direction="maximize")
    assert isinstance(smoothed, Recommendation) and isinstance(best, Recommendation)
    assert best.trial.number == spike and best.estimate == 0.75 and best.rule == "max"
    assert smoothed.rule == "smoothed" and smoothed.n_trials == len(trials)
    assert smoothed.trial.number in good and len(good) >= 8
    assert abs(smoothed.estimate - landscape(0.8, 0.8)) < 0.03  # not the luckiest draw


def test_minimising_recommends_the_same_plan_with_the_sign_kept() -> None:
    trials, spike, good = spike_study()
    negated = []
    for t in trials:
        copy = optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, value=-t.value, user_attrs=t.user_attrs
        )
        copy.number = t.number
        negated.append(copy)
    smoothed = recommend(negated, direction=optuna.study.StudyDirection.MINIMIZE)
    assert smoothed is not None and smoothed.trial.number in good
    assert abs(smoothed.estimate + landscape(0.8, 0.8)) < 0.03
    best = recommend(negated, rule="max", direction="minimize")
    assert best is not None and best.trial.number == spike and best.estimate == -0.75


def test_a_family_evaluated_only_on_the_easier_fold_is_not_favoured_for_it() -> None:
    """Fold 1 scores 0.1 higher for every plan. Family A, evaluated only on fold 1, is
    slightly worse than family B, evaluated only on fold 0; both beat the other plans."""
    rng = np.random.default_rng(1)

    def f(x: float, y: float) -> float:
        return 0.5 + 0.02 * x - (y - 0.5) ** 2

    points = []
    for x in rng.uniform(0.0, 1.0, 12):  # the same plans on both folds
        y = rng.choice([0.0, 0.7]) + rng.uniform(0.0, 0.3)
        points += [(x, y, f(x, y) + rng.normal(0, 0.003), 0)]
        points += [(x, y, f(x, y) + 0.1 + rng.normal(0, 0.003), 1)]
    family_a, family_b = set(), set()
    for _ in range(5):
        family_a.add(len(points))
        points.append((0.2, 0.5, f(0.2, 0.5) + 0.1 + rng.normal(0, 0.003), 1))
        family_b.add(len(points))
        points.append((0.9, 0.5, f(0.9, 0.5) + rng.normal(0, 0.003), 0))
    trials = trials_of(points)
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None and chosen.trial.number in family_b
    assert abs(chosen.estimate - (f(0.9, 0.5) + 0.05)) < 0.02  # for the average fold
    # The best single value is the trap: a family A trial, for its fold.
    best = recommend(trials, rule="max", direction="maximize")
    assert best is not None and best.trial.number in family_a


def test_a_fold_that_held_better_plans_is_not_taken_for_an_easier_one() -> None:
    """No fold effect, but fold 0 also holds a bad initial population: subtracting fold means
    would favour fold 0's plans; the offsets are estimated from plans both folds share."""
    rng = np.random.default_rng(2)
    points = [(x, y, landscape(x, y), 0) for x, y in rng.uniform(0.0, 0.3, (15, 2))]
    for x, y in rng.uniform(0.4, 0.9, (8, 2)):  # the same plans on both folds
        points += [(x, y, landscape(x, y), 0), (x, y, landscape(x, y), 1)]
    points.append((0.6, 0.6, landscape(0.6, 0.6), 0))  # the best of fold 0 but for shared ones
    points.append((0.8, 0.8, landscape(0.8, 0.8), 1))  # the best plan
    chosen = recommend(trials_of(points), direction="maximize")
    assert chosen is not None
    x, y = chosen.trial.params["x"], chosen.trial.params["y"]
    assert landscape(x, y) > landscape(0.8, 0.8) - 0.005  # fold means would pick (0.6, 0.6)


def test_fewer_than_five_trials_use_the_mean_of_each_plan() -> None:
    trials = trials_of(
        [(0.1, 0.1, 0.9, 0), (0.5, 0.5, 0.6, 0), (0.1, 0.1, 0.1, 1), (0.7, 0.7, 0.55, 1)]
    )
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None and chosen.rule == "mean" and chosen.trial.number == 1
    assert chosen.estimate == pytest.approx(0.6) and chosen.n_trials == 4
    assert recommend(trials, rule="max", direction="maximize").trial.number == 0  # type: ignore[union-attr]
    assert recommend(trials[:1], direction="maximize").trial.number == 0  # type: ignore[union-attr]
    assert recommend([], direction="maximize") is None


def test_only_complete_trials_count_and_bad_arguments_are_refused() -> None:
    study = optuna.create_study(direction="maximize")
    assert recommend(study) is None and record_recommendation(study) is None
    study.tell(study.ask(), state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.PRUNED)
    assert recommend(study) is None and recommended_trial(study) is None
    trial = study.ask(SPACE)
    study.tell(trial, 0.5)
    chosen = recommend(study)
    assert chosen is not None and chosen.trial.number == 2 and chosen.n_trials == 1
    with pytest.raises(ValueError, match="`rule`"):
        recommend(study, rule="best")
    with pytest.raises(ValueError, match="`direction`"):
        recommend(study.trials)
    with pytest.raises(ValueError, match="single-objective"):
        recommend(optuna.create_study(directions=["maximize", "minimize"]))


def test_a_model_that_cannot_be_fitted_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from optuna._gp import gp

    def broken(**kwargs: object) -> None:
        raise RuntimeError("no model today")

    monkeypatch.setattr(gp, "fit_kernel_params", broken)
    trials, _, _ = spike_study()
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None and chosen.rule == "mean" and math.isfinite(chosen.estimate)


def test_trials_lacking_some_params_are_compared_on_the_common_ones() -> None:
    trials, _, good = spike_study()
    extra = optuna.trial.create_trial(
        params={"x": 0.5, "y": 0.5, "z": 3},
        distributions={**SPACE, "z": optuna.distributions.IntDistribution(0, 5)},
        value=landscape(0.5, 0.5),
        user_attrs={"fold": 0},
    )
    extra.number = len(trials)
    chosen = recommend([*trials, extra], direction="maximize")
    assert chosen is not None and chosen.rule == "smoothed" and chosen.trial.number in good


def test_the_recommendation_is_deterministic() -> None:
    trials, _, _ = spike_study()
    first = recommend(trials, direction="maximize")
    again = recommend(list(reversed(trials)), direction="maximize")
    assert first is not None and again is not None
    assert (first.trial.number, first.estimate) == (again.trial.number, again.estimate)


@pytest.mark.parametrize("name", ["biotune", "random", "tpe", "cmaes", "nsgaii", "qmc"])
def test_every_sampler_s_study_gets_the_same_rule(name: str) -> None:
    landscape_ = SyntheticFineTuning(n_blocks=4, seed=0)
    space = {p: FloatDistribution(0.0, 1.0) for p in landscape_.param_names}
    study = optuna.create_study(
        direction="maximize", sampler=create_sampler(name, seed=0, search_space=space)
    )
    rng = np.random.default_rng(0)

    def noisy(trial: optuna.Trial) -> float:
        trial.set_user_attr("fold", trial.number % 2)
        return landscape_(trial) + float(rng.normal(0.0, 0.02))

    study.optimize(noisy, n_trials=20)
    chosen = recommend(study)
    assert chosen is not None and chosen.rule in ("smoothed", "observed")
    assert chosen.n_trials == 20 and chosen.noise is not None
    assert chosen.trial.state == TrialState.COMPLETE
    assert chosen.trial.number in {t.number for t in study.trials}
    values = [t.value for t in study.trials]
    assert min(values) - 0.05 <= chosen.estimate <= max(values) + 0.05
    # what it would have recommended after its first 10 trials
    early = recommend(study.trials[:10], direction=study.direction)
    assert early is not None and early.n_trials == 10 and early.trial.number < 10


def test_the_recorded_recommendation_is_used_until_another_trial_completes(
    tmp_path: Path,
) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'r.db'}", direction="maximize", study_name="r"
    )
    rng = np.random.default_rng(3)
    for k in range(12):
        trial = study.ask(SPACE)
        trial.set_user_attr("fold", k % 2)
        study.tell(trial, landscape(trial.params["x"], trial.params["y"]) + rng.normal(0, 0.01))
    recorded = record_recommendation(study)
    assert recorded is not None
    stored = study._storage.get_study_system_attrs(study._study_id)[RECOMMENDATION_KEY]
    assert stored == {
        "trial": recorded.trial.number,
        "estimate": recorded.estimate,
        "rule": recorded.rule,
        "n_trials": 12,
        "noise": recorded.noise,
        "noise_source": recorded.noise_source,
        "interval": None if recorded.interval is None else list(recorded.interval),
    }
    assert stored_recommendation(study) == recorded  # read back whole
    assert study.user_attrs["recommended_trial"] == recorded.trial.number
    assert recommended_trial(study).number == recorded.trial.number  # type: ignore[union-attr]

    # A current record is trusted as it is ...
    fake = {**stored, "trial": 0, "estimate": 0.123}
    study._storage.set_study_system_attr(study._study_id, RECOMMENDATION_KEY, fake)
    assert current_recommendation(study) == Recommendation(
        study.trials[0], 0.123, recorded.rule, 12, recorded.noise, recorded.noise_source,
        recorded.interval,
    )  # fmt: skip
    # ... and so is one written before the noise was estimated (no noise, no interval).
    old = {"trial": 0, "estimate": 0.123, "rule": "smoothed", "n_trials": 12}
    study._storage.set_study_system_attr(study._study_id, RECOMMENDATION_KEY, old)
    assert current_recommendation(study) == Recommendation(study.trials[0], 0.123, "smoothed", 12)
    # ... and a stale one is not: a trial has completed since.
    study.tell(study.ask(SPACE), 0.0)
    assert stored_recommendation(study) is None
    fresh = current_recommendation(study)
    assert fresh is not None and fresh.n_trials == 13 and fresh.estimate != 0.123


def test_the_cli_best_and_status_name_the_recommended_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(copy_spec("synthetic", tmp_path))
    assert main(["run", spec, "--trials", "14", "-q"]) == 0
    run_output = capsys.readouterr().out
    storage = f"sqlite:///{tmp_path / 'synthetic.db'}"
    study = optuna.load_study(study_name="biotune-synthetic", storage=storage)
    number = study.user_attrs["recommended_trial"]  # recorded by the run
    assert stored_recommendation(study) is not None
    assert f"recommended trial #{number} (synthetic fitness, maximized)" in run_output

    assert main(["best", spec]) == 0
    out = capsys.readouterr().out
    assert f"recommended trial #{number} (synthetic fitness, maximized)" in out
    assert "not a measurement" in out or "the noise is negligible" in out
    assert f"best observed   {study.best_value:.4f}: trial #{study.best_trial.number}, " in out
    assert "| block" in out

    assert main(["status", spec]) == 0
    out = capsys.readouterr().out
    assert f"recommended trial #{number}: observed" in out and "estimate " in out


def test_the_module_imports_without_torch() -> None:
    code = "import sys, biotune_optuna.studies._recommendation; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def refined_study(noise: float, seed: int = 4) -> list[FrozenTrial]:
    """Plans spread over the space, then plans refined around the best region (each close
    to an earlier one, as a sampler's later trials are), observed with Gaussian ``noise``."""
    rng = np.random.default_rng(seed)
    points = background(rng, 15, landscape, noise)
    for _ in range(25):
        x, y = np.clip(0.75 + rng.normal(0.0, 0.08, 2), 0.0, 1.0)
        for dx in (0.0, 0.002):  # a near repeat of each refined plan
            value = landscape(x + dx, y) + rng.normal(0.0, noise)
            points.append((x + dx, y, value, None))
    return trials_of(points)


def test_noise_free_data_recommend_the_best_observed_plan() -> None:
    trials = refined_study(noise=0.0)
    chosen = recommend(trials, direction="maximize")
    best = max(trials, key=lambda t: t.value)  # type: ignore[arg-type, return-value]
    assert chosen is not None and chosen.rule == "observed" and chosen.trial.number == best.number
    assert chosen.estimate == best.value and chosen.interval is None
    assert chosen.noise_source == "pairs" and chosen.noise is not None and chosen.noise < 1e-3
    smoothed = recommend(trials, rule="smoothed", direction="maximize")  # the old rule
    assert smoothed is not None and smoothed.rule == "smoothed" and smoothed.interval is not None


def test_noisy_near_repeats_recommend_the_smoothed_estimate() -> None:
    trials = refined_study(noise=0.03)
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None and chosen.rule == "smoothed" and chosen.noise_source == "pairs"
    assert chosen.noise is not None and 0.015 < chosen.noise < 0.06  # the true sd: 0.03
    assert chosen.interval is not None
    low, high = chosen.interval
    assert low < chosen.estimate < high and high - low < 0.1


def test_the_noise_of_repeats_without_a_model() -> None:
    """Fewer trials than a model needs: exact repeats give the estimate, else it is unknown."""
    trials = trials_of([(0.1, 0.1, v, None) for v in (0.50, 0.52, 0.48)])
    few = estimate_noise(trials, np.array([t.value for t in trials]), None)
    assert few.sd is None and few.source is None and few.pairs == 2 and not few.negligible
    values = [0.5, 0.52, 0.48, 0.5, 0.7, 0.72, 0.68, 0.7]
    trials = trials_of([(0.1 * (k // 4), 0.1, v, None) for k, v in enumerate(values)])
    noise = estimate_noise(trials, np.array(values), None)
    assert noise.source == "repeats" and noise.pairs == 6
    assert noise.sd == pytest.approx(np.sqrt(2 * 0.0008 / 6))
    assert NoiseEstimate(0.0, 1.0, "pairs", 9).negligible
    assert not NoiseEstimate(0.5, 1.0, "pairs", 9).negligible


def test_the_estimate_is_said_for_what_it_is_and_an_extrapolation_is_marked() -> None:
    trials = refined_study(noise=0.03)
    chosen = recommend(trials, direction="maximize")
    assert chosen is not None and chosen.interval is not None
    top = max(t.value for t in trials)  # type: ignore[type-var]
    words = estimate_words(chosen, top)
    assert words.startswith(f"{chosen.estimate:.4f}, 95 % posterior interval [")
    assert "not a measurement" in words and "noise sd" in words
    assert "ABOVE EVERY OBSERVED VALUE" not in words
    above = dataclasses.replace(chosen, estimate=top + 0.01)
    assert f"ABOVE EVERY OBSERVED VALUE (best {top:.4f})" in estimate_words(above, top)
    observed = recommend(refined_study(noise=0.0), direction="maximize")
    assert observed is not None and "the noise is negligible" in estimate_words(observed, 1.0)
