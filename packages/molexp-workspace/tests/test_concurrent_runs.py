"""Several processes writing one experiment at once lose nothing."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

from molexp.workspace import RunStatus, Workspace

PROCESSES = 4
RUNS_PER_PROCESS = 100
_fork = multiprocessing.get_context("fork")


def _create_runs(root: Path, worker: int) -> None:
    exp = Workspace(root).Project("QM9").Experiment("shared", params={"lr": 1e-3})
    for index in range(RUNS_PER_PROCESS):
        run = exp.Run(parameters={"worker": worker, "index": index})
        with run.start() as ctx:
            ctx.set_result("value", worker * 1000 + index)


def _claim_one_id(root: Path, worker: int) -> None:
    exp = Workspace(root).Project("QM9").Experiment("shared")
    exp.Run(parameters={"worker": worker}, id="contested")


def _run_workers(target: Callable[[Path, int], None], root: Path) -> None:
    workers = [_fork.Process(target=target, args=(root, n)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0


def test_four_processes_create_400_runs(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    Workspace(root).materialize()
    _run_workers(_create_runs, root)
    exp = Workspace(root).project("qm9").experiment("shared")
    runs = exp.list_runs()
    assert len(runs) == PROCESSES * RUNS_PER_PROCESS
    assert all(run.status is RunStatus.succeeded for run in runs)
    values = sorted(run.results["value"] for run in runs)
    assert values == sorted(w * 1000 + i for w in range(PROCESSES) for i in range(RUNS_PER_PROCESS))
    # A forked worker exits without running atexit: the index rows it had not flushed yet
    # reach the index when a reader catches up with the change feed.
    reader = Workspace(root)
    assert reader.run_status_counts() == {"succeeded": PROCESSES * RUNS_PER_PROCESS}
    with sqlite3.connect(reader.catalog.db_path) as connection:
        rows = connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    assert rows == [("succeeded", PROCESSES * RUNS_PER_PROCESS)]
    assert Workspace(root).broken_records() == []


def test_processes_racing_for_one_explicit_id_share_one_run(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    Workspace(root).materialize()
    _run_workers(_claim_one_id, root)
    exp = Workspace(root).project("qm9").experiment("shared")
    (run,) = exp.list_runs()
    assert run.id == "contested"
    assert run.parameters["worker"] in range(PROCESSES)
    assert [p.id for p in Workspace(root).list_projects()] == ["qm9"]
