"""The sampler-overhead benchmark publishes no machine's directories."""

from __future__ import annotations

from tests.benchmarks import load_benchmark


overhead = load_benchmark("sampler_overhead")


def test_the_interpreter_inside_the_repository_is_published_relative_to_it() -> None:
    venv_python = overhead.REPO_ROOT / ".venv" / "bin" / "python"
    assert overhead._in_repo(str(venv_python)) == ".venv/bin/python"
    assert overhead._in_repo("/usr/bin/python3") == "/usr/bin/python3"  # outside: as it is
