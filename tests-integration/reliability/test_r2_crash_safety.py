"""R2: SIGKILL at any moment never leaves a half record, and every killed run recovers.

Python workers: 100 runs, each executed by a forked worker doing the real
``run.start()`` lifecycle (log lines, an artifact, a checkpoint, a cache entry and a
heartbeat - a ``run.json`` write - per step) that the test SIGKILLs at a random moment.
Every atomic write sleeps between writing its temp file and renaming it (the
``MOLEXP_TEST_SLOW_WRITES`` hook; a forked worker sets the value its import would have
read), so kills land inside writes too. The phase each kill hit is recorded. Afterwards
every record and JSON payload parses, every cache entry loads, every log line is whole,
``reap_stale_runs`` turns exactly the runs left ``running`` into ``failed``, and a new
worker completes every unfinished run: then payloads match their records, checkpoint
chains are linear, and the run index and catalog equal a rebuild.

The CLI: ``molexp run --jobs 2`` executes a sweep as ``molexp execute RUN_DIR``
subprocesses, which a helper thread SIGKILLs at random moments; ``molexp reap`` then
fails exactly the runs left running and ``molexp run --rerun-failed`` completes them.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from molexp.assets import AssetKind, CheckpointAsset, LogAsset, _io
from molexp.assets._hashing import digest_payload
from molexp.workflow import Caching, TaskSnapshot, WorkspaceCacheStore
from molexp.workspace import RunStatus, Workspace, reap_stale_runs
from reliability_helpers import (
    index_snapshot,
    molexp,
    molexp_popen,
    temp_files,
    validate_workspace,
)

RUNS = 100
STEPS = 4
SLOW_WRITE_SECONDS = 0.004
SEED = 20260101
_fork = multiprocessing.get_context("fork")
PHASES = [
    "not started",
    "entering (run.json write)",
    "task code",
    "log append",
    "artifact write",
    "checkpoint write",
    "cache entry write",
    "heartbeat (run.json write)",
    "exiting (run.json write)",
    "done",
]
_LOG_LINE = re.compile(r"^step \d{3} y{32}$")


def cached_square(value: int) -> int:
    return value * value


def _work(root: Path, run_id: str, phase: ctypes.c_int, slow: float) -> None:
    _io._SLOW_WRITES = slow  # what MOLEXP_TEST_SLOW_WRITES gives a freshly started process
    ws = Workspace(root)
    run = ws.project("crash").experiment("kill").get_run(run_id)
    cache = Caching(store=WorkspaceCacheStore(ws))
    snapshot = TaskSnapshot.from_callable(cached_square, task_id="square")
    phase.value = 1
    with run.start() as ctx:
        for step in range(STEPS):
            phase.value = 2
            time.sleep(0.002)
            phase.value = 3
            ctx.log("train").append(f"step {step:03d} {'y' * 32}")
            phase.value = 4
            ctx.artifact.save("metrics.json", {"run": run_id, "step": step})
            phase.value = 5
            ctx.checkpoint("step", {"step": step})
            phase.value = 6
            cache.put(snapshot, {"run": run_id, "step": step}, cached_square(step))
            phase.value = 7
            ctx.heartbeat()
        phase.value = 8
    phase.value = 9


def _execute(root: Path, run_id: str, *, kill_after: float | None, slow: float) -> int:
    """Run one worker; SIGKILL it after ``kill_after`` seconds. Returns the phase reached."""
    phase = _fork.RawValue(ctypes.c_int, 0)  # no lock: a killed worker must not hold one
    worker = _fork.Process(target=_work, args=(root, run_id, phase, slow))
    worker.start()
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join(60)
    assert worker.exitcode in (0, -signal.SIGKILL), worker.exitcode
    return int(phase.value) if worker.exitcode else len(PHASES) - 1


def _assert_payloads_match_records(ws: Workspace) -> int:
    checked = 0
    for asset in ws.catalog.query_assets():
        if asset.kind in (AssetKind.ARTIFACT, AssetKind.CHECKPOINT, AssetKind.DATA):
            digest = digest_payload(ws.root / asset.path)
            assert (digest.content_hash, digest.size) == (asset.content_hash, asset.size), asset
            checked += 1
    return checked


def test_100_runs_killed_at_random_moments_recover(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    exp = Workspace(root).Project("crash").Experiment("kill")
    run_ids = [exp.Run(id=f"r{index:03d}").id for index in range(RUNS)]
    rng = random.Random(SEED)

    began = time.monotonic()  # calibration: how long one undisturbed (slowed) run takes
    _execute(root, "r000", kill_after=None, slow=SLOW_WRITE_SECONDS)
    calibration = exp.get_run("r000")
    # The calibration run is the coldest (first fork, empty caches): later runs are faster, so
    # kill moments are drawn from its first three quarters to land inside runs, not after them.
    horizon = 0.75 * (time.monotonic() - began)
    kills: Counter[str] = Counter()
    for run_id in run_ids[1:]:
        moment = rng.uniform(0.0, horizon)
        kills[PHASES[_execute(root, run_id, kill_after=moment, slow=SLOW_WRITE_SECONDS)]] += 1
    killed = sum(count for phase, count in kills.items() if phase != "done")
    assert killed >= 80, kills
    for phase in ("task code", "artifact write", "checkpoint write", "heartbeat (run.json write)"):
        assert kills[phase] > 0, kills

    # Every record is whole: old or new version, never half.
    check = validate_workspace(root)
    assert check.records["run.json"] == RUNS
    store = WorkspaceCacheStore(Workspace(root))
    cache_keys = store.keys()
    for key in cache_keys:
        entry = store.load(key)
        assert entry is not None and entry.task_id == "square"
    for run_dir in check.runs:
        log = Path(run_dir) / "logs" / "train.log"
        if log.exists():
            assert all(_LOG_LINE.match(line) for line in log.read_text().splitlines()), log

    # Exactly the runs left running are reaped.
    ws = Workspace(root)
    running = {run.id for run in check.runs.values() if run.status is RunStatus.running}
    reaped = reap_stale_runs(ws)
    assert {run.id for run in reaped} == running
    assert all(run.metadata.error and run.metadata.error.type == "StaleRun" for run in reaped)
    assert len(running) >= kills["heartbeat (run.json write)"]
    # Reaping also repaired what the dead writers left unindexed: index == rebuild.
    after_reap = index_snapshot(ws)
    assert (ws.rebuild_index().broken, index_snapshot(ws)) == ((), after_reap)

    # A new worker completes every unfinished run.
    unfinished = [run.id for run in exp.list_runs() if run.status is not RunStatus.succeeded]
    for run_id in unfinished:
        assert _execute(root, run_id, kill_after=None, slow=0.0) == len(PHASES) - 1
    ws = Workspace(root)
    runs = ws.project("crash").experiment("kill").list_runs()
    assert {run.status for run in runs} == {RunStatus.succeeded}
    for run in runs:
        history = [attempt.status for attempt in run.metadata.execution_history]
        expected_failed = 1 if run.id in running else 0
        assert history == [RunStatus.failed] * expected_failed + [RunStatus.succeeded], run.id
        assert ws.catalog.query_assets(kind="artifact", producer_run=run.id)
        chain = sorted(
            (a for a in ws.catalog.query_assets(kind="checkpoint", producer_run=run.id)),
            key=lambda a: a.sequence if isinstance(a, CheckpointAsset) else 0,
        )
        assert [a.sequence for a in chain if isinstance(a, CheckpointAsset)] == list(
            range(1, len(chain) + 1)
        )
        parents = [a.parent_id for a in chain if isinstance(a, CheckpointAsset)]
        assert parents == [None, *(a.id for a in chain[:-1])], run.id
    assert calibration.status is RunStatus.succeeded
    assert _assert_payloads_match_records(ws) >= 2 * RUNS
    # Each attempt logged to its own file (empty when killed between opening it and writing);
    # a killed attempt's record was brought up to date by the next attempt; the latest
    # attempt's log (and the run's view of it) has every step.
    logs = ws.catalog.query_assets(kind="log")
    assert len(logs) >= RUNS
    for log_asset in logs:
        assert isinstance(log_asset, LogAsset)
        lines = (ws.root / log_asset.path).read_text().splitlines()
        assert log_asset.line_count == len(lines), log_asset
        assert all(_LOG_LINE.match(line) for line in lines), log_asset
    for run in runs:
        latest = run.attempt(-1).read_log("train")
        assert latest.count("\n") == STEPS, run.id
        assert (run.run_dir / "logs" / "train.log").read_text() == latest, run.id

    before = index_snapshot(ws)
    report = ws.rebuild_index()
    assert (report.broken, report.assets.broken) == ((), ())
    assert index_snapshot(ws) == before
    # Temp files of killed writers stay hidden: nothing above read them.
    leftovers = temp_files(root)
    assert all(path.name.startswith(".") for path in leftovers)
    summary = f"{RUNS} runs, {killed} killed, {len(running)} reaped"
    print(f"\nR2 python workers: {summary}; kills by phase {dict(kills)}")


SCRIPT = """
import time
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="crashy")


