"""R1: concurrent writers lose nothing, tear nothing, leave nothing behind.

Eight processes each create 250 runs in one experiment through the real
``run.start()`` lifecycle; every run appends 20 log lines, saves an artifact and imports
a small data asset into the experiment. Afterwards the record must be exactly what was
written: 2,000 runs, every ``run.json`` valid and ``succeeded``, every log 20 intact lines
in order, the run index and asset catalog equal to a rebuild from the files, no temp
file, no lock file and no lock held.

Record locks leave no file behind: on a local filesystem they are ``flock``s on the
record's directory (see ``molexp.assets._locks``), and the test asserts that no lock file
exists (on a network filesystem, that only hidden per-record lock files exist).

Three ``molexp run`` processes (two in-process, one with ``--jobs 2``) started together
on one script never execute a run twice: each task invocation appends to a side-effect
file, and every (run, task) pair appears exactly once.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

from molexp.assets import DataAsset, LogAsset
from molexp.assets._locks import directory_locking
from molexp.workspace import RunStatus, Workspace
from reliability_helpers import (
    assert_no_lock_held,
    fresh_catalog_snapshot,
    index_snapshot,
    lock_files,
    molexp_popen,
    temp_files,
    validate_workspace,
)

WORKERS = 8
RUNS_PER_WORKER = 250
LOG_LINES = 20
_fork = multiprocessing.get_context("fork")
_LINE = re.compile(r"^(?P<run>[0-9a-f]{12}) line (?P<n>\d{2}) (?P<pad>x{48})$")


def _create_runs(root: Path, worker: int, source: Path) -> None:
    exp = Workspace(root).Project("reliability").Experiment("shared")
    for index in range(RUNS_PER_WORKER):
        run = exp.Run(parameters={"worker": worker, "index": index})
        with run.start() as ctx:
            log = ctx.log("train")
            for line in range(LOG_LINES):
                log.append(f"{run.id} line {line:02d} {'x' * 48}")
            ctx.artifact.save("metrics.json", {"worker": worker, "index": index})
            ctx.data_assets.import_asset(f"data-{worker}-{index}", source)
            ctx.set_result("value", worker * 1000 + index)


def test_eight_processes_create_2000_complete_runs(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    source = tmp_path / "sample.csv"
    source.write_text("a,b\n1,2\n")
    Workspace(root).Project("reliability").Experiment("shared")
    workers = [
        _fork.Process(target=_create_runs, args=(root, worker, source)) for worker in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    total = WORKERS * RUNS_PER_WORKER

    check = validate_workspace(root)
    assert check.records["run.json"] == total
    runs = list(check.runs.values())
    assert all(run.status is RunStatus.succeeded for run in runs)
    assert sorted(run.results["value"] for run in runs) == sorted(
        w * 1000 + i for w in range(WORKERS) for i in range(RUNS_PER_WORKER)
    )
    assert all(len(run.execution_history) == 1 for run in runs)
    # artifacts, logs and data assets: one each per run; checked JSON payloads decode
    assert check.assets == 3 * total
    assert check.json_payloads == total

    for run_dir, run in check.runs.items():
        lines = (Path(run_dir) / "logs" / "train.log").read_text().splitlines()
        matches = [_LINE.match(line) for line in lines]
        assert all(matches), (run_dir, lines)
        assert [(m["run"], int(m["n"])) for m in matches if m] == [
            (run.id, n) for n in range(LOG_LINES)
        ]
        metrics = json.loads((Path(run_dir) / "artifacts" / "metrics.json").read_text())
        assert metrics == {k: run.parameters[k] for k in ("worker", "index")}

    ws = Workspace(root)
    before = index_snapshot(ws)
    runs_before, assets_before = before
    assert len(runs_before) == total
    logs = ws.catalog.query_assets(kind="log")
    assert len(logs) == total
    assert all(isinstance(a, LogAsset) and a.line_count == LOG_LINES for a in logs)
    data = ws.catalog.query_assets(kind="data")
    assert len(data) == total and all(isinstance(a, DataAsset) for a in data)
    assert {(root / a.path).read_text() for a in data} == {source.read_text()}

    report = ws.rebuild_index()
    assert (report.runs, report.broken, report.assets.broken) == (total, (), ())
    assert report.assets.indexed == len(assets_before) == 3 * total
    assert index_snapshot(ws) == before
    assert fresh_catalog_snapshot(root, ws.id) == assets_before

    assert temp_files(root) == []
    if directory_locking(root.stat().st_dev, root):
        assert lock_files(root) == []  # record locks are directory flocks: no files
    else:  # a network filesystem: one persistent .<record>.lock per locked record
        assert all(path.name.startswith(".") for path in lock_files(root))
    assert assert_no_lock_held(root) > total


SCRIPT = """
import os
import time
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="twice")


def note(ctx: TaskContext, task: str) -> None:
    line = f"{{ctx.run_context.run.id}} {{task}} {{os.getpid()}} {{time.monotonic()}}\\n"
    fd = os.open(HERE / "calls.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@wf.task
def prepare(ctx: TaskContext) -> int:
    note(ctx, "prepare")
    time.sleep(0.1)
    return 1


@wf.task(depends_on=["prepare"])
def train(ctx: TaskContext) -> int:
    note(ctx, "train")
    time.sleep(0.1)
    ctx.set_result("value", ctx.inputs)
    return ctx.inputs


spec = wf.build()
ws = me.Workspace(HERE / "lab")
exp = ws.Project("demo").Experiment("race", params={{"lr": 0.1}}, n_replicas={replicas})
spec.bind_to(exp)
me.entry(ws)
"""
REPLICAS = 16


def test_three_molexp_run_processes_never_execute_a_run_twice(tmp_path: Path) -> None:
    script = tmp_path / "race.py"
    script.write_text(SCRIPT.format(replicas=REPLICAS))
    processes = [
        molexp_popen("run", script, "--json", cwd=tmp_path),
        molexp_popen("run", script, "--json", cwd=tmp_path),
        molexp_popen("run", script, "--json", "--jobs", "2", cwd=tmp_path),
    ]
    reports = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        reports.append(json.loads(stdout))

    calls = [line.split() for line in (tmp_path / "calls.txt").read_text().splitlines()]
    run_ids = {run["run_id"] for run in reports[0]["runs"]}
    assert len(run_ids) == REPLICAS
    per_pair: dict[tuple[str, str], int] = {}
    for run_id, task, _pid, _when in calls:
        per_pair[(run_id, task)] = per_pair.get((run_id, task), 0) + 1
    assert per_pair == {(run_id, task): 1 for run_id in run_ids for task in ("prepare", "train")}
    assert len({pid for _run, _task, pid, _when in calls}) >= 2, "the processes did not race"
    assert sum(report["executed"] for report in reports) == REPLICAS
    assert sum(report["skipped"] for report in reports) == 2 * REPLICAS
    ws = Workspace(tmp_path / "lab")
    assert {r.status for r in ws.runs()} == {"succeeded"}
    race = ws.project("demo").experiment("race")
    assert all(len(run.metadata.execution_history) == 1 for run in race.list_runs())
    assert temp_files(tmp_path / "lab") == []
