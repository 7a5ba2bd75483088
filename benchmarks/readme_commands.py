"""Time the README's first command, as a new user runs it: install, then the demo.

Clones this checkout's HEAD into a temporary directory (a fresh clone: no ``.venv``, no study),
takes the command under ``<!-- main-command -->`` in README.md exactly as written, splits it at
its ``&&`` into steps and times each: the install (``python3 -m venv`` + ``pip install``) and the
demo (``biotune-optuna run studies/demo.toml``), then runs the demo command once more (a resume:
the budget is met, nothing trains). Per-trial seconds come from the demo's study. The README's
figures are the ones this writes to ``benchmarks/results/readme_commands.md`` (and ``.json``),
with the machine they were measured on.

pip reads the machine's package index as configured (``pip config list``); this machine's is a
local mirror, so its install time is a lower bound for one that downloads from PyPI. Run it on
an otherwise idle machine:

    python3 benchmarks/readme_commands.py            # ~5 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import platform
import re
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def readme_command(readme: str, marker: str = "main-command") -> str:
    """The shell command in the ```bash block right after ``<!-- marker -->``."""
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    if match is None:
        raise SystemExit(f"README.md: no ```bash block after <!-- {marker} -->")
    return match.group(1).strip()


def command_steps(command: str) -> list[tuple[str, str]]:
    """The command's ``&&``-separated steps, each as ``(phase, step)``: ``install`` for those
    before the first ``biotune-optuna`` call, ``demo`` from there on."""
    steps = [step.strip() for step in command.split("&&") if step.strip()]
    phases, phase = [], "install"
    for step in steps:
        if "biotune-optuna" in shlex.split(step)[0]:
            phase = "demo"
        phases.append((phase, step))
    return phases


def trial_seconds(database: Path) -> list[float]:
    """Seconds from start to completion of each COMPLETE trial in an Optuna SQLite file."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT datetime_start, datetime_complete FROM trials WHERE state = 'COMPLETE'"
        ).fetchall()
    return [_seconds(start, end) for start, end in rows]


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _run(step: str, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step], cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise SystemExit(f"step failed ({done.returncode}): {step}\n{tail}")
    return seconds, done.stdout


def machine() -> dict[str, object]:
    """The machine the times belong to."""
    model = "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def measure(clone: Path) -> dict[str, object]:
    """Clone HEAD into ``clone``, run the README's command step by step, time each."""
    where = machine()  # before: the load average of the idle machine
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    command = readme_command((clone / "README.md").read_text())
    steps = []
    for phase, step in command_steps(command):
        seconds, output = _run(step, clone)
        steps.append({"phase": phase, "step": step, "seconds": round(seconds, 1)})
        print(f"{seconds:7.1f} s  [{phase}] {step}", flush=True)
    demo = [s for s in steps if s["phase"] == "demo"]
    resume, _ = _run(demo[-1]["step"], clone)
    print(f"{resume:7.1f} s  [resume] {demo[-1]['step']}", flush=True)
    trials = sorted(trial_seconds(clone / "studies" / "demo.db"))
    return {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip(),
        "command": command,
        "steps": steps,
        "install_s": round(sum(s["seconds"] for s in steps if s["phase"] == "install"), 1),
        "demo_s": round(sum(s["seconds"] for s in demo), 1),
        "resume_s": round(resume, 1),
        "trials": len(trials),
        "trial_s": {
            "median": round(trials[len(trials) // 2], 1) if trials else None,
            "max": round(trials[-1], 1) if trials else None,
            "total": round(sum(trials), 1),
        },
        "last_output": output.strip().splitlines()[-12:],
        "machine": where,
    }


def write(result: dict[str, object], out: Path) -> None:
    """The table, as markdown, and every number as JSON."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "readme_commands.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    t = result["trial_s"]
    rows = "\n".join(
        f"| {s['phase']} | `{s['step']}` | {s['seconds']:.1f} |" for s in result["steps"]
    )
    text = f"""# The README's first command, timed

`python3 benchmarks/readme_commands.py` on a fresh clone of `{result["commit"]}`: the command
under `<!-- main-command -->` in README.md, step by step.

Machine: {m["cpu"]}, {m["cores"]} cores, load {m["load_average_1min_at_start"]:.2f} at start,
Python {m["python"]}. pip used this machine's package index (a local mirror: the install is a
lower bound for one that downloads from PyPI).

| phase | step | seconds |
|---|---|---:|
{rows}
| resume | the demo command again (budget met: nothing trains) | {result["resume_s"]:.1f} |

Install {result["install_s"]:.0f} s, demo {result["demo_s"]:.0f} s: {result["trials"]} trials, \
median {t["median"]} s, longest {t["max"]} s, {t["total"]:.0f} s in trials (the rest: starting
Python, loading torch, the weights and the data, the summary).
"""
    (out / "readme_commands.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="readme-commands-") as tmp:
        result = measure(Path(tmp) / "clone")
    write(result, args.out)
    print(f"wrote {args.out / 'readme_commands.md'}")


if __name__ == "__main__":
    sys.exit(main())
