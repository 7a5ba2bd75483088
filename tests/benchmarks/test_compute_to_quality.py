"""The compute-to-quality benchmark's bookkeeping: epochs and seconds of pruned and complete
trials, reaching the level, the table rows; on hand-made trials, no training."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
import re
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from tests.benchmarks import load_benchmark


ctq = load_benchmark("compute_to_quality")
START = datetime.datetime(2026, 1, 1, 12, 0, 0)
SPACE = {"x": FloatDistribution(0.0, 1.0)}


def _complete(value: float, epochs: float, seconds: float, x: float = 0.5) -> FrozenTrial:
    return create_trial(
        value=value,
        params={"x": x},
        distributions=SPACE,
        user_attrs={"epochs": epochs, "wall_time_s": seconds},
        intermediate_values={e: value for e in range(1, int(epochs) + 1)},
    )


def _pruned(rungs: int, seconds: float) -> FrozenTrial:
    trial = create_trial(
        state=TrialState.PRUNED,
        params={"x": 0.1},
        distributions=SPACE,
        intermediate_values={e: 0.2 for e in range(1, rungs + 1)},
    )
    trial.datetime_start = START
    trial.datetime_complete = START + datetime.timedelta(seconds=seconds)
    return trial


def _numbered(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


def test_pruned_trials_count_their_reported_epochs_and_their_duration() -> None:
    trials = [_complete(0.8, 4.0, 3.0), _pruned(1, 0.9), _pruned(2, 1.5), _complete(0.7, 0.0, 0.1)]
    epochs = ctq.cumulative([ctq.trial_epochs(t) for t in trials])
    seconds = ctq.cumulative([ctq.trial_seconds(t) for t in trials])
    assert epochs == [4.0, 5.0, 7.0, 7.0]  # the empty plan trains nothing
    assert seconds == pytest.approx([3.0, 3.9, 5.4, 5.5])


def test_a_complete_trial_counts_its_epochs_attr_not_its_reports() -> None:
    trial = _complete(0.8, 2.5, 2.0)  # mean over two training seeds that stopped at 2 and 3
    assert ctq.trial_epochs(trial) == 2.5


def test_budget_points_every_step_and_at_the_budget() -> None:
    assert ctq.budget_points(75, 75) == [15, 30, 45, 60, 75]
    assert ctq.budget_points(40, 75) == [15, 30]
    assert ctq.budget_points(70, 70) == [15, 30, 45, 60, 70]


def test_study_record_scores_the_recommended_trial_at_each_point() -> None:
    trials = _numbered(
        [_complete(0.5 + 0.01 * i, 4.0, 3.0, x=i / 10) for i in range(3)]
        + [_pruned(1, 1.0), _pruned(2, 2.0), _complete(0.9, 4.0, 3.0, x=0.9)]
    )
    scored: list[int] = []

    def score(trial: FrozenTrial) -> list[float]:
        scored.append(trial.number)
        return [0.6, 0.8]

    record = ctq.study_record(trials, "biotune-plus+sh", 1, 6, score, step=3)
    assert record["trials"] == 6 and record["pruned"] == 2 and record["complete"] == 4
    assert set(record["points"]) == {"3", "6"}
    assert record["points"]["3"]["epochs"] == 12.0
    assert record["points"]["6"]["epochs"] == 19.0
    assert record["points"]["6"]["seconds"] == pytest.approx(15.0)
    assert record["points"]["6"]["score"] == pytest.approx(0.7)
    assert record["points"]["3"]["recommended"] in {0, 1, 2}
    assert len(scored) == 2


def _record(method: str, seed: int, points: dict[int, tuple[float, float, float | None]]) -> dict:
    """``points``: trials -> (epochs, seconds, score)."""
    return {
        "method": method,
        "seed": seed,
        "budget": max(points),
        "points": {
            str(b): {"epochs": e, "seconds": s, **({"score": v} if v is not None else {})}
            for b, (e, s, v) in points.items()
        },
    }


def _reference() -> list[dict[str, Any]]:
    finals = [0.80, 0.82, 0.84]
    return [
        _record("biotune", seed, {15: (60.0, 50.0, 0.7), 30: (120.0, 100.0, final)})
        for seed, final in enumerate(finals)
    ]


def test_the_level_is_the_median_less_the_std_of_the_paper_preset() -> None:
    level = ctq.level_of(_reference())
    assert level["level"] == pytest.approx(0.82)
    assert level["std"] == pytest.approx(0.02)
    assert level["threshold"] == pytest.approx(0.80)
    assert level["epochs"] == 120.0 and level["seconds"] == 100.0


def test_the_level_needs_a_preset_study_at_its_full_budget() -> None:
    partial = _record("biotune", 0, {15: (60.0, 50.0, 0.7)})
    partial["budget"] = 30
    assert ctq.level_of([partial]) is None


def test_a_study_reaches_the_level_at_its_first_point_above_the_threshold() -> None:
    record = _record("tpe+sh", 0, {15: (20, 10, 0.79), 30: (40, 20, 0.81), 45: (60, 30, 0.9)})
    assert ctq.reached_at(record, 0.80) == {"trials": 30, "epochs": 40, "seconds": 20}
    assert ctq.reached_at(record, 0.95) is None
    record["points"]["15"].pop("score")  # no complete trial yet: nothing recommended
    assert ctq.reached_at(record, 0.5)["trials"] == 30


def test_score_within_an_epoch_budget_takes_the_last_point_inside_it() -> None:
    record = _record("tpe", 0, {15: (60, 1, 0.7), 30: (120, 2, 0.8)})
    assert ctq.score_within(record, 59) is None
    assert ctq.score_within(record, 100) == 0.7
    assert ctq.score_within(record, 120) == 0.8


def test_table_rows_count_the_seeds_that_do_not_reach_the_level() -> None:
    level = ctq.level_of(_reference())
    records = [
        *_reference(),
        _record("biotune-plus+sh", 0, {15: (10.0, 5.0, 0.81), 30: (20.0, 10.0, 0.85)}),
        _record("biotune-plus+sh", 1, {15: (12.0, 6.0, 0.70), 30: (24.0, 12.0, 0.83)}),
        _record("biotune-plus+sh", 2, {15: (11.0, 6.0, 0.60), 30: (22.0, 11.0, 0.70)}),
        _record("tpe", 0, {15: (60.0, 50.0, 0.6)}),
    ]
    records[-1]["budget"] = 30  # a partial study: 15 of its 30 trials
    header, rows, numbers = ctq.table_rows(records, ["biotune", "biotune-plus+sh", "tpe"], level)
    assert header[0] == "method" and len(rows) == 3
    plus = numbers["biotune-plus+sh"]
    assert plus["reached"] == 2 and plus["not_reached_seeds"] == [2]
    assert plus["epochs_to_level"] == [10.0, 24.0]
    assert plus["epochs_ratio"] == pytest.approx(17.0 / 120.0)
    assert plus["final_scores"] == [0.85, 0.83, 0.70]
    assert rows[1][2] == "2/3"
    reference = numbers["biotune"]
    assert reference["reached"] == 3 and reference["epochs_ratio"] == 1.0
    assert numbers["tpe"]["seeds"] == [] and numbers["tpe"]["partial_seeds"] == [0]
    assert rows[2][1] == "0 (+1 partial)"


def test_targets_say_met_and_not_met() -> None:
    records = _reference() + [
        _record("biotune-plus+sh", s, {15: (5.0, 2.0, 0.81), 30: (10.0, 4.0, 0.86)})
        for s in range(3)
    ]
    payload = ctq.report_payload(records, ["biotune", "biotune-plus+sh"], [0, 1, 2])
    assert payload["epoch_budgets"] == [5.0, 10.0]
    assert "**met** (24.0x" in payload["targets"][0]
    assert "above every other row" in payload["targets"][1]
    assert payload["status"].startswith("**Complete**")
    _, rows, _ = ctq.equal_epoch_rows(records, ["biotune", "biotune-plus+sh"], [5.0, 10.0])
    assert rows[0][1:] == ["–", "–"] and rows[1][2] == "0.8600 [0.8600, 0.8600] (n=3)"
    slow = _reference() + [
        _record("biotune-plus+sh", s, {15: (60.0, 2.0, 0.7), 30: (120.0, 4.0, 0.81)})
        for s in range(3)
    ]
    payload = ctq.report_payload(slow, ["biotune", "biotune-plus+sh"], [0, 1, 2, 3])
    assert "**NOT met** (1.0x" in payload["targets"][0]
    assert "NOT above `biotune`" in payload["targets"][2]
    assert payload["status"].startswith("**PARTIAL**")


def test_method_specs_name_their_studies_and_set_the_pruner() -> None:
    from biotune_optuna.studies import load_spec

    base = load_spec(ctq.SPEC)
    assert base.budget == 75 and base.protocol.max_epochs == 4
    assert ctq.method_spec(base, "biotune", 0).name == "compute"
    assert ctq.method_spec(base, "tpe", 2).name == "compute-tpe-seed2"
    sh = ctq.method_spec(base, "biotune-plus+sh", 1)
    assert sh.name == "compute-biotune-plus-sh-seed1" and sh.sampler == "biotune-plus"
    assert sh.pruner == "successive_halving"
    assert dict(sh.pruner_options) == {"min_resource": 1, "reduction_factor": 2}
    hb = ctq.method_spec(base, "random+hyperband", 0)
    assert hb.name == "compute-random-hyperband" and hb.pruner == "hyperband"
    names = {ctq.method_spec(base, m, s).name for m in ctq.METHODS for s in range(5)}
    assert len(names) == 30


def _seed0_study(tmp_path: Path, method: str) -> tuple[Any, optuna.Study]:
    """The benchmark's base spec with its storage in ``tmp_path``, and the empty study of
    ``method``'s seed 0 there."""
    from biotune_optuna.studies import load_spec

    base = dataclasses.replace(load_spec(ctq.SPEC), storage=f"sqlite:///{tmp_path}/s.db")
    spec = ctq.method_spec(base, method, 0)
    study = optuna.create_study(storage=spec.storage, study_name=spec.name, direction="maximize")
    return base, study