@wf.task
def prepare(ctx: TaskContext) -> list[int]:
    ctx.log("prepare").append("prepared")
    return list(range(4))


@wf.task(depends_on=["prepare"])
def train(ctx: TaskContext) -> int:
    for step in ctx.inputs:
        ctx.artifact.save("metrics.json", {{"step": step}})
        ctx.checkpoint("step", {{"step": step}})
        ctx.set_result("step", step)
        time.sleep(0.02)
    return len(ctx.inputs)


@wf.task(depends_on=["train"], cache=True)
def summarize(ctx: TaskContext) -> int:
    return ctx.inputs * 2


spec = wf.build()
ws = me.Workspace(HERE / "lab")
exp = ws.Project("demo").Experiment("crash", params={{"lr": 0.1}}, n_replicas={replicas})
spec.bind_to(exp)
me.entry(ws)
"""
CLI_RUNS = 12


def _children(parent: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent:
            found.append((int(entry.name), cmdline))
    return found


def _kill_workers(
    driver: int, rng: random.Random, stop: threading.Event, killed: list[int]
) -> None:
    seen: set[int] = set()
    while not stop.is_set():
        for pid, cmdline in _children(driver):
            if pid in seen or " execute " not in cmdline:
                continue
            seen.add(pid)
            if rng.random() < 0.9:
                timer = threading.Timer(rng.uniform(0.2, 1.0), _sigkill, (pid, killed))
                timer.daemon = True
                timer.start()
        time.sleep(0.01)


def _sigkill(pid: int, killed: list[int]) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    killed.append(pid)


def _run_records(root: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for path in root.glob("projects/*/experiments/*/runs/run-*/run.json"):
        record = json.loads(path.read_bytes())
        records[record["id"]] = record
    return records


def test_molexp_execute_workers_killed_at_random_are_reaped_and_rerun(tmp_path: Path) -> None:
    script = tmp_path / "crashy.py"
    script.write_text(SCRIPT.format(replicas=CLI_RUNS))
    slow = {"MOLEXP_TEST_SLOW_WRITES": str(SLOW_WRITE_SECONDS)}

    driver = molexp_popen("run", script, "--jobs", "2", "--json", cwd=tmp_path, env=slow)
    stop, killed = threading.Event(), list[int]()
    killer = threading.Thread(
        target=_kill_workers, args=(driver.pid, random.Random(SEED), stop, killed)
    )
    killer.start()
    try:
        stdout, stderr = driver.communicate(timeout=240)
    finally:
        stop.set()
        killer.join()
    assert driver.returncode in (0, 1), stderr
    assert len(json.loads(stdout)["runs"]) == CLI_RUNS
    assert killed, "no worker was killed"

    root = tmp_path / "lab"
    validate_workspace(root)
    running = {run_id for run_id, r in _run_records(root).items() if r["status"] == "running"}
    reaped = molexp("reap", "--json", cwd=tmp_path, env={"MOLEXP_WORKSPACE": str(root)})
    assert reaped.returncode == 0, reaped.stderr
    assert {r["id"] for r in json.loads(reaped.stdout)} == running

    rerun = molexp("run", script, "--rerun-failed", "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    records = _run_records(root)
    assert len(records) == CLI_RUNS
    assert {r["status"] for r in records.values()} == {"succeeded"}
    assert all(r["results"].get("step") == 3 for r in records.values()), records
    check = validate_workspace(root)
    assert check.records["run.json"] == CLI_RUNS
    ws = Workspace(root)
    before = index_snapshot(ws)
    report = ws.rebuild_index()
    assert (report.broken, report.assets.broken) == ((), ())
    assert index_snapshot(ws) == before
    assert _assert_payloads_match_records(ws) >= 2 * CLI_RUNS
    assert all(path.name.startswith(".") for path in temp_files(root))
    print(f"\nR2 molexp execute: {CLI_RUNS} runs, {len(killed)} killed, {len(running)} reaped")


JOURNAL_SCRIPT = """
import os
import signal
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="journaled")


