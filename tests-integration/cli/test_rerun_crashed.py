"""A worker killed mid-task leaves its run `running`; `molexp run --rerun-failed` recovers it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]

SCRIPT = textwrap.dedent(
    """
    import os
    import molexp as me
    from molexp.workflow import TaskContext, workflow

    wf = workflow(name="crashy")

    @wf.task
    async def prepare(ctx: TaskContext) -> int:
        return 20

    @wf.task(depends_on=["prepare"])
    async def finish(ctx: TaskContext) -> int:
        if os.environ.get("CRASH_NOW") == "1":
            os._exit(9)
        return ctx.inputs + 1

    ws = me.Workspace("lab")
    exp = ws.Project("p").Experiment("e", params={"x": 1})
    wf.build().bind_to(exp)
    me.entry(ws)
    """
)


def _molexp(*args: str, cwd: Path, crash: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    if crash:
        env["CRASH_NOW"] = "1"
    return subprocess.run(
        [*MOLEXP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_rerun_failed_recovers_a_run_whose_worker_died(tmp_path: Path) -> None:
    (tmp_path / "crashy.py").write_text(SCRIPT)
    crashed = _molexp("run", "crashy.py", cwd=tmp_path, crash=True)
    assert crashed.returncode != 0
    [run_json] = (tmp_path / "lab").rglob("run.json")
    assert json.loads(run_json.read_text())["status"] == "running"

    plain = _molexp("run", "crashy.py", "--json", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(run_json.read_text())["status"] == "running"

    rerun = _molexp("run", "crashy.py", "--rerun-failed", "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads(run_json.read_text())
    assert record["status"] == "succeeded"
    attempts = record["execution_history"]
    assert [a["status"] for a in attempts] == ["failed", "succeeded"]
    assert "reaped as stale" in attempts[0]["error"]["message"]
