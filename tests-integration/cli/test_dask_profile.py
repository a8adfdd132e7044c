"""`molexp run --profile cluster` with `runtime = "dask"` executes the tasks in Dask workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]

SCRIPT = textwrap.dedent(
    """
    from pathlib import Path

    from molexp.workflow import TaskContext, workflow
    from molexp.workspace import Workspace, entry

    HERE = Path(__file__).parent
    wf = workflow(name="where")

    @wf.task
    def probe(ctx: TaskContext) -> str:
        try:
            from distributed import get_worker

            get_worker()
            where = "dask-worker"
        except (ImportError, ValueError):
            where = "local"
        (HERE / "where.txt").write_text(where)
        return where

    @wf.task(depends_on=["probe"])
    def scaled(ctx: TaskContext) -> float:
        return ctx.config["scale"] * 2

    ws = Workspace(HERE / "lab")
    wf.build().bind_to(ws.Project("p").Experiment("e"))
    entry(ws)
    """
)

PROFILES = textwrap.dedent(
    """
    [defaults]
    scale = 1.5

    [profiles.cluster]
    runtime = "dask"
    n_workers = 1
    processes = false
    """
)


def test_a_dask_profile_runs_the_tasks_in_dask_workers(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    (tmp_path / "where.py").write_text(SCRIPT)
    (tmp_path / "molexp.toml").write_text(PROFILES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    completed = subprocess.run(
        [*MOLEXP, "run", "where.py", "--profile", "cluster", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["executed"] == 1
    assert (tmp_path / "where.txt").read_text() == "dask-worker"
    [run_json] = (tmp_path / "lab").rglob("run.json")
    record = json.loads(run_json.read_text())
    assert record["status"] == "succeeded"
    assert record["profile"]["config"] == {"scale": 1.5}


SHIPPED = textwrap.dedent(
    """
    import socket
    from pathlib import Path

    import helpers
    from molexp.workflow import TaskContext, workflow
    from molexp.workspace import Workspace, entry

    HERE = Path(__file__).parent
    wf = workflow(name="shipped")

    @wf.task
    def first(ctx: TaskContext) -> int:
        value = helpers.double(21)
        ctx.log("train").append(f"first ran in {helpers.where()}")
        ctx.set_result("value", value)
        ctx.artifact.save("out.json", {"value": value, "host": socket.gethostname()})
        return value

    @wf.task(depends_on=["first"])
    def second(ctx: TaskContext) -> int:
        ctx.set_result("second", ctx.inputs + 1)
        return ctx.inputs + 1

    ws = Workspace(HERE / "lab")
    wf.build().bind_to(ws.Project("p").Experiment("e"))
    entry(ws)
    """
)

HELPERS = textwrap.dedent(
    """
    import os

    def double(x):
        return 2 * x

    def where():
        from distributed import get_worker

        return f"worker {get_worker().address} pid {os.getpid()}"
    """
)


def test_worker_processes_get_the_script_its_helpers_and_the_run_context(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    (tmp_path / "d.py").write_text(SHIPPED)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "molexp.toml").write_text(
        '[profiles.cluster]\nruntime = "dask"\nn_workers = 2\nprocesses = true\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    completed = subprocess.run(
        [*MOLEXP, "run", "d.py", "--profile", "cluster", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    [run_json] = (tmp_path / "lab").rglob("run.json")
    record = json.loads(run_json.read_text())
    assert record["status"] == "succeeded", record.get("error")
    assert record["results"] == {"value": 42, "second": 43}
    run_dir = run_json.parent
    log = (run_dir / "logs" / "train.log").read_text()
    assert log.startswith("first ran in worker tcp://") and f"pid {os.getpid()}" not in log
    assert json.loads((run_dir / "artifacts" / "out.json").read_text())["value"] == 42
    [artifact] = [
        json.loads(path.read_text())
        for path in (run_dir / ".assets").glob("*.json")
        if json.loads(path.read_text())["kind"] == "artifact"
    ]
    assert artifact["producer"]["task_name"] == "first"
    assert artifact["producer"]["host"]


def test_molexp_execute_runs_a_prepared_run_on_worker_processes(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from molexp.workspace import Workspace

    (tmp_path / "d.py").write_text(SHIPPED)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tmp_path / "molexp.toml").write_text(
        '[profiles.cluster]\nruntime = "dask"\nn_workers = 2\nprocesses = true\n'
    )
    run = Workspace(tmp_path / "lab").Project("p").Experiment("e").Run(id="prepared")
    # What a submitting `molexp run` records for its workers: the script to re-import.
    run.set_workflow({"script": str(tmp_path / "d.py"), "cwd": str(tmp_path)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    completed = subprocess.run(
        [*MOLEXP, "execute", str(run.run_dir), "--profile", "cluster", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    run.reload()
    assert run.status.value == "succeeded"
    assert run.results == {"value": 42, "second": 43}
    assert (run.run_dir / "logs" / "train.log").read_text().startswith("first ran in worker tcp://")