def _score_without_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, base: Any, method: str, trials: int
) -> dict[str, Any]:
    """The record ``score_one`` stores (in ``tmp_path``) for ``method``'s seed 0 after
    ``trials`` trials, every retrain scoring [0.5, 0.7] without training."""
    monkeypatch.setattr(ctq, "RECORDS", tmp_path / "records.json")
    monkeypatch.setattr(ctq, "RETRAINS", tmp_path / "retrains.json")
    monkeypatch.setattr(ctq.sampler_race, "_score_trial", lambda *a, **k: [0.5, 0.7])
    monkeypatch.setattr(ctq.store_record, "__defaults__", (tmp_path / "records.json",))
    ctq.score_one(base, method, 0, object(), trials)
    (record,) = ctq.load_records(tmp_path / "records.json")
    return record


def test_score_one_stores_a_record_without_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, study = _seed0_study(tmp_path, "tpe+sh")
    for trial in [_complete(0.5 + 0.01 * i, 4.0, 3.0, x=i / 20) for i in range(14)]:
        study.add_trial(trial)
    study.add_trial(_pruned(2, 1.0))
    record = _score_without_training(monkeypatch, tmp_path, base, "tpe+sh", 15)
    assert record["study"] == study.study_name and record["trials"] == 15
    assert record["points"]["15"]["score"] == pytest.approx(0.6)
    assert record["points"]["15"]["epochs"] == 58.0


