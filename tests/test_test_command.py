"""The README's test command: what it does to the system, what it says, where its output goes.

``.ci/system-packages`` runs here against fake ``dpkg-query``, ``apt-get`` and ``id`` programs
(first on ``PATH``) that log their calls, so nothing is installed: it must install only missing
packages, without recommends, never one whose install would upgrade an installed package, and
print the markers of the tests it leaves out.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys


ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "system-packages"
README = ROOT / "README.md"

#: apt-get's simulated install when it would upgrade an installed package (as seen for chromium
#: with its recommends: perl and systemd were upgraded).
UPGRADING = """\
Inst perl-base [5.36.0-7+deb12u2] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])
Inst libogg0 (1.3.5-3 Debian:12.15/oldstable [amd64])
Inst chromium (156.0.8078.114-1~deb12u1 Debian-Security:12/oldstable-security [amd64])
"""
CLEAN = """\
Inst libogg0 (1.3.5-3 Debian:12.15/oldstable [amd64])
Inst chromium (156.0.8078.114-1~deb12u1 Debian-Security:12/oldstable-security [amd64])
"""


def _fake_system(tmp_path: Path, *, installed: set[str], simulation: str) -> Path:
    """A directory of fake programs; every call of apt-get is logged to ``apt.log``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "simulation.txt").write_text(simulation)
    programs = {
        "dpkg-query": f"""case " {" ".join(sorted(installed))} " in
    *" ${{@: -1}} "*) printf installed;;
    *) echo "dpkg-query: no packages found matching ${{@: -1}}" >&2; exit 1;;
esac""",
        "id": "echo 0",
        "apt-get": f"""echo "$*" >> {tmp_path}/apt.log
case "$*" in *-s\\ install*) cat {tmp_path}/simulation.txt;; esac""",
    }
    for name, body in programs.items():
        path = bin_dir / name
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, check=False
    )


def _apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_touches_nothing(tmp_path: Path) -> None:
    bin_dir = _fake_system(tmp_path, installed={"chromium", "postgresql"}, simulation=CLEAN)
    done = _run(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert _apt_calls(tmp_path) == []  # not even apt-get update


def test_a_missing_package_is_installed_without_recommends(tmp_path: Path) -> None:
    bin_dir = _fake_system(tmp_path, installed={"postgresql"}, simulation=CLEAN)
    done = _run(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing to deselect
    installs = [c for c in _apt_calls(tmp_path) if "install" in c and "-s" not in c.split()]
    assert installs == ["install -y -qq --no-install-recommends chromium"]
    assert "2 new packages, no upgrades" in done.stderr


def test_an_install_that_would_upgrade_is_refused_and_its_tests_deselected(
    tmp_path: Path,
) -> None:
    bin_dir = _fake_system(tmp_path, installed={"postgresql"}, simulation=UPGRADING)
    done = _run(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    calls = _apt_calls(tmp_path)
    assert not [c for c in calls if "install" in c and "-s" not in c.split()], calls
    assert done.stdout.strip() == "not browser"
    assert "would upgrade installed packages (perl-base)" in done.stderr
    assert '-m "not browser"' in done.stderr


def test_both_missing_and_refused_deselects_both(tmp_path: Path) -> None:
    bin_dir = _fake_system(tmp_path, installed=set(), simulation=UPGRADING)
    done = _run(tmp_path, bin_dir)
    assert done.stdout.strip() == "not browser and not postgres"


def _test_command() -> str:
    text = README.read_text()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.*?)```", text, re.S)
    assert block is not None
    return block.group(1)


def test_the_readme_test_command_installs_through_the_script_and_states_its_cost() -> None:
    command = _test_command()
    assert "apt-get" not in command  # only .ci/system-packages touches the system
    assert ".ci/system-packages" in command
    before = README.read_text().split("<!-- test-command -->")[0].rsplit("\n## ", 1)[1]
    assert re.search(r"\d+ min", before), "the README must say how long the test command takes"


def test_the_session_prints_where_its_output_went(tmp_path: Path) -> None:
    """Every run names the directory of screenshots and executed notebooks, set or not."""
    for given in (str(tmp_path / "kept"), None):
        env = {k: v for k, v in os.environ.items() if k != "BIOTUNE_TEST_OUTPUT"}
        if given:
            env["BIOTUNE_TEST_OUTPUT"] = given
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"{Path(__file__).relative_to(ROOT)}::test_nothing_missing_touches_nothing"],
            cwd=ROOT, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        expected = given or "biotune-test-output"
        line = [x for x in done.stdout.splitlines() if "screenshots" in x]
        assert line and expected in line[0], done.stdout
