"""Workflow runtime benchmarks; every figure is a ratio against a reference measured in this run.

P1  per-task overhead of ``spec.execute()`` on a 10,000-task random DAG of no-op async tasks vs a
    raw-asyncio implementation of the same DAG (each task an asyncio task awaiting its deps).
P2  makespan of chain A (1 task x 1.0 s) in parallel with chain B (10 tasks x 0.1 s) divided by
    the critical path (1.0 s): dependency-driven scheduling keeps it close to 1.
P6  wall time of ``python -c "import molexp.workflow"`` vs ``python -c "import pydantic"``.

Run: ``python benchmarks/bench_workflow.py``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from molexp.workflow import TaskContext, Workflow, WorkflowBuilder

P1_TASKS = 10_000
P1_REPEATS = 5


def random_dag(size: int) -> list[list[int]]:
    """Task ``i`` depends on ``random.Random(0).sample(range(i), min(i, 3))``."""
    rng = random.Random(0)
    return [rng.sample(range(i), min(i, 3)) for i in range(size)]


async def _noop(ctx: TaskContext) -> None:
    return None


def build_dag_workflow(dag: list[list[int]]) -> Workflow:
    builder = WorkflowBuilder(name="bench-dag")
    for i, deps in enumerate(dag):
        builder.task(name=f"t{i}", depends_on=[f"t{d}" for d in deps])(_noop)
    return builder.build()


async def raw_asyncio_dag(dag: list[list[int]]) -> None:
    """Reference: one asyncio task per DAG node awaiting its dependencies' tasks."""
    tasks: list[asyncio.Task[None]] = []

    async def node(deps: list[int]) -> None:
        for dep in deps:
            await tasks[dep]

    for deps in dag:
        tasks.append(asyncio.create_task(node(deps)))
    await asyncio.gather(*tasks)


def best_of(repeats: int, run: Callable[[], Awaitable[Any]]) -> float:
    async def timed() -> float:
        gc.collect()
        start = time.perf_counter()
        await run()
        return time.perf_counter() - start

    return min(asyncio.run(timed()) for _ in range(repeats))


def bench_p1() -> None:
    dag = random_dag(P1_TASKS)
    spec = build_dag_workflow(dag)
    raw = best_of(P1_REPEATS, lambda: raw_asyncio_dag(dag))
    ours = best_of(P1_REPEATS, lambda: spec.execute())
    raw_us = raw / P1_TASKS * 1e6
    ours_us = ours / P1_TASKS * 1e6
    print(
        f"P1 per-task overhead, {P1_TASKS}-task random DAG: raw asyncio {raw_us:.2f} us/task, "
        f"spec.execute {ours_us:.2f} us/task, ratio {ours / raw:.2f}x (target <= 2.5x)"
    )


def bench_p2() -> None:
    builder = WorkflowBuilder(name="bench-makespan")

    async def long_task(ctx: TaskContext) -> None:
        await asyncio.sleep(1.0)

    async def short_task(ctx: TaskContext) -> None:
        await asyncio.sleep(0.1)

    builder.task(name="a0")(long_task)
    for i in range(10):
        builder.task(name=f"b{i}", depends_on=[f"b{i - 1}"] if i else None)(short_task)
    spec = builder.build()
    critical_path = 1.0
    makespan = best_of(1, lambda: spec.execute())
    print(
        f"P2 makespan / critical path: {makespan:.3f} s / {critical_path:.3f} s = "
        f"{makespan / critical_path:.3f} (target <= 1.05)"
    )


def _import_seconds(module: str, repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        timings.append(time.perf_counter() - start)
    return min(timings)


def bench_p6() -> None:
    ours = _import_seconds("molexp.workflow")
    reference = _import_seconds("pydantic")
    bare = _import_seconds("sys")
    print(
        f"P6 import wall time: molexp.workflow {ours * 1e3:.1f} ms, "
        f"pydantic {reference * 1e3:.1f} ms "
        f"(bare interpreter {bare * 1e3:.1f} ms), ratio {ours / reference:.2f}x "
        f"(target: molexp.workflow < 150 ms)"
    )


def main() -> None:
    bench_p1()
    bench_p2()
    bench_p6()


if __name__ == "__main__":
    main()