def test_report_writes_the_tables_and_the_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        *_reference(),
        *(
            _record("biotune-plus+sh", s, {15: (5.0, 2.0, 0.81), 30: (10.0, 4.0, 0.86)})
            for s in range(3)
        ),
    ]
    for record in records:
        record["study"] = f"{record['method']}-{record['seed']}"
        ctq.store_record(record, tmp_path / "records.json")
    monkeypatch.setattr(ctq, "RECORDS", tmp_path / "records.json")
    monkeypatch.setattr(ctq.load_records, "__defaults__", (tmp_path / "records.json",))
    monkeypatch.setattr(ctq, "STEM", tmp_path / "out")
    args = ctq._parser().parse_args(["report", "--seeds", "0,1,2"])
    ctq.report(args)
    text = (tmp_path / "out.md").read_text()
    assert "**Complete**" not in text  # the other methods have no seed
    assert "| biotune-plus + SH | 3 | 3/3 | 5 [5, 5] | 0.042 (1/24.0) | 2 [2, 2] |" in text
    assert (
        "\n    .venv/bin/python benchmarks/compute_to_quality.py --threads 1 run --methods "
        "biotune,biotune-plus+sh,tpe+sh,"
    ) in text
    assert (tmp_path / "out.json").is_file()


# -- honest records: relative commands, failed trials, library versions, the caveat -----------

OLD_RUN = (
    "cd /work/wt-bench && nice -n 10 /work/main/.venv/bin/python "
    "benchmarks/compute_to_quality.py --threads 1 run --methods biotune --seeds 0,1"
)


@pytest.mark.parametrize(
    ("recorded", "relative"),
    [
        (
            OLD_RUN,
            ".venv/bin/python benchmarks/compute_to_quality.py --threads 1 run "
            "--methods biotune --seeds 0,1",
        ),
        (
            "nice -n 10 cd /x && /home/me/clone/.venv/bin/python benchmarks/a.py report",
            ".venv/bin/python benchmarks/a.py report",
        ),
        (
            "nice -5 python /srv/wt/benchmarks/a.py --spec /srv/wt/benchmarks/specs/s.toml",
            "python benchmarks/a.py --spec benchmarks/specs/s.toml",
        ),
        (".venv/bin/python benchmarks/a.py report", ".venv/bin/python benchmarks/a.py report"),
    ],
)
def test_recorded_commands_become_relative_to_the_repository(recorded: str, relative: str) -> None:
    assert ctq.relative_command(recorded) == relative


