"""A Dask cluster across simulated hosts: a scheduler on 127.0.0.1, one ``dask worker`` on each of
two nodes (own hostname, the workspace over sshfs at the same path), and ``molexp run`` of a sweep
whose tasks import a sibling helper and use the run context. Every run succeeds; results,
log lines and artifacts are recorded, naming the worker host that ran each task."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from multihost_helpers import MOLEXP, require_harness, start_on_node

pytest.importorskip("distributed")

SCRIPT = textwrap.dedent(
    """
    import os

    import helpers
    from molexp.workflow import TaskContext, workflow
    from molexp.workspace import Workspace, entry

    wf = workflow(name="sweep")

    @wf.task
    def compute(ctx: TaskContext) -> int:
        value = helpers.square(ctx.params["x"])
        host = os.uname().nodename
        ctx.log("work").append(f"x={ctx.params['x']} on {host}")
        ctx.set_result("value", value)
        ctx.set_result("host", host)
        ctx.artifact.save("value.json", {"value": value, "host": host})
        helpers.pause()
        return value

    ws = Workspace(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab"))
    for x in (1, 2, 3, 4):
        wf.build().bind_to(ws.Project("p").Experiment(f"x{x}", params={"x": x}))
    entry(ws)
    """
)

HELPERS = textwrap.dedent(
    """
    import time

    def square(x):
        return x * x

    def pause():
        time.sleep(0.5)  # lets the scheduler spread the runs over both workers
    """
)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    require_harness()
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        + ["--port", "0", "--dashboard-address", ":0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        address = None
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while address is None and time.monotonic() < deadline:
            found = re.search(
                r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)", process.stdout.readline()
            )
            address = found.group(1) if found else None
        assert address is not None, "the Dask scheduler did not start"
        yield address
    finally:
        _stop(process)


def _wait_for_workers(address: str, count: int, timeout: float) -> None:
    from distributed import Client

    with Client(address, set_as_default=False, timeout=30) as client:
        client.wait_for_workers(count, timeout=timeout)
        hosts = {info["host"] for info in client.scheduler_info()["workers"].values()}
        assert hosts == {"127.0.0.1"}, hosts


def test_a_sweep_on_dask_workers_on_two_hosts(tmp_path: Path, scheduler: str) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "sweep.py").write_text(SCRIPT)
    (share / "helpers.py").write_text(HELPERS)
    (share / "molexp.toml").write_text(
        f'[profiles.cluster]\nruntime = "dask"\naddress = "{scheduler}"\n'
    )
    # Started outside the share: a worker must not find helpers.py on its own sys.path.
    workers = [
        start_on_node(
            node,
            share,
            240,
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            scheduler,
            "--host",
            "127.0.0.1",
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
            cwd=tmp_path,
        )
        for node in ("dask-node-a", "dask-node-b")
    ]
    try:
        _wait_for_workers(scheduler, 2, timeout=120)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
        env["MOLEXP_INDEX_DIR"] = os.environ.get("MOLEXP_INDEX_DIR", str(tmp_path / "index"))
        completed = subprocess.run(
            [*MOLEXP, "run", "sweep.py", "--profile", "cluster", "--jobs", "4", "--json"],
            cwd=share,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        for worker in workers:
            _stop(worker)
    assert completed.returncode == 0, (completed.stdout[-3000:], completed.stderr[-3000:])
    records = [json.loads(path.read_text()) for path in (share / "lab").rglob("run.json")]
    assert len(records) == 4
    assert {record["status"] for record in records} == {"succeeded"}
    worker_hosts = {"dask-node-a", "dask-node-b"}
    for record in records:
        results = record["results"]
        assert results["value"] == record["parameters"]["x"] ** 2
        assert results["host"] in worker_hosts
    hosts = {record["results"]["host"] for record in records}
    for run_json in (share / "lab").rglob("run.json"):
        run_dir = run_json.parent
        host = json.loads(run_json.read_text())["results"]["host"]
        assert (run_dir / "logs" / "work.log").read_text().endswith(f"on {host}\n")
        saved = json.loads((run_dir / "artifacts" / "value.json").read_text())
        assert saved["host"] == host
        [asset] = [
            record
            for path in (run_dir / ".assets").glob("*.json")
            if (record := json.loads(path.read_text()))["kind"] == "artifact"
        ]
        assert asset["producer"]["host"] == host and asset["producer"]["task_name"] == "compute"
    assert hosts <= worker_hosts  # usually both; which worker runs what is the scheduler's choice
