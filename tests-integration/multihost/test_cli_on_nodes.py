"""The ``molexp`` command on several hosts of one shared workspace: ``run --jobs 2`` on two
nodes while a login node lists and queries, ``execute`` workers started as a scheduler would,
a worker killed on one node, reaped from a second and resumed on a third, and a damaged
index that heals itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest
from molexp.workspace import RunStatus, Workspace
from multihost_helpers import MOLEXP, finish, require_harness, run_on_node, start_on_node

SCRIPT = textwrap.dedent(
    """
    import os
    import time

    import molexp as me
    from molexp.workflow import TaskContext, workflow

    wf = workflow(name="grid")

    @wf.task
    async def prepare(ctx: TaskContext) -> float:
        return float(ctx.params["x"])

    @wf.task(depends_on=["prepare"])
    def compute(ctx: TaskContext) -> float:
        hold = os.environ.get("HOLD_FILE")
        while hold and os.path.exists(hold):
            time.sleep(0.1)
        ctx.log("work").append(f"x={ctx.inputs} on {os.uname().nodename}")
        ctx.set_result("value", ctx.inputs * 10)
        ctx.set_result("host", os.uname().nodename)
        return ctx.inputs * 10

    ws = me.Workspace(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab"))
    for name, x in (("alpha", 1), ("beta", 2), ("gamma", 3)):
        experiment = ws.Project("grid").Experiment(name, params={"x": x}, n_replicas=4)
        wf.build().bind_to(experiment)
    me.entry(ws)
    """
)


@pytest.fixture
def share(tmp_path: Path) -> Path:
    require_harness()
    directory = tmp_path / "share"
    directory.mkdir()
    (directory / "grid.py").write_text(SCRIPT)
    Workspace(directory / "lab").materialize()
    return directory


def _molexp(node: str, share: Path, *args: str, timeout: float = 120) -> dict | list:  # type: ignore[type-arg]
    done = run_on_node(node, share, timeout, *MOLEXP, *args, "--json")
    assert done.returncode == 0, (node, args, done.stdout[-2000:], done.stderr[-3000:])
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_run_on_two_nodes_while_the_login_node_inspects(share: Path) -> None:
    lab = share / "lab"
    runners = [
        start_on_node(
            node, share, 240, *MOLEXP, "run", "grid.py", "-e", name, "--jobs", "2", "--json"
        )
        for node, name in (("node-a", "alpha"), ("node-b", "beta"))
    ]
    deadline = time.monotonic() + 200
    listings = 0
    while any(runner.poll() is None for runner in runners) and time.monotonic() < deadline:
        for command in (("ls", "runs"), ("query", "status == 'succeeded'"), ("status",)):
            _molexp("login", share, *command, "-w", str(lab))
            listings += 1
    reports = [finish(runner, 60) for runner in runners]
    assert listings >= 3
    for report in reports:
        assert sorted(run["action"] for run in report["runs"]) == ["executed"] * 4, report
    rows = _molexp("login", share, "ls", "runs", "-w", str(lab))
    assert isinstance(rows, list)
    assert len(rows) == 8
    assert {row["status"] for row in rows} == {"succeeded"}
    hosts = {row["results"]["host"] for row in rows}
    assert hosts == {"node-a", "node-b"}
    found = _molexp("login", share, "query", "results.value == 20", "-w", str(lab))
    assert isinstance(found, list)
    assert len(found) == 4


def _wait_running(paths: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [json.loads(path.read_text() or "{}").get("status") for path in paths]
        if all(status == "running" for status in statuses):
            return
        time.sleep(0.2)
    raise AssertionError(f"runs did not all start: {statuses}")


def test_execute_workers_on_nodes_as_a_scheduler_starts_them(share: Path) -> None:
    lab = share / "lab"
    hold = share / "hold"
    hold.write_text("")
    experiment = Workspace(lab).Project("grid").Experiment("gamma", params={"x": 3})
    runs = []
    for replica in range(4):
        run = experiment.Run(id=f"gamma-{replica}", replica_index=replica, seed=replica)
        # What a submitting `molexp run` records for its workers: the script to re-import.
        run.set_workflow({"script": str(share / "grid.py"), "cwd": str(share)})
        runs.append(run)
    nodes = ("node-a", "node-b", "node-c", "node-d")
    workers = [
        start_on_node(
            node, share, 180, "env", f"HOLD_FILE={hold}", *MOLEXP, "execute", run.run_dir, "--json"
        )
        for node, run in zip(nodes, runs, strict=True)
    ]
    _wait_running([run.record_path for run in runs], 90)
    # A second worker for a run that is executing elsewhere finds it busy (exit 3).
    duplicate = run_on_node("node-e", share, 60, *MOLEXP, "execute", runs[0].run_dir)
    assert duplicate.returncode == 3, (duplicate.stdout, duplicate.stderr)
    assert "node-a" in duplicate.stderr
    hold.unlink()
    for worker in workers:
        finish(worker, 120)
    for node, run in zip(nodes, runs, strict=True):
        stored = run.reload()
        assert stored.status is RunStatus.succeeded
        assert stored.results["host"] == node
        assert [a.host for a in stored.metadata.execution_history] == [node]


def test_a_killed_worker_is_reaped_from_another_node_and_resumed_on_a_third(share: Path) -> None:
    lab = share / "lab"
    hold = share / "hold"
    hold.write_text("")
    worker = start_on_node(
        "node-a",
        share,
        120,
        "env",
        f"HOLD_FILE={hold}",
        *MOLEXP,
        "run",
        "grid.py",
        "-e",
        "alpha",
        "--heartbeat-interval",
        "0.5",
    )
    experiment_dir = lab / "projects" / "grid" / "experiments" / "alpha"
    deadline = time.monotonic() + 60
    running: list[Path] = []
    while time.monotonic() < deadline and not running:
        running = [
            path
            for path in experiment_dir.glob("runs/run-*/run.json")
            if json.loads(path.read_text() or "{}").get("status") == "running"
        ]
        time.sleep(0.2)
    assert running, "the worker never started a run"
    [run_json] = running
    # A live run whose heartbeats arrive is never reaped from another host.
    time.sleep(3.0)
    assert _molexp("node-b", share, "reap", "--heartbeat-timeout", "2", "-w", str(lab)) == []
    assert json.loads(run_json.read_text())["status"] == "running"
    # Kill the whole node (its pid namespace): nothing gets to record anything.
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(30)
    time.sleep(3.0)  # longer than the heartbeat timeout below
    reaped = _molexp("node-b", share, "reap", "--heartbeat-timeout", "2", "-w", str(lab))
    assert run_json.parent.name.removeprefix("run-") in json.dumps(reaped), reaped
    record = json.loads(run_json.read_text())
    assert record["status"] == "failed"
    assert "no heartbeat from process" in record["error"]["message"]
    assert "node-a" in record["error"]["message"]
    hold.unlink()
    _molexp("node-c", share, "run", "grid.py", "-e", "alpha", "--rerun-failed")
    record = json.loads(run_json.read_text())
    assert record["status"] == "succeeded"
    assert record["results"]["host"] == "node-c"
    assert [attempt["host"] for attempt in record["execution_history"]] == ["node-a", "node-c"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_index_heals_and_every_command_still_works(
    share: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = share / "lab"
    _molexp("node-a", share, "run", "grid.py", "-e", "beta")
    assert len(_molexp("login", share, "ls", "runs", "-w", str(lab))) == 4  # login's index exists
    with monkeypatch.context() as host:
        host.setattr(socket, "gethostname", lambda: "login")
        index = Workspace(lab).catalog.db_path  # the login node's own index file
    assert index.is_file()
    legacy = lab / ".molexp" / "index.sqlite"  # where older versions kept a shared one
    for path in (index, legacy):
        if damage == "truncated":
            data = path.read_bytes() if path.exists() else b"SQLite format 3\x00" + b"\x01" * 5000
            path.write_bytes(data[: len(data) // 3])
        elif damage == "garbage":
            path.write_bytes(b"this is not a database" * 400)
        else:
            path.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    rows = _molexp("login", share, "ls", "runs", "-w", str(lab))
    assert isinstance(rows, list)
    assert len(rows) == 4
    _molexp("login", share, "show", rows[0]["id"], "-w", str(lab))
    assert len(_molexp("login", share, "query", "status == 'succeeded'", "-w", str(lab))) == 4
    _molexp("login", share, "status", "-w", str(lab))
    _molexp("login", share, "reap", "-w", str(lab))
    with sqlite3.connect(index) as healed:  # rebuilt from the records
        assert healed.execute("SELECT COUNT(*) FROM runs").fetchone() == (4,)
