"""A running run whose owner is gone is shown as stale by ls, show and status (and --json)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.workspace import Experiment, OwnerInfo, RunStatus, Workspace
from molexp.workspace._records import utc_now
from molexp.workspace._stale import this_host

DEAD_PID = 2**22 + 4321


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _running(exp: Experiment, run_id: str, owner: OwnerInfo) -> None:
    """A run recorded as running by ``owner`` (as a killed ``molexp run`` leaves it)."""
    run = exp.Run(id=run_id)
    run.metadata.status = RunStatus.running
    run.metadata.started_at = owner.started_at
    run.metadata.owner = owner
    run.save()


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Experiment:
    ws = Workspace(tmp_path / "lab")
    exp = ws.Project("p").Experiment("e")
    now = utc_now()
    host = this_host()
    _running(exp, "killed", OwnerInfo(host=host, pid=DEAD_PID, started_at=now, heartbeat_at=now))
    _running(exp, "alive", OwnerInfo(host=host, pid=os.getpid(), started_at=now, heartbeat_at=now))
    old = now - timedelta(hours=1)
    _running(
        exp, "silent", OwnerInfo(host="node-7.example", pid=99, started_at=old, heartbeat_at=old)
    )
    _running(
        exp, "remote", OwnerInfo(host="node-8.example", pid=99, started_at=now, heartbeat_at=now)
    )
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(ws.root))
    return exp


def test_ls_runs_marks_stale_runs_at_once(
    lab: Experiment, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {row["id"]: row for row in json.loads(invoke(capsys, "ls", "runs", "--json")[1])}
    assert {run_id: row["status"] for run_id, row in rows.items()} == dict.fromkeys(
        ("killed", "alive", "silent", "remote"), "running"
    )
    assert {run_id for run_id, row in rows.items() if row["stale"]} == {"killed", "silent"}
    host = this_host()
    assert rows["killed"]["stale_reason"] == (
        f"owner process {DEAD_PID} on host {host} is no longer alive"
    )
    assert "no heartbeat from process 99 on host node-7.example" in rows["silent"]["stale_reason"]
    assert rows["alive"]["stale_reason"] is None and rows["remote"]["stale_reason"] is None

    code, out, _ = invoke(capsys, "ls", "runs")
    assert code == 0
    assert f"running (stale: owner process {DEAD_PID} on host {host} is no longer alive)" in out

    overview = json.loads(invoke(capsys, "ls", "--json")[1])
    (experiment,) = overview["projects"][0]["experiments"]
    assert experiment["runs"] == {"running": 2, "stale": 2}
    assert "2 running, 2 stale" in invoke(capsys, "ls")[1]
    # nothing was changed: reaping stays explicit
    assert {run.status for run in lab.list_runs()} == {RunStatus.running}


def test_show_and_status_say_why(lab: Experiment, capsys: pytest.CaptureFixture[str]) -> None:
    host = this_host()
    code, out, _ = invoke(capsys, "show", "killed")
    assert code == 0
    assert f"running (stale: owner process {DEAD_PID} on host {host} is no longer alive)" in out
    shown = json.loads(invoke(capsys, "show", "killed", "--json")[1])
    assert (shown["status"], shown["stale"]) == ("running", True)
    assert str(DEAD_PID) in shown["stale_reason"]
    assert json.loads(invoke(capsys, "show", "alive", "--json")[1])["stale"] is False

    records = {r["run_id"]: r for r in json.loads(invoke(capsys, "status", "--json")[1])}
    assert records["killed"]["stale"] and records["silent"]["stale"]
    assert not records["alive"]["stale"] and not records["remote"]["stale"]
    assert records["killed"]["detail"].startswith(
        f"stale: owner process {DEAD_PID} on host {host} is no longer alive (last heartbeat"
    )
    code, out, _ = invoke(capsys, "status")
    assert code == 0
    assert "running (stale: owner process" in out
