"""The cluster examples of ``examples/`` run their worker command on a real PostgreSQL study.

``examples/slurm/biotune_array.sbatch`` (a Slurm job array, one task per GPU) and
``examples/kubernetes/biotune-workers.yaml`` (an Indexed Job, one pod per GPU) are what the
"Many GPUs, many hosts" guide ships. Here each runs as its scheduler would run it, two workers
(indexes 0 and 1) at once on one study of the tests' PostgreSQL server: the sbatch script itself
under bash with the task's Slurm variables, and the Job's container command as the manifest
writes it, with the container's environment (the Secret's password). Only what a test must
change is replaced: the spec (a tiny synthetic study whose storage is the test server, given
without its password, as the examples say) and the program (this checkout's command line).
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import optuna
import pytest
import sqlalchemy
import yaml

from tests.reliability._user import load
from tests.reliability._user import REPO
from tests.reliability.test_crashes import SYNTHETIC_SPEC


pytestmark = pytest.mark.postgres

SBATCH = REPO / "examples" / "slurm" / "biotune_array.sbatch"
MANIFEST = REPO / "examples" / "kubernetes" / "biotune-workers.yaml"
BUDGET = 4
#: A password written into a URL (``scheme://user:password@host``).
URL_PASSWORD = re.compile(r"://[^/\s:@\"']+:[^/\s@\"']+@")


def _job() -> dict:
    return next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d["kind"] == "Job")


def _setup(tmp_path: Path, password_url: str) -> tuple[Path, dict[str, str], str]:
    """The tiny spec on the server without its password, a ``biotune-optuna`` of this
    checkout on ``PATH``, and the password (what the examples take from a Secret or .pgpass)."""
    url = sqlalchemy.engine.make_url(password_url)
    storage = url.set(password=None).render_as_string(hide_password=False)
    spec = tmp_path / "cluster.toml"
    spec.write_text(SYNTHETIC_SPEC.format(storage=storage, trials=BUDGET))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "biotune-optuna"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m biotune_optuna.cli "$@"\n')
    program.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return spec, env, str(url.password)


def _run_workers(commands: list[tuple[list[str], dict[str, str]]], cwd: Path) -> list[str]:
    """Start every worker at once, as a scheduler does; their outputs, after all ended."""
    workers = [
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command, env in commands
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    return outputs


def _check_study(storage_url: str) -> None:
    trials = load(storage_url, "shared").trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= BUDGET
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), trials


def test_no_example_holds_a_password() -> None:
    for path in (SBATCH, MANIFEST):
        assert not URL_PASSWORD.search(path.read_text()), path
    for container in _job()["spec"]["template"]["spec"]["containers"]:
        for variable in container.get("env", []):
            if variable["name"] == "PGPASSWORD":
                assert "value" not in variable and "secretKeyRef" in variable["valueFrom"]


@pytest.mark.slow
def test_the_slurm_array_runs_one_worker_per_task(
    tmp_path: Path, postgres_password_url: str
) -> None:
    script = SBATCH.read_text()
    directives = re.findall(r"(?m)^#SBATCH (\S+)", script)
    assert "--gres=gpu:1" in directives and any(d.startswith("--array=") for d in directives)
    spec, env, password = _setup(tmp_path, postgres_password_url)
    env["PGPASSWORD"] = password  # as ~/.pgpass would give it
    tasks = [
        (["bash", str(SBATCH), str(spec), "-q"], {**env, "BIOTUNE": "biotune-optuna",
         "SLURM_ARRAY_TASK_ID": str(index), "SLURM_CPUS_PER_TASK": "1"})
        for index in (0, 1)
    ]  # fmt: skip
    outputs = _run_workers(tasks, cwd=tmp_path)
    assert [o.splitlines()[0].split(" on ")[0] for o in outputs] == [
        "biotune worker 0",
        "biotune worker 1",
    ]
    _check_study(postgres_password_url)


def _container_command(container: dict, spec: Path, mount: str) -> list[str]:
    """The container's command and args, ``$(VAR)`` expanded as Kubernetes does, the spec
    mounted from the ConfigMap replaced by ``spec``."""
    values = {v["name"]: v.get("value", "") for v in container.get("env", [])}
    words = [*container.get("command", []), *container.get("args", [])]
    words = [re.sub(r"\$\((\w+)\)", lambda m: values.get(m[1], m[0]), w) for w in words]
    return [str(spec) if w.startswith(mount + "/") else w for w in words]


@pytest.mark.slow
def test_the_kubernetes_indexed_job_runs_one_worker_per_pod(
    tmp_path: Path, postgres_password_url: str
) -> None:
    job = _job()
    assert job["spec"]["completionMode"] == "Indexed"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    configmap = next(v["name"] for v in pod["volumes"] if "configMap" in v)
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == configmap)
    spec, env, password = _setup(tmp_path, postgres_password_url)
    secrets = {"PGPASSWORD": password}  # the Secret the manifest names
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {}).get("secretKeyRef")
        env[variable["name"]] = secrets[source["key"]] if source else variable["value"]
    command = _container_command(container, spec, mount)
    assert str(spec) in command, command
    pods = [(command, {**env, "JOB_COMPLETION_INDEX": str(index)}) for index in (0, 1)]
    _run_workers(pods, cwd=tmp_path)
    _check_study(postgres_password_url)
