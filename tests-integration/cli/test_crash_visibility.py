"""After a SIGKILL, the run stays recorded as `running`, but every listing says it is stale."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]

SCRIPT = textwrap.dedent(
    """
    import time
    from pathlib import Path
    import molexp as me
    from molexp.workflow import TaskContext, workflow

    wf = workflow(name="slow")

    @wf.task
    async def compute(ctx: TaskContext) -> int:
        Path("started").write_text("yes")
        time.sleep(120)
        return 1

    ws = me.Workspace("lab")
    exp = ws.Project("eos").Experiment("cu", params={"a": 3.6})
    wf.build().bind_to(exp)
    me.entry(ws)
    """
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}


def _molexp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MOLEXP, *args, "-w", "lab"], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_a_sigkilled_run_is_shown_stale_at_once(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SCRIPT)
    worker = subprocess.Popen(
        [*MOLEXP, "run", "slow.py"], cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert worker.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.wait()  # the shell reaps it too: a zombie's pid would still count as alive

    status = json.loads(_molexp("status", "--json", cwd=tmp_path).stdout)
    [record] = status
    assert (record["status"], record["stale"]) == ("running", True)
    reason = f"owner process {worker.pid} on host"
    assert reason in record["stale_reason"]
    assert record["detail"].startswith(f"stale: {reason}")
    human = _molexp("status", cwd=tmp_path).stdout
    assert "running (stale: owner process" in human

    overview = json.loads(_molexp("ls", "--json", cwd=tmp_path).stdout)
    assert overview["projects"][0]["experiments"][0]["runs"] == {"stale": 1}
    [row] = json.loads(_molexp("ls", "runs", "--json", cwd=tmp_path).stdout)
    assert (row["status"], row["stale"]) == ("running", True)
    shown = json.loads(_molexp("show", row["id"], "--json", cwd=tmp_path).stdout)
    assert (shown["status"], shown["stale"]) == ("running", True)

    # nothing changed it; reaping stays explicit
    reaped = json.loads(_molexp("reap", "--json", cwd=tmp_path).stdout)
    assert [run["id"] for run in reaped] == [row["id"]]
    [row] = json.loads(_molexp("ls", "runs", "--json", cwd=tmp_path).stdout)
    assert (row["status"], row["stale"]) == ("failed", False)
