"""Overhead of executing a workflow under a real workspace run; every figure is a ratio.

P3  a 1,000-task random DAG of no-op async tasks (the P1 DAG of ``bench_workflow.py``) executed
    with ``spec.execute(run=run)`` (a fresh ``Run`` of a temporary workspace each repetition) vs
    ``spec.execute()`` without a run, in the same process. Target <= 1.5x (issue 15; it was 3x).

Then where the difference goes, each part timed on its own (best of several repetitions, fresh
run each time) and shown as a ratio against the same no-run execution:

- run lifecycle: ``with run.start(workflow=...)`` (enter with the workflow snapshot, exit:
  two run.json writes, their run-index rows queued on the workspace object and written in batches
  of up to 64 or once a second; the terminal write is fsynced);
- resume plan: task snapshots, pickling 1,000 journal records, writing and closing the journal;
- execution state: ``result.to_state()``, then ``record_execution_state`` (state.json, compact
  JSON with one entry per task, plus its asset record and catalog row, both fsynced), and its
  JSON encoding alone (the encoder ``record_execution_state`` uses, and ``json.dumps`` for
  comparison);
- fsync: how many ``os.fsync`` calls one execution under a run makes and the time spent in them;
- the floor: the files one execution under a run leaves (``run.json`` written when the attempt
  starts and durably at its end, the output journal, ``state.json`` and its asset record, both
  durable), written with the same bytes and durability and nothing else: no per-task work, no
  locks, index or change feed. ``1 + floor / no-run`` is the best ratio any implementation
  writing those records could reach.

Run: ``python benchmarks/bench_run_overhead.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from molexp.assets._execution import encode_state
from molexp.workflow import TaskContext, Workflow, WorkflowBuilder
from molexp.workflow._resume import ResumePlan
from molexp.workspace import Experiment, Workspace

TASKS = 1_000
REPEATS = 9

Job = Callable[[], Awaitable[Any]]


def random_dag(size: int) -> list[list[int]]:
    """Task ``i`` depends on ``random.Random(0).sample(range(i), min(i, 3))`` (P1's DAG)."""
    rng = random.Random(0)
    return [rng.sample(range(i), min(i, 3)) for i in range(size)]


async def _noop(ctx: TaskContext) -> None:
    return None


def build_dag_workflow(dag: list[list[int]]) -> Workflow:
    builder = WorkflowBuilder(name="bench-dag")
    for i, deps in enumerate(dag):
        builder.task(name=f"t{i}", depends_on=[f"t{d}" for d in deps])(_noop)
    return builder.build()


def best_of(repeats: int, prepare: Callable[[contextlib.ExitStack], Job]) -> float:
    """Best wall time of ``await job()``; ``prepare`` builds each job untimed (and its cleanup)."""

    async def timed() -> float:
        best = float("inf")
        for _ in range(repeats):
            with contextlib.ExitStack() as cleanup:
                job = prepare(cleanup)
                gc.collect()
                start = time.perf_counter()
                await job()
                best = min(best, time.perf_counter() - start)
        return best

    return asyncio.run(timed())


@contextlib.contextmanager
def counting_fsync() -> Iterator[list[float]]:
    """Patch ``os.fsync`` to record the duration of every call made inside the block."""
    original = os.fsync
    durations: list[float] = []

    def timed_fsync(fd: Any) -> None:
        start = time.perf_counter()
        original(fd)
        durations.append(time.perf_counter() - start)

    os.fsync = timed_fsync
    try:
        yield durations
    finally:
        os.fsync = original


def main() -> None:
    spec = build_dag_workflow(random_dag(TASKS))
    root = Path(tempfile.mkdtemp(prefix="molexp-bench-run-"))
    try:
        experiment = Workspace(root / "lab").Project("bench").Experiment("overhead")
        asyncio.run(spec.execute())  # compile and warm up outside the timings
        without = best_of(REPEATS, lambda cleanup: spec.execute)
        under = best_of(REPEATS, lambda cleanup: _under_run(spec, experiment))
        print(
            f"P3 {TASKS}-task random DAG: without a run {without * 1e3:.1f} ms, under a "
            f"workspace run {under * 1e3:.1f} ms, ratio {under / without:.2f}x (target <= 1.5x)"
        )
        parts = _parts(spec, experiment)
        for label, seconds in parts.items():
            print(f"    {label:<44} {seconds * 1e3:6.2f} ms = {seconds / without:.2f}x no-run")
        floor = parts["floor: the same files written, nothing else"]
        print(f"    best reachable ratio writing those records: {1 + floor / without:.2f}x")
        with counting_fsync() as durations:
            asyncio.run(spec.execute(run=experiment.Run()))
        spent = sum(durations)
        print(
            f"    fsync calls in one execution under a run: {len(durations)}, "
            f"{spent * 1e3:.2f} ms = {spent / without:.2f}x no-run"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _under_run(spec: Workflow, experiment: Experiment) -> Job:
    run = experiment.Run()
    return lambda: spec.execute(run=run)


def _parts(spec: Workflow, experiment: Experiment) -> dict[str, float]:
    payload = {"workflow_id": spec.workflow_id, "workflow_name": spec.name, "name": spec.name}
    sample = experiment.Run()
    result = asyncio.run(spec.execute(run=sample))
    state = result.to_state()
    written = _written_files(sample.run_dir)

    def lifecycle(cleanup: contextlib.ExitStack) -> Job:
        run = experiment.Run()

        async def job() -> None:
            with run.start(workflow=payload):  # as the lifecycle opens a workspace run
                pass

        return job

    def plan(cleanup: contextlib.ExitStack) -> Job:
        context = cleanup.enter_context(experiment.Run().start())

        async def job() -> None:
            opened = ResumePlan.open(
                spec,
                run_dir=context.run_dir,
                execution_id=context.execution_id,
                execution_dir=context.execution_dir,
                run_config={},
                inputs=None,
                resume=True,
            )
            for name in spec.tasks:
                opened.record_success(name, None)
            opened.close()

        return job

    def to_state(cleanup: contextlib.ExitStack) -> Job:
        async def job() -> None:
            result.to_state()

        return job

    def record_state(cleanup: contextlib.ExitStack) -> Job:
        context = cleanup.enter_context(experiment.Run().start())

        async def job() -> None:
            context.record_execution_state(state)

        return job

    def encode(cleanup: contextlib.ExitStack) -> Job:
        async def job() -> None:
            encode_state(state, "bench")

        return job

    def encode_json_dumps(cleanup: contextlib.ExitStack) -> Job:
        async def job() -> None:
            json.dumps(state, ensure_ascii=False, separators=(",", ":"))

        return job

    return {
        "run lifecycle (start with the workflow, end)": best_of(REPEATS, lifecycle),
        "resume plan + output journal": best_of(REPEATS, plan),
        "result.to_state()": best_of(REPEATS, to_state),
        "record_execution_state (molexp.assets)": best_of(REPEATS, record_state),
        "  of which state.json encoding": best_of(REPEATS, encode),
        "  (the same with json.dumps, for comparison)": best_of(REPEATS, encode_json_dumps),
        "floor: the same files written, nothing else": best_of(
            REPEATS, lambda cleanup: _write_floor(cleanup, written)
        ),
    }


def _written_files(run_dir: Path) -> dict[str, bytes]:
    """The bytes of the records one execution under a run wrote (asserting each exists once)."""
    found = {
        "run": [run_dir / "run.json"],
        "journal": list(run_dir.glob("execution/*/task-outputs/journal.bin")),
        "state": list(run_dir.glob("execution/*/state.json")),
        "asset": list(run_dir.glob(".assets/*.json")),
    }
    assert all(len(paths) == 1 for paths in found.values()), found
    return {kind: paths[0].read_bytes() for kind, paths in found.items()}


def _write_file(path: Path, data: bytes, *, durable: bool) -> None:
    """Temp file + ``os.replace``; durable adds the file's and its directory's ``fsync``."""
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    temp.replace(path)
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _write_floor(cleanup: contextlib.ExitStack, written: dict[str, bytes]) -> Job:
    run_dir = Path(tempfile.mkdtemp(prefix="molexp-bench-floor-"))
    cleanup.callback(shutil.rmtree, run_dir, True)

    async def job() -> None:
        _write_file(run_dir / "run.json", written["run"], durable=False)  # the attempt starts
        outputs = run_dir / "execution" / "attempt" / "task-outputs"
        outputs.mkdir(parents=True)
        _write_file(outputs / "journal.bin", written["journal"], durable=False)
        _write_file(outputs.parent / "state.json", written["state"], durable=True)
        (run_dir / ".assets").mkdir()
        _write_file(run_dir / ".assets" / "state.json", written["asset"], durable=True)
        _write_file(run_dir / "run.json", written["run"], durable=True)  # the attempt ends

    return job


if __name__ == "__main__":
    main()
