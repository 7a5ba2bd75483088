"""Crashes, many workers and moving storages, through the command a user runs.

- A worker killed with SIGKILL in the middle of a trial, several times in one study: the same
  command, run again, finishes the study; every killed trial is retried with its genes and its
  place in the search.
- ``run --workers 4`` on SQLite, a journal file and a real PostgreSQL server: nothing lost,
  nothing twice, no error, each generation overshooting by fewer trials than there are workers.
- A study moved from SQLite to PostgreSQL with ``optuna.copy_study`` goes on where it stopped.
"""

from __future__ import annotations

from collections import Counter
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState
import pytest

from biotune_optuna.samplers._keys import LINEAGE_KEY
from biotune_optuna.studies._storage import open_storage
from tests.benchmarks import load_benchmark
from tests.reliability._user import cli
from tests.reliability._user import load
from tests.reliability._user import REPO
from tests.reliability._user import start_workers


# The trials of benchmarks/soak.py (its "slow-cnn" objective).
SLOW_SPEC = """
[study]
name = "crashy"
storage = "{storage}"
heartbeat_interval = 1
grace_period = 10
[sampler]
population_size = 4
n_elites = 1
[budget]
generations = 3""" + load_benchmark("soak").OBJECTIVES["slow-cnn"]
# 4 + 3 x (4 + 1) = 19 trials (one elite, two variants, three offspring per generation), a
# second or two each (the head waits 0.2 s per batch).
SLOW_BUDGET = 19

SYNTHETIC_SPEC = """
[study]
name = "shared"
storage = "{storage}"
[budget]
trials = {trials}
[objective]
kind = "synthetic"
"""