def test_library_versions_lose_the_checkout_path() -> None:
    assert ctq.library_label("/work/main at 2fbbcff") == "2fbbcff"
    assert ctq.library_label("/w/m at 7ae1aaa + 8 uncommitted file(s)") == (
        "7ae1aaa + 8 uncommitted file(s)"
    )
    assert ctq.library_label("/w/m (not a git checkout)") == "not a git checkout"
    assert ctq.library_label("2fbbcff") == "2fbbcff"
    assert "/" not in ctq.library_version()


def test_built_commands_are_relative_and_name_a_non_default_spec() -> None:
    args = ctq._parser().parse_args(["report", "--methods", "tpe", "--seeds", "0"])
    commands = ctq._commands(args)
    assert all(
        c.startswith(".venv/bin/python benchmarks/compute_to_quality.py ") for c in commands
    )
    assert commands[0].endswith("run --methods tpe --seeds 0 --parallel 2 --order method")
    assert not any("/work" in c or "cd " in c or "nice" in c for c in commands)
    spec = ctq.HERE / "specs" / "digits_sampler_race.toml"
    args = ctq._parser().parse_args(["report", "--spec", str(spec), "--step", "5"])
    assert ctq._commands(args)[2].endswith(
        "--spec benchmarks/specs/digits_sampler_race.toml --step 5"
    )


def _failed(rungs: int, epochs: float | None = None) -> FrozenTrial:
    trial = _pruned(rungs, 2.0)
    trial.state = TrialState.FAIL
    if epochs is not None:
        trial.user_attrs["epochs"] = epochs
    return trial


def test_failed_trials_count_their_epochs_from_the_next_finished_trial() -> None:
    assert ctq.trial_epochs(_failed(3)) == 3.0
    assert ctq.trial_epochs(_failed(3, epochs=2.5)) == 2.5
    finished = [_complete(0.5, 4.0, 3.0), _pruned(1, 1.0), _complete(0.6, 4.0, 3.0, x=0.7)]
    for number, trial in zip((0, 2, 5), finished):
        trial.number = number
    failed = [_failed(2), _failed(3, epochs=1.0), _failed(4)]
    for number, trial in zip((1, 3, 6), failed):  # trial 6 fails after the last finished one
        trial.number = number
    record = ctq.study_record(finished, "tpe", 0, 3, lambda t: [0.5], step=3, failed=failed)
    assert record["epochs_cumulative"] == [4.0, 7.0, 12.0]
    assert record["seconds_cumulative"] == pytest.approx([3.0, 6.0, 11.0])
    assert record["failed"] == 2 and record["failed_epochs"] == 3.0
    assert record["trials"] == 3 and record["points"]["3"]["epochs"] == 12.0


def test_score_one_counts_a_failed_trial_of_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, study = _seed0_study(tmp_path, "tpe")
    study.add_trial(_complete(0.5, 4.0, 3.0, x=0.1))
    study.add_trial(create_trial(state=TrialState.FAIL, intermediate_values={1: 0.1, 2: 0.2}))
    study.add_trial(_complete(0.6, 4.0, 3.0, x=0.2))
    record = _score_without_training(monkeypatch, tmp_path, base, "tpe", 2)
    assert record["trials"] == 2 and record["failed"] == 1
    assert record["epochs_cumulative"] == [4.0, 10.0]


def _study(method: str, seed: int, costs: list[float], pruned: int, library: str) -> dict:
    """A record with per-trial epochs ``costs``, points every 2 trials and at the end."""
    total = ctq.cumulative(costs)
    points = {b: (total[b - 1], float(b), 0.5 + 0.01 * b) for b in ctq.budget_points(6, 6, 2)}
    record = _record(method, seed, points)
    record.update(epochs_cumulative=total, pruned=pruned, library=library, trials=len(costs))
    return record


def _studies() -> list[dict[str, Any]]:
    old = "/work/main at 1111111"
    return [
        _study("biotune", 0, [4.0] * 6, 0, old),
        _study("biotune", 1, [4.0, 4.0, 4.0, 0.0, 4.0, 4.0], 0, "2222222"),
        _study("biotune-plus", 0, [4.0] * 6, 0, "2222222"),
        _study("biotune-plus", 1, [4.0, 4.0, 4.0, 4.0, 4.0, 0.0], 0, "2222222"),
        _study("biotune-plus+sh", 0, [1.0, 2.0, 1.0, 4.0, 1.0, 1.0], 3, "2222222"),
        _study("biotune-plus+sh", 1, [4.0, 1.0, 0.0, 2.0, 4.0, 1.0], 2, "2222222"),
    ]


