"""What the simulated cluster hosts do: run inside ``on-node`` with ``python node_work.py CMD ...``.

Each command prints one JSON document on stdout (the test reads it); any exception is a
non-zero exit with its traceback on stderr.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sys
import time
from typing import Any

from molexp.workspace import RunStateError, RunStatus, Workspace


def _work(root: str, experiment_id: str, worker: int, runs: int) -> list[str]:
    """Create ``runs`` runs and execute each: a result, a 10-line log and an artifact."""
    experiment = Workspace(root).Project("cluster").Experiment(experiment_id)
    done = []
    for index in range(runs):
        run = experiment.Run(
            id=f"{socket.gethostname()}-w{worker}-r{index}", parameters={"i": index}
        )
        with run.start() as ctx:
            log = ctx.log("train")
            for line in range(10):
                log.append(f"step {line} of run {run.id}")
            ctx.artifact.save("values.json", {"run": run.id, "i": index})
            ctx.set_result("value", worker * 1000 + index)
            ctx.set_result("host", socket.gethostname())
        done.append(run.id)
    return done


def work(root: str, experiment_id: str, processes: int, runs: int) -> dict[str, Any]:
    fork = multiprocessing.get_context("fork")
    with fork.Pool(processes) as pool:
        batches = pool.starmap(
            _work, [(root, experiment_id, worker, runs) for worker in range(processes)]
        )
    return {"host": socket.gethostname(), "runs": [run for batch in batches for run in batch]}


def query_until(root: str, expected: int, timeout: float) -> dict[str, Any]:
    """Query like a login node until ``expected`` runs succeeded; every answer is recorded."""
    ws = Workspace(root)
    deadline = time.monotonic() + timeout
    queries = 0
    seen = 0
    while time.monotonic() < deadline:
        rows = ws.runs()
        queries += 1
        seen = sum(1 for row in rows if row.status is RunStatus.succeeded)
        if seen >= expected:
            break
        time.sleep(0.2)
    return {"queries": queries, "succeeded": seen}


def index_snapshot(ws: Workspace) -> dict[str, Any]:
    """Everything the run index and the asset catalog answer."""
    runs = sorted(ws.runs().to_records(), key=lambda r: (r["project"], r["experiment"], r["id"]))
    assets = sorted(
        (asset.model_dump(mode="json") for asset in ws.catalog.query_assets()),
        key=lambda a: a["id"],
    )
    return {"runs": json.loads(json.dumps(runs, default=str)), "assets": assets}


def check_index(root: str) -> dict[str, Any]:
    """This host's index as it answers now, and after a rebuild from the records."""
    ws = Workspace(root)
    before = index_snapshot(ws)
    report = ws.rebuild_index()
    after = index_snapshot(ws)
    return {
        "host": socket.gethostname(),
        "equal": before == after,
        "runs": len(after["runs"]),
        "assets": len(after["assets"]),
        "broken": [str(item.path) for item in report.broken]
        + [str(item.path) for item in ws.broken_records()],
    }


def race_start(root: str, run_ids: list[str], go: float, spacing: float) -> dict[str, Any]:
    """Start each run at its moment (``go + i * spacing``); report who won each."""
    experiment = Workspace(root).project("cluster").experiment("races")
    outcomes = []
    for index, run_id in enumerate(run_ids):
        run = experiment.get_run(run_id)
        time.sleep(max(0.0, go + index * spacing - time.time()))
        began = time.time()
        try:
            context = run.start()
            context.__enter__()
        except RunStateError as exc:
            outcomes.append({"run": run_id, "won": False, "error": str(exc), "began": began})
            continue
        outcomes.append({"run": run_id, "won": True, "pid": os.getpid(), "began": began})
        # Held while the others try (a start after the winner finished is a new attempt);
        # on sshfs a reader may need up to a second to see a replaced file's new size.
        time.sleep(spacing * 0.8)
        context.__exit__(None, None, None)
    return {"host": socket.gethostname(), "outcomes": outcomes}


COMMANDS = {
    "work": lambda a: work(a[0], a[1], int(a[2]), int(a[3])),
    "query-until": lambda a: query_until(a[0], int(a[1]), float(a[2])),
    "check-index": lambda a: check_index(a[0]),
    "race-start": lambda a: race_start(a[0], a[1].split(","), float(a[2]), float(a[3])),
}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](sys.argv[2:])))
