"""The CLI as a user installs it: ``pipx install`` of the built wheel (an isolated tool venv without
the meta package or the lab's dependencies) drives a lab's own ``.venv`` holding ``molexp`` and a
small local distribution the script imports — ``molexp run``, ``--jobs 2``, ``molexp execute`` and,
where ``sbatch`` exists, the Slurm executor, each attempt recording the lab's interpreter.

Builds every wheel and installs from the package index (pipx, the lab's third-party packages)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="building the wheels needs uv")

SCRIPT = """
import os
from pathlib import Path

import labhelper  # only in the lab's environment
from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

wf = workflow(name="lab")


@wf.task
def scaled(ctx: TaskContext) -> float:
    value = labhelper.SCALE * ctx.params["x"]
    ctx.set_result("value", value)
    return value


spec = wf.build()
ws = Workspace(Path(__file__).parent / "lab")
set_workflow(ws.Project("p").Experiment("e", params={"x": 2.0}, n_replicas=2), spec)
entry(ws)
"""


@dataclass(frozen=True)
class Lab:
    directory: Path
    molexp: Path
    """The ``molexp`` executable pipx put on its bin dir."""
    tool_python: Path
    """The interpreter of pipx's isolated venv."""
    lab_python: Path

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.molexp), *args],
            cwd=self.directory,
            env=_user_shell(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok_json(self, *args: str) -> Any:
        completed = self.run(*args, "--json")
        assert completed.returncode == 0, (completed.stdout, completed.stderr)
        return json.loads(completed.stdout)


def _user_shell() -> dict[str, str]:
    """A shell with no development environment active: no venv, no uv, no molexp settings."""
    drop = {"VIRTUAL_ENV", "UV", "PYTHONPATH", "PYTHONHOME"}
    return {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith("MOLEXP_")
    }


def _run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, (args, completed.stdout, completed.stderr)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("pipx")
    dist = root / "dist"
    _run("uv", "build", "--all-packages", "--wheel", "--out-dir", dist, "-q")
    cli_wheel = next(dist.glob("molexp_cli-*.whl"))
    pipx_env = {
        **_user_shell(),
        "PIPX_HOME": str(root / "pipx"),
        "PIPX_BIN_DIR": str(root / "bin"),
        "PIPX_MAN_DIR": str(root / "man"),
    }
    _run(
        sys.executable,
        "-m",
        "pipx",
        "install",
        "--python",
        sys.executable,
        str(cli_wheel),
        f"--pip-args=--find-links {dist}",
        env=pipx_env,
    )
    directory = root / "lab"
    directory.mkdir()
    helper = root / "labhelper"  # the lab's own distribution, installed into its .venv
    (helper / "src" / "labhelper").mkdir(parents=True)
    (helper / "src" / "labhelper" / "__init__.py").write_text("SCALE = 3.0\n")
    (helper / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "labhelper"
            version = "0.1.0"

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        )
    )
    (directory / "s.py").write_text(SCRIPT)
    _run("uv", "venv", "-q", "-p", sys.executable, directory / ".venv")
    lab_python = directory / ".venv" / "bin" / "python"
    _run("uv", "pip", "install", "-q", "-p", lab_python, "--find-links", dist, "molexp", helper)
    return Lab(
        directory=directory,
        molexp=root / "bin" / "molexp",
        tool_python=root / "pipx" / "venvs" / "molexp-cli" / "bin" / "python",
        lab_python=lab_python,
    )


def _pythons_of(run_dir: str) -> list[str | None]:
    record = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    return [attempt["python"] for attempt in record["execution_history"]]


def test_the_pipx_venv_alone_cannot_run_the_script(lab: Lab) -> None:
    isolated = subprocess.run(
        [str(lab.tool_python), "-c", "import labhelper"],
        env=_user_shell(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert isolated.returncode != 0 and "labhelper" in isolated.stderr
    failed = lab.run("run", "s.py", "--dry-run", "--python", str(lab.tool_python))
    assert failed.returncode != 0


def test_run_jobs_and_execute_through_the_pipx_binary_use_the_lab_venv(lab: Lab) -> None:
    first = lab.run("run", "s.py")
    assert first.returncode == 0, first.stderr
    assert "2 executed" in first.stdout
    # The hint repeats the pipx binary the user typed, not the lab interpreter that did the work.
    assert f"inspect: {lab.molexp} ls runs -w lab" in first.stdout

    again = lab.ok_json("run", "s.py", "--force", "--jobs", "2")
    assert again["executed"] == 2
    for run in again["runs"]:
        record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
        assert record["results"] == {"value": 6.0}
    run_dir = again["runs"][0]["run_dir"]
    executed = lab.ok_json("execute", run_dir, "--policy", "force")
    assert executed["status"] == "succeeded"
    assert _pythons_of(run_dir) == [str(lab.lab_python)] * 3

    # Inspection needs no lab environment: the tool venv alone lists the runs.
    listed = lab.ok_json("ls", "runs", "-w", "lab")
    assert sorted(row["status"] for row in listed) == ["succeeded", "succeeded"]


@pytest.mark.slurm
@pytest.mark.skipif(shutil.which("sbatch") is None, reason="sbatch is not on PATH")
def test_the_slurm_executor_through_the_pipx_binary_runs_jobs_in_the_lab_venv(lab: Lab) -> None:
    submitted = lab.ok_json("run", "s.py", "--force", "--executor", "slurm", "--time", "2")
    assert submitted["submitted"] == 2
    deadline = time.monotonic() + 150
    while True:
        runs = lab.ok_json("ls", "runs", "-w", "lab")
        if all(run["status"] in {"succeeded", "failed", "cancelled"} for run in runs):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(2)
        lab.ok_json("sync", "-w", "lab")
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    for run in submitted["runs"]:
        assert _pythons_of(run["run_dir"])[-1] == str(lab.lab_python)
        record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
        attempt = record["execution_history"][-1]
        # the attempt names its Slurm job, as the scheduler info of its submission does
        job = attempt["environment"]["slurm"]
        assert job["SLURM_ARRAY_JOB_ID"] == str(attempt["scheduler"]["job_id"])