def test_the_caveat_is_computed_from_the_records() -> None:
    records = _studies()
    level = ctq.level_of([r for r in records if r["method"] == "biotune"])
    assert level["epochs"] == 22.0  # medians of 24 and 20: the 10x saving leaves 2.2 epochs
    text = ctq.caveat(records, level)
    assert text.startswith("**Caveat.** Trials spend at most 4 epochs each, and every trial ")
    assert "spends at least 1 (1 of the 12 trials of `biotune-plus + SH` spend none)" in text
    assert "first scored point (2 trials) already costs about 4 epochs" in text
    assert "(median over its 2 studies; 3-5)" in text
    assert "a 10x saving (2 of the paper preset's 22 epochs) would have to come before" in text
    assert "from 22 (`biotune-plus`) to about 11 (`biotune-plus + SH`; 10-12 per study)" in text
    assert "pruning 2-3 of 6 trials per study." in text
    cheap = [dict(r) for r in records]
    cheap[4]["points"]["2"]["epochs"] = 2.0  # seed 0's first point fits in the 10x saving
    text = ctq.caveat(cheap, level)
    assert "only 1 of 2 studies has it within 2 epochs (seed 0: 2 epochs, test 0.5200" in text
    assert ctq.caveat([r for r in records if r["method"] == "biotune"], level) is None


def test_mixed_library_versions_mark_their_rows() -> None:
    records = [{**r, "library": ctq.library_label(r["library"])} for r in _studies()]
    note, marked = ctq.version_note(records)
    assert marked == ["biotune"]
    assert "rows marked † have studies on a version other than the most common one" in note
    assert (
        "- `2222222` (5 studies): `biotune` seed 1; `biotune-plus + SH` seeds 0, 1; "
        "`biotune-plus` seeds 0, 1\n"
    ) in note
    assert "- `1111111` (1 study): `biotune` seed 0" in note
    payload = ctq.report_payload(records, ["biotune", "biotune-plus"], [0, 1])
    assert [row[0] for row in payload["table"][1]] == ["biotune †", "biotune-plus"]
    assert [row[0] for row in payload["equal_table"][1]] == ["biotune †", "biotune-plus"]
    same = [r for r in records if r["library"] == "2222222"]
    assert ctq.version_note(same) == (
        "All 5 studies ran on the same library version, `2222222`.",
        [],
    )


def test_the_failed_note_says_which_records_leave_failed_trials_out() -> None:
    records = _studies()
    assert ctq.failed_note(records).startswith("**All 6 records were scored before failed")
    records[0].update(failed=2, failed_epochs=3.0)
    note = ctq.failed_note(records)
    assert note.startswith("The 1 records scored with failed trials counted hold 2 failed")
    assert "**5 of 6 records were scored before failed trials were counted**" in note


def test_report_renders_an_old_json_clean_and_twice_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for record in _studies():
        record["study"] = f"{record['method']}-{record['seed']}"
        ctq.store_record(record, tmp_path / "records.json")
    monkeypatch.setattr(ctq.load_records, "__defaults__", (tmp_path / "records.json",))
    methods = "biotune,biotune-plus+sh,biotune-plus"
    old = {"methods": methods.split(","), "seeds": [0, 1], "commands": [OLD_RUN]}
    (tmp_path / "out.json").write_text(ctq.json.dumps(old))
    args = ctq._parser().parse_args(["report", "--methods", methods, "--seeds", "0,1"])
    ctq.report(args, tmp_path / "out")
    first = (tmp_path / "out.md").read_bytes(), (tmp_path / "out.json").read_bytes()
    text = first[0].decode()
    # No machine path, no `cd` step, no `nice` (a commit hash such as 445d4cd is no `cd`).
    assert "/work" not in text and not re.search(r"(^|[\s`;&(])cd ", text) and "nice" not in text
    assert "\n    .venv/bin/python benchmarks/compute_to_quality.py --threads 1 run " in text
    assert "\n**Caveat.** Trials spend at most 4 epochs each" in text
    assert "benchmarks/table_race.py" in text and "small live check" in text
    assert "| biotune † |" in text and "`1111111` (1 study)" in text
    assert "/work" not in first[1].decode()
    ctq.report(args, tmp_path / "out")
    assert ((tmp_path / "out.md").read_bytes(), (tmp_path / "out.json").read_bytes()) == first
