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
