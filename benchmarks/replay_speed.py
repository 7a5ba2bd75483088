"""How long a replayed 140-trial study takes through ``biotune-optuna run``, per storage.

The study is ``studies/table.toml`` (the paper preset, 10 generations = 140 trials, replaying
``benchmarks/tables/textures.json.gz``), run as a user runs it: a fresh process of the
installed ``biotune-optuna`` command on a new storage file in a temporary directory, once per
storage kind (a journal file, SQLite) and repeat. Measured per run: the wall time and the CPU
time of the process (user + system, from :func:`resource.getrusage` of the children), and the
load average of the machine before it, since a busy machine stretches the wall time but hardly
the CPU time. The start-up alone (``biotune-optuna --help``) is measured the same way.

Replayed studies open their storage with ``durable=False`` (no wait for the disk at each
commit), so the figures hold on a slow disk too.

Run from the repository root; ``report`` writes the markdown again from the JSON, byte for byte::

    .venv/bin/python benchmarks/replay_speed.py run --repeat 3
    .venv/bin/python benchmarks/replay_speed.py report
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import json
import os
from pathlib import Path
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
SPEC = Path("studies/table.toml")
OUTPUT = Path("benchmarks/results/replay_speed")
STORAGES = {"journal": "journal:///study.log", "sqlite": "sqlite:///study.db"}
#: The issue's target for a replayed 140-trial study on 2 cores.
TARGET_S = 5.0


def _timed(command: Sequence[str], cwd: Path) -> dict[str, float]:
    """Run ``command``; its wall and CPU seconds and the load average before it."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load": round(load, 2)}


def _spec_for(storage: str, directory: Path) -> Path:
    """``studies/table.toml`` with ``storage`` and the table's absolute path, in ``directory``."""
    text = (ROOT / SPEC).read_text()
    table = (ROOT / SPEC).parent / "../benchmarks/tables/textures.json.gz"
    lines = []
    for line in text.splitlines():
        if line.startswith("storage = "):
            line = f'storage = "{storage}"'
        elif line.startswith("table = "):
            line = f'table = "{table.resolve()}"'
        lines.append(line)
    path = directory / "table.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(repeat: int) -> dict[str, Any]:
    """Every measurement of a run: start-up, then each storage ``repeat`` times."""
    command = str(Path(sys.executable).with_name("biotune-optuna"))
    rows: list[dict[str, Any]] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as directory:
            rows.append({"what": "start-up", **_timed([command, "--help"], Path(directory))})
        for kind, url in STORAGES.items():
            with tempfile.TemporaryDirectory() as directory:
                spec = _spec_for(url, Path(directory))
                timed = _timed([command, "run", "-q", str(spec)], spec.parent)
                rows.append({"what": kind, **timed})
    return {
        "command": f".venv/bin/python benchmarks/replay_speed.py run --repeat {repeat}",
        "spec": str(SPEC),
        "trials": 140,
        "machine": {"cpus": os.cpu_count(), "machine": platform.machine()},
        "commit": subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "rows": rows,
    }


def report(data: Mapping[str, Any]) -> str:
    """The markdown table of a run's JSON: median and range per measurement."""
    lines = [
        "# A replayed 140-trial study through `biotune-optuna run`",
        "",
        f"`{data['spec']}` (paper preset, {data['trials']} trials) on a new storage file, as a "
        f"fresh process; {data['machine']['cpus']} CPUs ({data['machine']['machine']}), commit "
        f"{data['commit']}. Wall time depends on what else the machine runs (the load average "
        "before each run is shown); CPU time (user + system) hardly does. Target: "
        f"≤ {TARGET_S:g} s on 2 cores.",
        "",
        "| storage | runs | wall s, median [min, max] | CPU s, median [min, max] | load before |",
        "|---|---|---|---|---|",
    ]
    for what in ("start-up", *STORAGES):
        rows = [row for row in data["rows"] if row["what"] == what]
        if not rows:
            continue
        cells = [what, str(len(rows))]
        for key in ("wall_s", "cpu_s"):
            values = [row[key] for row in rows]
            cells.append(f"{statistics.median(values):.1f} [{min(values):.1f}, {max(values):.1f}]")
        cells.append(", ".join(f"{row['load']:.1f}" for row in rows))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Command (from the repository root):", "", f"    {data['command']}", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    run = sub.add_parser("run", help="measure, write JSON and markdown")
    run.add_argument("--repeat", type=int, default=3)
    sub.add_parser("report", help="the markdown again from the JSON")
    args = parser.parse_args(argv)
    json_path, md_path = ROOT / OUTPUT.with_suffix(".json"), ROOT / OUTPUT.with_suffix(".md")
    if args.part == "run":
        json_path.write_text(json.dumps(measure(args.repeat), indent=1) + "\n")
    text = report(json.loads(json_path.read_text()))
    md_path.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
