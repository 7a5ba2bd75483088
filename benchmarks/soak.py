"""Soak: ``run --workers N`` on each storage while workers are killed, then the same command again.

For each storage (SQLite, journal file, PostgreSQL when ``--postgres-url`` is given) and each
worker count, a BioTune study (the paper's N = 10, E = 3, ``--trials`` finished trials,
heartbeats every second and the shortest accepted grace period of 10 s; by default trials of a
few seconds on a tiny CNN, see :data:`OBJECTIVES`) runs as a user runs it:
``biotune-optuna run SPEC --workers N``. Every
one to three seconds a random worker is killed with SIGKILL, ``--kills`` times; then the same
command runs again, as often as it takes (at most three times), until it exits 0. The table
counts, per study:

* **lost**: trials left RUNNING or WAITING at the end (nothing ever finishes them);
* **slot twice**: COMPLETE trials that share a generation's slot with another (two workers
  that took one place in the search);
* **genotype seen before**: COMPLETE trials whose genotype an earlier COMPLETE trial had (the
  paper preset's exploitation clips a gene at its bound and re-proposes its elite: issue 14's
  duplicates, not a parallel fault);
* **killed / retried / wasted**: trials of killed workers, their retries, and retries that no
  generation's closing ranked although one closed after they finished (their result was lost
  to the search);
* **false deaths**: live trials taken for dead (FAILED although their process was not
  killed);
* **crashed workers**: worker exits other than 0 and the SIGKILLs sent, and tracebacks;
* **exploit**: exploitation trials in closed generations against the schedule's 2 E;
* **generations**: closed generations against the budget's, and the largest overshoot;
* **leaked**: occurrences of the URL's password in the output and everything stored.

Run from the repository root; PostgreSQL rows need a server (a URL with a password checks
that it never leaks)::

    .venv/bin/python benchmarks/soak.py --workers 8,16 --kills 4
    .venv/bin/python benchmarks/soak.py --postgres-url postgresql://me:secret@127.0.0.1/db

Results go to stdout (markdown) and to ``soak.md`` and ``soak.json`` in ``--output-dir``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
import datetime
import json
import os
from pathlib import Path
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import optuna
from optuna.trial import TrialState


REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "benchmarks" / "results"
POPULATION, ELITES = 10, 3
LINEAGE_KEY = "biotune:lineage"
WORKER_KEY = "biotune:worker"
CONSIDERED = "biotune:considered:"

SPEC = """
[study]
name = "{name}"
storage = "{storage}"
heartbeat_interval = 1
grace_period = 10
[budget]
trials = {trials}
"""
#: The objectives: trials of a few seconds that barely use the CPU (a tiny CNN whose head
#: waits 0.2 s per batch, from the tests), or the synthetic landscape (milliseconds).
OBJECTIVES = {
    "slow-cnn": """
[model]
source = "tests.finetune.conftest:slow_tiny_cnn"
head = "3"
[data]
max_train_images = 256
max_val_images = 64
[protocol]
image_size = 16
max_epochs = 2
batch_size = 32
""",
    "synthetic": """
