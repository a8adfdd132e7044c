"""A laptop and a cluster on one machine, for ``molexp`` over SSH.

The "login node" is the loopback sshd of ``../shared/multihost/start-loopback-sshd`` (root login
with its throwaway key) on a machine with the real local Slurm of
``../shared/slurm/start-local-slurm``. The cluster's filesystem is a directory of its own and the
cluster's Python a venv of its own, built from this checkout's wheels (``uv build`` + ``uv pip
install``, as tests-integration/install does) once per session. The laptop is another directory
holding the script, a first-party module and ``molexp.toml``; its ``molexp`` is this
environment's. Everything here skips, saying why, where the harness is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
MULTIHOST = REPO.parent / "shared" / "multihost"
STATE = Path(os.environ.get("MULTIHOST_STATE", "/var/tmp/multihost"))
_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]
T = TypeVar("T")


def require_harness() -> None:
    """Skip unless ssh, the loopback sshd, sbatch and uv are all there."""
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client (ssh) on PATH")
    if shutil.which("sbatch") is None:
        pytest.skip(
            "sbatch is not on PATH: start the local cluster with "
            "`bash ../shared/slurm/start-local-slurm`"
        )
    if shutil.which("uv") is None:
        pytest.skip("building the cluster's Python needs uv")
    start = MULTIHOST / "start-loopback-sshd"
    if not start.is_file():
        pytest.skip(f"needs {start} (the shared multihost harness beside the repository)")
    check = subprocess.run(["bash", str(start), "--check"], capture_output=True, timeout=30)
    if check.returncode != 0:
        pytest.skip("the loopback sshd is not running: run ../shared/multihost/start-loopback-sshd")


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run(
        [str(a) for a in args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, (args, completed.stdout, completed.stderr)


def build_cluster_python(root: Path) -> Path:
    """A venv with this checkout's wheels: the cluster's own Python (``root/venv``)."""
    dist = root / "dist"
    _run("uv", "build", "--all-packages", "--wheel", "--out-dir", dist, "-q")
    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    _run("uv", "venv", "-q", "--python", sys.executable, root / "venv", env=env)
    python = root / "venv" / "bin" / "python"
    _run("uv", "pip", "install", "-q", "--python", python, *sorted(dist.glob("*.whl")), env=env)
    return python


SCRIPT = """
import time

import molexp as me
import labmath
from molexp.workflow import TaskContext, workflow

time.sleep({import_delay})

wf = workflow(name="square")


@wf.task
async def square(ctx: TaskContext) -> float:
    value = labmath.square(ctx.params["x"]) * ctx.config["scale"]
    ctx.set_result("value", value)
    ctx.log("train").append(f"x={{ctx.params['x']}}")
    ctx.artifact.save("value.txt", str(value).encode())
    ctx.artifact.save("big.bin", b"0" * 1000)
    return value


spec = wf.build()
ws = me.Workspace("./lab")
for params in me.GridSpace({{"x": {values}}}):
    spec.bind_to(ws.Project("{project}").Experiment(f"{project}-x{{params['x']}}", params=params))
me.entry(ws)
"""


@dataclass
class Cluster:
    """One test's laptop directory, cluster filesystem and SSH settings."""

    laptop: Path
    filesystem: Path
    python: Path
    control: Path
    project: str
    port: int

    @property
    def workspace(self) -> Path:
        return self.filesystem / "lab"

    @property
    def stage(self) -> Path:
        return self.workspace / ".molexp" / "staging"

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.workspace}"

    def write(
        self,
        values: list[int],
        *,
        import_delay: float = 0,
        hold: bool = False,
        known_hosts: Path | None = None,
        identity: Path | None = None,
    ) -> None:
        self.laptop.mkdir(parents=True, exist_ok=True)
        (self.laptop / "sweep.py").write_text(
            textwrap.dedent(
                SCRIPT.format(import_delay=import_delay, values=values, project=self.project)
            )
        )
        (self.laptop / "labmath.py").write_text("def square(x):\n    return x * x\n")
        options = [
            f"UserKnownHostsFile={known_hosts or STATE / 'known_hosts'}",
            "StrictHostKeyChecking=yes" if known_hosts else "StrictHostKeyChecking=accept-new",
            "IdentitiesOnly=yes",
        ]
        (self.laptop / "molexp.toml").write_text(
            textwrap.dedent(
                f"""\
                workspace = "lab"
                python = "/nowhere/on/the/cluster/bin/python"

                [defaults]
                scale = 1.0

                [profiles.cluster]
                executor = "slurm"
                [profiles.cluster.slurm]
                time = "0:05:00"
                hold = {json.dumps(hold)}
                [profiles.cluster.remote]
                host = "root@127.0.0.1"
                port = {self.port}
                identity_file = "{identity or STATE / "client"}"
                ssh_options = {json.dumps(options)}
                workspace = "{self.workspace}"
                python = "{self.python}"
                """
            )
        )

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MOLEXP_") and k not in {"SSH_AUTH_SOCK", "VIRTUAL_ENV"}
        }
        env["MOLEXP_SSH_CONTROL_DIR"] = str(self.control)
        env["MOLEXP_INDEX_DIR"] = str(self.laptop / ".index")
        return env

    def molexp(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MOLEXP, *map(str, args)],
            cwd=self.laptop,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str | Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*MOLEXP, *map(str, args)],
            cwd=self.laptop,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def ok_json(self, *args: str | Path, timeout: float = 120) -> Any:
        completed = self.molexp(*args, "--json", timeout=timeout)
        assert completed.returncode == 0, (args, completed.stdout, completed.stderr)
        return json.loads(completed.stdout)

    def close_connection(self) -> None:
        """Stop the shared SSH connection (the ControlMaster) as a network failure would."""
        for socket in self.control.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "root@127.0.0.1"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.control, ignore_errors=True)


def make_cluster(tmp_path: Path, python: Path, project: str) -> Cluster:
    # A short private directory: a ControlMaster socket path must fit in 108 bytes.
    control = Path(tempfile.mkdtemp(prefix="mx-ssh-"))
    return Cluster(
        laptop=tmp_path / "laptop",
        filesystem=tmp_path / "cluster-fs",
        python=python,
        control=control,
        project=project,
        port=int((STATE / "port").read_text().strip()),
    )


def wait_until(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


def slurm_jobs(name_prefix: str) -> list[str]:
    """Every job (array) whose name starts with ``name_prefix``, known to squeue or sacct."""
    ids: set[str] = set()
    squeue = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%F %j"], capture_output=True, text=True, timeout=60
    )
    for line in squeue.stdout.splitlines():
        job, _, name = line.partition(" ")
        if name.startswith(name_prefix):
            ids.add(job)
    sacct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-S", "now-1hour", "--format=JobID,JobName"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in sacct.stdout.splitlines():
        job, _, name = line.partition("|")
        if name.startswith(name_prefix):
            ids.add(job.partition("_")[0])
    return sorted(ids)


def run_records(workspace: Path, project: str) -> list[dict[str, Any]]:
    pattern = f"projects/{project}/experiments/*/runs/*/run.json"
    return [json.loads(p.read_text()) for p in sorted(workspace.glob(pattern))]