def kill_in_a_trial(
    command: list[str], storage: str, name: str, *, after_complete: int
) -> optuna.trial.FrozenTrial:
    """Start ``command``, wait for ``after_complete`` COMPLETE trials and a running trial that
    has its genes, kill the process with SIGKILL in the middle of that trial."""
    opened = open_storage(storage)
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def look() -> tuple[int, optuna.trial.FrozenTrial | None]:
        try:
            study_id = opened.get_study_id_from_name(name)
        except KeyError:
            return 0, None  # not created yet
        trials = opened.get_all_trials(study_id, deepcopy=False)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING
            and "freeze_threshold" in t.params
            and LINEAGE_KEY in t.system_attrs
        ]
        return complete, running[-1] if running else None

    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            complete, victim = look()
            if complete >= after_complete and victim is not None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                state = opened.get_trial(victim._trial_id).state
                assert state == TrialState.RUNNING, f"trial {victim.number} ended before the kill"
                return victim
            time.sleep(0.02)
        pytest.fail("no trial to kill within 3 minutes")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_sigkill_in_the_middle_of_trials_then_the_same_command_finishes(
    tmp_path: Path, new_storage_url: str
) -> None:
    storage = new_storage_url
    spec = tmp_path / "crashy.toml"
    spec.write_text(SLOW_SPEC.format(storage=storage))
    command = cli("run", str(spec), "-q")
    killed = [kill_in_a_trial(command, storage, "crashy", after_complete=n) for n in (2, 7, 12)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    study = load(storage, "crashy")
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    # The requested number of COMPLETE trials; the killed ones FAILED, nothing else left over.
    assert states[TrialState.COMPLETE] == SLOW_BUDGET, states
    assert states[TrialState.FAIL] == len(killed) and len(trials) == SLOW_BUDGET + len(killed)
    for victim in killed:
        dead = trials[victim.number]
        assert dead.state == TrialState.FAIL
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
        assert len(retries) == 1, f"trial {victim.number} retried {len(retries)} times"
        retry = retries[0]
        assert retry.state == TrialState.COMPLETE
        # The retry carries the original genes and its place in the search.
        assert retry.params == victim.params
        assert retry.system_attrs[LINEAGE_KEY] == victim.system_attrs[LINEAGE_KEY]
        assert retry.user_attrs["generation"] == victim.user_attrs["generation"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    generations = sorted({t.system_attrs[LINEAGE_KEY]["generation"] for t in complete})
    assert generations == [0, 1, 2, 3]  # none skipped
    places = [
        (t.system_attrs[LINEAGE_KEY]["generation"], t.system_attrs[LINEAGE_KEY]["slot"])
        for t in complete
        if t.system_attrs[LINEAGE_KEY]["slot"] is not None
    ]
    assert len(places) == len(set(places)), "a slot of a generation was evaluated twice"
    sizes = Counter(g for g, _ in places)
    # The command restarted at once, inside the grace period: it knew its dead trial (its
    # process on this host is gone), retried it first in its own slot, and every generation
    # has exactly the schedule's size; no retry ran after its generation closed.
    assert [sizes[g] for g in generations] == [4, 5, 5, 5], sizes
    for victim in killed:
        (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
        assert retry.number == victim.number + 1, "the retry did not run first"


_SLOW_SYNTHETIC = """
import sys, time
import optuna
from biotune_optuna import BioTuneSampler
from biotune_optuna.studies import run_to_budget
from biotune_optuna.studies._storage import open_storage
from tests.reliability._user import cli
from tests.reliability._user import load
from tests.reliability._user import REPO
from biotune_optuna.studies._synthetic import SyntheticFineTuning

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    storage=open_storage(sys.argv[1], heartbeat_interval=1),
    study_name="crashy",
    sampler=BioTuneSampler(population_size=4, n_elites=1, seed=0),
    direction="maximize",
    load_if_exists=True,
)
landscape = SyntheticFineTuning(seed=0)


def objective(trial):
    value = landscape(trial)
    time.sleep(0.3)  # a trial long enough to be killed in
    return value


run_to_budget(study, objective, int(sys.argv[2]))
"""


@pytest.mark.slow
def test_a_killed_study_proposes_the_genotypes_of_an_uninterrupted_one(
    tmp_path: Path, new_storage_url: str
) -> None:
    # Random streams were keyed by trial number, which a dead trial and its retry shift: 50 of
    # 62 genotypes differed from an uninterrupted run after one kill. They follow the trial's
    # place in the search now.
    command = [sys.executable, "-c", _SLOW_SYNTHETIC, new_storage_url, str(SLOW_BUDGET)]
    killed = [
        kill_in_a_trial(command, new_storage_url, "crashy", after_complete=n) for n in (3, 8, 13)
    ]
    assert subprocess.run(command, cwd=REPO, timeout=300).returncode == 0
    straight = f"sqlite:///{tmp_path / 'straight.db'}"
    command[3] = straight
    assert subprocess.run(command, cwd=REPO, timeout=300).returncode == 0
    resumed = load(new_storage_url, "crashy").trials
    assert sum(t.state == TrialState.FAIL for t in resumed) == len(killed)
    expected = _by_place(load(straight, "crashy").trials)
    assert len(expected) == SLOW_BUDGET and _by_place(resumed) == expected


def _by_place(trials: list[optuna.trial.FrozenTrial]) -> dict[tuple[int, int], tuple]:
    """Params and value of each COMPLETE trial by its generation and slot."""
    return {
        (t.system_attrs[LINEAGE_KEY]["generation"], t.system_attrs[LINEAGE_KEY]["slot"]): (
            t.params,
            t.value,
        )
        for t in trials
        if t.state == TrialState.COMPLETE
    }


def check_shared_study(study: optuna.Study, budget: int, workers: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert all(t.state == TrialState.COMPLETE for t in trials), Counter(t.state for t in trials)
    assert [t.number for t in trials] == list(range(len(trials)))  # none lost
    # Each worker stops when the study holds its budget; trials already running finish.
    assert budget <= len(trials) <= budget + workers - 1
    by_generation: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        by_generation.setdefault(t.system_attrs[LINEAGE_KEY]["generation"], []).append(t)
    last = max(by_generation)
    assert sorted(by_generation) == list(range(last + 1))
    for generation, members in by_generation.items():
        genotypes = {tuple(sorted(t.params.items())) for t in members}
        assert len(genotypes) == len(members), f"a genotype twice in generation {generation}"
        nominal = 10 if generation == 0 else 13
        assert len(members) <= nominal + workers, (generation, len(members))
        if generation < last:
            assert len(members) >= nominal, (generation, len(members))
        if 0 < generation < last:
            # The schedule's roles hold under parallel workers: two exploitation variants for
            # each of the three elites, then offspring; trials beyond the schedule breed too.
            # An exploitation slot that two workers contest and both give up is bred instead
            # (the documented rule; benchmarks/results/soak.md: 41 of 42 on a journal, 8
            # workers), so at most one may be missing from a generation.
            roles = {t.system_attrs[LINEAGE_KEY]["slot"]: t.user_attrs["role"] for t in members}
            exploit = [slot for slot in range(6) if slot in roles]
            assert [roles[slot] for slot in exploit] == ["exploit"] * len(exploit), roles
            assert len(exploit) >= 5, roles
            assert {roles[slot] for slot in roles if slot >= 6} <= {"offspring", "immigrant"}


@pytest.mark.slow
def test_run_with_four_workers_shares_one_study(tmp_path: Path, new_storage_url: str) -> None:
    storage = new_storage_url
    spec = tmp_path / "shared.toml"
    spec.write_text(SYNTHETIC_SPEC.format(storage=storage, trials=80))
    done = subprocess.run(
        cli("run", str(spec), "--workers", "4"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "on 4 workers" in done.stdout and "4 workers (CPU" in done.stdout
    lines = [line for line in done.stdout.splitlines() if line.startswith("[worker ")]
    per_worker = Counter(line.split("]")[0] for line in lines if " value " in line)
    assert sorted(per_worker) == [f"[worker {k}" for k in range(4)], per_worker
    assert "Traceback" not in done.stdout + done.stderr and "error" not in done.stderr.lower()
    assert "recommended trial #" in done.stdout
    check_shared_study(load(storage, "shared"), budget=80, workers=4)


@pytest.mark.postgres
def test_a_study_moved_from_sqlite_to_postgresql_goes_on(
    tmp_path: Path, postgres_url: str
) -> None:
    from biotune_optuna.cli import main

    sqlite = f"sqlite:///{tmp_path / 'laptop.db'}"
    spec = tmp_path / "laptop.toml"
    spec.write_text(SYNTHETIC_SPEC.format(storage=sqlite, trials=30))
    assert main(["run", str(spec), "-q"]) == 0
    optuna.copy_study(
        from_study_name="shared",
        from_storage=sqlite,
        to_storage=postgres_url,
    )
    # The spec now points at the server: the study continues from trial 30 to 60...
    spec.write_text(SYNTHETIC_SPEC.format(storage=postgres_url, trials=60))
    assert main(["run", str(spec), "-q"]) == 0
    moved = load(postgres_url, "shared")
    # ... exactly as if it had stayed on the laptop all along: the sampler's state (settings,
    # lineages, stored populations) moved with the study.
    spec.write_text(SYNTHETIC_SPEC.format(storage=sqlite, trials=60))
    assert main(["run", str(spec), "-q"]) == 0
    stayed = load(sqlite, "shared")
    assert len(moved.trials) == len(stayed.trials) == 60
    assert [t.params for t in moved.trials] == [t.params for t in stayed.trials]
    assert [t.system_attrs[LINEAGE_KEY] for t in moved.trials] == [
        t.system_attrs[LINEAGE_KEY] for t in stayed.trials
    ]
    assert moved.user_attrs["sampler"] == "biotune"


def test_worker_environments_pin_gpus_or_split_cores() -> None:
    from biotune_optuna.studies._workers import visible_gpus
    from biotune_optuna.studies._workers import worker_environments

    assert worker_environments(3, gpus=["0", "1"], environ={}) == [
        {"CUDA_VISIBLE_DEVICES": "0"},
        {"CUDA_VISIBLE_DEVICES": "1"},
        {"CUDA_VISIBLE_DEVICES": "0"},
    ]
    assert (
        worker_environments(4, gpus=[], cpu_count=16, environ={}) == [{"OMP_NUM_THREADS": "4"}] * 4
    )
    assert (
        worker_environments(4, gpus=[], cpu_count=2, environ={}) == [{"OMP_NUM_THREADS": "1"}] * 4
    )
    assert worker_environments(2, gpus=[], environ={"OMP_NUM_THREADS": "3"}) == [{}, {}]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,GPU-ab12,-1,3"}) == ["2", "GPU-ab12"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_workers_auto_is_one_per_visible_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With two GPUs visible, ``--workers auto`` starts two workers, each on its own GPU."""
    from biotune_optuna import cli

    started: list[tuple[list[str], dict[str, str]]] = []

    def fake_run_workers(commands, environments, *, say):  # type: ignore[no-untyped-def]
        started.extend(zip(commands, environments))
        return [0] * len(commands)

    monkeypatch.setattr("biotune_optuna.cli._workers.run_workers", fake_run_workers)
    monkeypatch.setattr("biotune_optuna.cli._workers.gpus_for", lambda spec: ["0", "1"])
    spec = tmp_path / "shared.toml"
    spec.write_text(SYNTHETIC_SPEC.format(storage=f"sqlite:///{tmp_path / 's.db'}", trials=5))
    assert cli.main(["run", str(spec), "--workers", "auto", "--seed", "3"]) == 0
    assert [env for _, env in started] == [
        {"CUDA_VISIBLE_DEVICES": "0"},
        {"CUDA_VISIBLE_DEVICES": "1"},
    ]
    for k, (command, _) in enumerate(started):
        assert command[:4] == [sys.executable, "-m", "biotune_optuna.cli", "run"]
        assert command[command.index("--worker-id") + 1] == str(k)
        assert command[command.index("--seed") + 1] == "3"
    assert "worker 0: GPU 0, worker 1: GPU 1" in capsys.readouterr().out


def test_a_worker_that_fails_makes_the_run_fail_and_keeps_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from biotune_optuna import cli

    monkeypatch.setattr(
        "biotune_optuna.cli._workers.run_workers",
        lambda commands, environments, *, say: [0, 1],
    )
    spec = tmp_path / "shared.toml"
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec.write_text(SYNTHETIC_SPEC.format(storage=storage, trials=5))
    assert cli.main(["run", str(spec), "--workers", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "worker 1 exited with 1" in err[0]
    assert load(storage, "shared").user_attrs["sampler"] == "biotune"  # created, kept


def test_ctrl_c_in_a_worker_run_leaves_a_resumable_study(tmp_path: Path) -> None:
    spec = tmp_path / "shared.toml"
    storage = f"sqlite:///{tmp_path / 's.db'}"
    spec.write_text(SYNTHETIC_SPEC.format(storage=storage, trials=100000))
    process = start_workers(spec)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            if len(load(storage, "shared").trials) >= 20:
                break
        except Exception:
            continue
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, out + err
    assert "run the same command to resume" in err
    trials = load(storage, "shared").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    spec.write_text(SYNTHETIC_SPEC.format(storage=storage, trials=len(trials) + 5))
    done = subprocess.run(cli("run", str(spec), "-q"), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(load(storage, "shared").get_trials(states=(TrialState.COMPLETE,))) >= len(
        trials
    ) + 5 - len([t for t in trials if t.state != TrialState.COMPLETE])