@wf.task
def measure(ctx: TaskContext) -> str:
    ctx.set_result("measured", 42)  # held back: set within a second of the run's last write
    return "x" * (9 * 1024 * 1024)  # a big output is journaled at once


@wf.task(depends_on=["measure"])
def crash(ctx: TaskContext) -> int:
    if (HERE / "crash").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return len(ctx.inputs)


spec = wf.build()
ws = me.Workspace(HERE / "lab")
spec.bind_to(ws.Project("demo").Experiment("journal"))
me.entry(ws)
"""


def test_a_task_journaled_before_a_crash_keeps_its_results(tmp_path: Path) -> None:
    """The next attempt resumes a journaled task instead of running it: its results must
    have reached run.json before the journal said it was done."""
    script = tmp_path / "journaled.py"
    script.write_text(JOURNAL_SCRIPT)
    (tmp_path / "crash").touch()
    crashed = molexp("run", script, "--json", cwd=tmp_path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    (tmp_path / "crash").unlink()
    rerun = molexp("run", script, "--rerun-failed", "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    [record] = _run_records(tmp_path / "lab").values()
    assert record["status"] == "succeeded"
    assert [a["status"] for a in record["execution_history"]] == ["failed", "succeeded"]
    [state_file] = (tmp_path / "lab").rglob("state.json")
    assert json.loads(state_file.read_text())["resumed"] == ["measure"]
    assert record["results"] == {"measured": 42}