[objective]
kind = "synthetic"
""",
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="8,16", help="comma-separated worker counts")
    parser.add_argument("--storages", default="sqlite,journal,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("BIOTUNE_TEST_POSTGRES_URL"))
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs per study")
    parser.add_argument("--trials", type=int, default=140, help="budget of each study")
    parser.add_argument("--seconds", type=float, default=600, help="time limit per study")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kills")
    parser.add_argument("--objective", choices=tuple(OBJECTIVES), default="slow-cnn")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--keep", type=Path, help="keep the specs and study files here")
    return parser.parse_args(argv)


def cli(spec: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "biotune_optuna.cli",
        "run",
        str(spec),
        "--workers",
        str(workers),
    ]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def finished(url: str, name: str) -> int:
    from biotune_optuna.studies import open_storage

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url, create=False))
    except Exception:  # not created yet
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_with_kills(
    spec: Path, workers: int, kills: int, seconds: float, rng: random.Random, where: tuple
) -> tuple[list[str], set[int], float]:
    """The command with ``kills`` SIGKILLs of random workers, then reruns until it exits 0.

    Returns the outputs of every run, the PIDs killed and the wall time.
    """
    start = time.monotonic()
    deadline = start + seconds
    outputs: list[str] = []
    killed: set[int] = set()
    with tempfile.TemporaryFile("w+") as out:
        parent = subprocess.Popen(
            cli(spec, workers), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        while parent.poll() is None and finished(*where) < POPULATION:
            time.sleep(0.5)  # the workers start: kill them in trials, not in imports
        while len(killed) < kills and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(rng.uniform(1.0, 3.0))
            alive = [pid for pid in children(parent.pid) if pid not in killed]
            if alive:
                victim = rng.choice(alive)
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
        try:
            parent.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            parent.kill()
        out.seek(0)
        outputs.append(out.read())
    for _ in range(3):
        if time.monotonic() > deadline:
            break
        done = subprocess.run(
            cli(spec, workers),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
        outputs.append(done.stdout + done.stderr)
        if done.returncode == 0:
            break
    return outputs, killed, time.monotonic() - start


def generation_of(trial: optuna.trial.FrozenTrial) -> int | None:
    lineage = trial.system_attrs.get(LINEAGE_KEY)
    return None if lineage is None else int(lineage["generation"])


def analyse(study: optuna.Study, killed: set[int], outputs: list[str], password: str | None):
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    genotypes: set[tuple] = set()
    places: set[tuple] = set()
    slot_twice = repeated = 0
    for t in complete:
        genotype = tuple(sorted(t.params.items()))
        lineage = t.system_attrs.get(LINEAGE_KEY, {})
        place = (lineage.get("generation"), lineage.get("slot"))
        slot_twice += place[1] is not None and place in places
        repeated += genotype in genotypes
        genotypes.add(genotype)
        places.add(place)
    by_generation: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        g = generation_of(t)
        if g is not None:
            by_generation.setdefault(g, []).append(t)
    last = max(by_generation, default=0)
    first_start = {
        g: min(t.datetime_start for t in members if t.datetime_start is not None)
        for g, members in by_generation.items()
    }
    dead = [t for t in trials if t.state == TrialState.FAIL]
    of_killed = [t for t in dead if t.system_attrs.get(WORKER_KEY, {}).get("pid") in killed]
    retries = [t for t in trials if "failed_trial" in t.system_attrs]
    # A retry is wasted if no generation's closing ranked it although one closed after it
    # finished (a retry finishing in the last, open generation may still join its closing).
    attrs = study._storage.get_study_system_attrs(study._study_id)
    considered = {
        n for key, numbers in attrs.items() if key.startswith(CONSIDERED) for n in numbers
    }
    last_closing = first_start.get(last)
    wasted = sum(
        1
        for retry in retries
        if retry.state == TrialState.COMPLETE
        and retry.number not in considered
        and last_closing is not None
        and retry.datetime_complete is not None
        and retry.datetime_complete < last_closing
    )
    exits = [
        int(code)
        for text in outputs
        for code in re.findall(r"worker \d+ exited with (-?\d+)", text)
    ]
    crashed = sum(code not in (0, -signal.SIGKILL) for code in exits)
    crashed += sum(text.count("Traceback") for text in outputs)
    closed = [g for g in by_generation if 0 < g < last]
    exploit = sum(
        t.user_attrs.get("role") == "exploit" and t.state == TrialState.COMPLETE
        for g in closed
        for t in by_generation[g]
    )
    overshoot = max(
        (
            len(by_generation[g]) - (POPULATION if g == 0 else POPULATION + ELITES)
            for g in by_generation
            if g < last
        ),
        default=0,
    )
    leaked = None
    if password:
        stored = json.dumps(
            [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
            + [[t.user_attrs, t.system_attrs, t.params] for t in trials],
            default=str,
        )
        leaked = sum(text.count(password) for text in [*outputs, stored])
    return {
        "trials": len(trials),
        "complete": states[TrialState.COMPLETE],
        "lost": states[TrialState.RUNNING] + states[TrialState.WAITING],
        "slot_twice": slot_twice,
        "repeated_genotypes": repeated,
        "killed_trials": len(of_killed),
        "retries": len(retries),
        "wasted_retries": wasted,
        "false_deaths": len(dead) - len(of_killed),
        "crashed_workers": crashed,
        "taken_for_dead_drops": sum(text.count("was taken for dead") for text in outputs),
        "exploit": exploit,
        "exploit_due": 2 * ELITES * len(closed),
        "generations": sum(
            len(members) >= POPULATION + ELITES for g, members in by_generation.items() if g
        ),
        "generations_budgeted": (study_budget(study) - POPULATION) // (POPULATION + ELITES),
        "overshoot": overshoot,
        "leaked": leaked,
    }


def study_budget(study: optuna.Study) -> int:
    return int(str(study.user_attrs.get("budget", "0")).split()[0])


def soak(kind: str, url: str, workers: int, args: argparse.Namespace, directory: Path):
    name = f"soak-{kind}-{workers}-{args.seed}"
    spec = directory / f"{name}.toml"
    spec.write_text(
        SPEC.format(name=name, storage=url, trials=args.trials) + OBJECTIVES[args.objective]
    )
    rng = random.Random(f"{args.seed}-{kind}-{workers}")
    log(f"{kind}, {workers} workers, {args.kills} kills ...")
    outputs, killed, wall = run_with_kills(
        spec, workers, args.kills, args.seconds, rng, (url, name)
    )
    from biotune_optuna.studies import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(url))
    password = None
    if kind == "postgresql":
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    row = {"storage": kind, "workers": workers, "kills": len(killed), "seconds": round(wall, 1)}
    row.update(analyse(study, killed, outputs, password))
    log(json.dumps(row))
    return row


COLUMNS = [
    ("storage", "storage"),
    ("workers", "workers"),
    ("kills", "SIGKILLs"),
    ("complete", "complete"),
    ("lost", "lost"),
    ("slot_twice", "slot twice"),
    ("repeated_genotypes", "genotype seen before"),
    ("killed_trials", "killed trials"),
    ("retries", "retries"),
    ("wasted_retries", "wasted retries"),
    ("false_deaths", "live taken for dead"),
    ("crashed_workers", "crashed workers"),
    ("exploit", "exploit / due"),
    ("generations", "generations / budget"),
    ("overshoot", "max overshoot"),
    ("leaked", "leaked secrets"),
    ("seconds", "seconds"),
]


def cell(row: dict[str, Any], key: str) -> str:
    if key == "exploit":
        return f"{row['exploit']} / {row['exploit_due']}"
    if key == "generations":
        return f"{row['generations']} / {row['generations_budgeted']}"
    value = row[key]
    return "n/a" if value is None else str(value)


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> str:
    lines = [
        "# Soak: workers killed on every storage",
        "",
        f"Command: `{env['command']}`. {env['when']}, {env['machine']}.",
        "",
        f"BioTune studies (N={POPULATION}, E={ELITES}) on the {args.objective} objective, "
        f"{args.trials} trials each, "
        "heartbeats every 1 s, grace period 10 s; "
        f"{args.kills} SIGKILLs of random workers 1-3 s apart, then the same command until it "
        "exits 0. Targets: 0 lost, no slot twice, 0 wasted retries, 0 live trials taken for "
        "dead, 0 crashed workers, 0 leaked secrets.",
        "",
        "Offspring that two workers placed in one slot have two different genotypes (their "
        "random streams follow each trial's place in the search) and make the generation one "
        "trial longer; an elite's or exploitation's slot taken twice is left to one of them "
        "(when both see the other, both breed instead and the exploitation is missed: exploit "
        "below due). A generation overshoots its schedule by fewer trials than there are "
        "workers, so fewer generations than budgeted close.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cell(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = {
        "command": "python benchmarks/soak.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, optuna {optuna.__version__}",
    }
    env["command"] = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", env["command"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="biotune-soak-") as tmp:
        directory = Path(tmp) if args.keep is None else args.keep
        directory.mkdir(parents=True, exist_ok=True)
        for kind in [k.strip() for k in args.storages.split(",") if k.strip()]:
            if kind == "postgresql" and not args.postgres_url:
                log("postgresql: no --postgres-url (or BIOTUNE_TEST_POSTGRES_URL); skipped")
                continue
            for workers in [int(w) for w in args.workers.split(",")]:
                url = {
                    "sqlite": f"sqlite:///{directory / f'soak-{workers}.db'}",
                    "journal": f"journal:///{directory / f'soak-{workers}.log'}",
                    "postgresql": args.postgres_url,
                }[kind]
                rows.append(soak(kind, url, workers, args, directory))
    text = markdown(rows, args, env)
    print(text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "soak.md").write_text(text, encoding="utf-8")
    payload = {"environment": env, "rows": rows}
    (args.output_dir / "soak.json").write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {args.output_dir / 'soak.md'} and soak.json")


if __name__ == "__main__":
    main()
