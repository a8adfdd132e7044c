"""Dask runtime benchmarks; every figure is a ratio against a reference measured in this run.

All figures use one ``LocalCluster`` (2 worker processes, 1 thread each) started once.

D1  ``spec.execute(runtime=DaskRuntime(client=...))`` on a 200-task random DAG of no-op tasks vs
    Dask resolving the same graph by itself (every task submitted at once with its dependencies'
    futures as arguments, then ``client.gather``).
D2  the same D1 execution vs the default runtime (in-process asyncio): what a task costs on Dask.
D3  a 30-task chain on the Dask runtime vs the same chain submitted at once to Dask (latency).
D4  the scheduling strategy, without molexp: lazy submission driven by ``distributed.as_completed``
    and lazy submission driven by ``Future.add_done_callback``, each vs eager submission of the
    200-task DAG. (The runtime submits lazily so that dependents of a failed task never run; D4 is
    why it uses ``as_completed``.)
D5  4 CPU-bound tasks (~0.2 s each, independent) on the Dask runtime vs the same 4 calls run one
    after another in this process: the parallel speed-up of 2 workers (ideal 0.5).
D6  the run context on the workers: 50 independent tasks under a run, each calling
    ``ctx.set_result`` and ``ctx.log(...).append`` on its worker, vs the same tasks under a run
    doing nothing with it (the worker opens the run; the owner records results and log lines).

Run: ``python benchmarks/bench_dask.py`` (needs ``molexp-workflow[dask]``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import distributed
from molexp.workflow import (
    DaskRuntime,
    TaskContext,
    Workflow,
    WorkflowBuilder,
    create_default_runtime,
)

DAG_TASKS = 200
CHAIN_TASKS = 30
REPEATS = 5
CPU_TASKS = 4
CPU_SECONDS = 0.2

# distributed is only partly typed: its untyped constructors and methods are used through Any.
dask: Any = distributed


def random_dag(size: int) -> list[list[int]]:
    """Task ``i`` depends on ``random.Random(0).sample(range(i), min(i, 3))``."""
    rng = random.Random(0)
    return [rng.sample(range(i), min(i, 3)) for i in range(size)]


def chain(size: int) -> list[list[int]]:
    return [[i - 1] if i else [] for i in range(size)]


def noop_task(ctx: TaskContext) -> None:
    return None


def noop(*dependencies: Any) -> None:
    return None


def build_workflow(name: str, dag: list[list[int]]) -> Workflow:
    builder = WorkflowBuilder(name=name)
    for i, deps in enumerate(dag):
        builder.task(name=f"t{i}", depends_on=[f"t{d}" for d in deps])(noop_task)
    return builder.build()


def eager(client: Any, dag: list[list[int]]) -> None:
    futures: list[Any] = []
    for deps in dag:
        futures.append(client.submit(noop, *[futures[d] for d in deps], pure=False))
    client.gather(futures)


def _dependents(dag: list[list[int]]) -> list[list[int]]:
    dependents: list[list[int]] = [[] for _ in dag]
    for i, deps in enumerate(dag):
        for dep in deps:
            dependents[dep].append(i)
    return dependents


def lazy_as_completed(client: Any, dag: list[list[int]]) -> None:
    dependents = _dependents(dag)
    remaining = [len(deps) for deps in dag]
    futures: dict[int, Any] = {}
    index: dict[Any, int] = {}
    completions = dask.as_completed(loop=client.loop, with_results=True)

    def submit(i: int) -> None:
        future = client.submit(noop, *[futures[d] for d in dag[i]], pure=False)
        futures[i] = future
        index[future] = i
        completions.add(future)

    for i, deps in enumerate(dag):
        if not deps:
            submit(i)
    while not completions.is_empty():
        for future, _ in completions.next_batch():
            for dependent in dependents[index[future]]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    submit(dependent)


def lazy_callbacks(client: Any, dag: list[list[int]]) -> None:
    dependents = _dependents(dag)
    remaining = [len(deps) for deps in dag]
    futures: dict[int, Any] = {}
    lock = threading.Lock()
    done = threading.Event()
    finished = [0]

    def submit(i: int) -> None:
        future = client.submit(noop, *[futures[d] for d in dag[i]], pure=False)
        futures[i] = future
        future.add_done_callback(lambda completed, i=i: on_done(i, completed))

    def on_done(i: int, completed: Any) -> None:
        completed.result()
        with lock:
            for dependent in dependents[i]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    submit(dependent)
            finished[0] += 1
            if finished[0] == len(dag):
                done.set()

    with lock:
        for i, deps in enumerate(dag):
            if not deps:
                submit(i)
    done.wait()


def median_time(repeats: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def busy(ctx: TaskContext | None = None) -> int:
    deadline = time.process_time() + CPU_SECONDS
    count = 0
    while time.process_time() < deadline:
        count += 1
    return count


RUN_TASKS = 50


def run_context_workflows() -> tuple[Workflow, Workflow]:
    """(tasks using the run context, the same tasks not using it)."""
    using = WorkflowBuilder(name="bench-dask-run-context")
    idle = WorkflowBuilder(name="bench-dask-run-idle")
    for i in range(RUN_TASKS):

        def record(ctx: TaskContext, i: int = i) -> int:
            ctx.set_result(f"r{i}", i)
            ctx.log("bench").append(f"task {i}")
            return i

        def nothing(ctx: TaskContext, i: int = i) -> int:
            return i

        using.task(name=f"t{i}")(record)
        idle.task(name=f"t{i}")(nothing)
    return using.build(), idle.build()


def main() -> None:
    cluster = dask.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    )
    client: Any = dask.Client(cluster, set_as_default=False)
    runtime = DaskRuntime(client=client)
    default = create_default_runtime()
    dag = random_dag(DAG_TASKS)
    dag_spec = build_workflow("bench-dask-dag", dag)
    chain_spec = build_workflow("bench-dask-chain", chain(CHAIN_TASKS))

    def on_dask(spec: Workflow) -> Callable[[], Any]:
        return lambda: asyncio.run(spec.execute(runtime=runtime))

    try:
        on_dask(dag_spec)()  # warm-up: workers import molexp and the task code once
        eager(client, dag)

        dask_dag = median_time(REPEATS, on_dask(dag_spec))
        eager_dag = median_time(REPEATS, lambda: eager(client, dag))
        default_dag = median_time(REPEATS, lambda: asyncio.run(dag_spec.execute(runtime=default)))
        per_task = dask_dag / DAG_TASKS * 1e3
        print(
            f"D1 {DAG_TASKS}-task random DAG, DaskRuntime {per_task:.2f} ms/task vs Dask alone "
            f"{eager_dag / DAG_TASKS * 1e3:.2f} ms/task: ratio {dask_dag / eager_dag:.2f}x"
        )
        print(
            f"D2 same DAG, DaskRuntime vs default runtime "
            f"({default_dag / DAG_TASKS * 1e6:.1f} us/task): ratio {dask_dag / default_dag:.0f}x"
        )

        dask_chain = median_time(REPEATS, on_dask(chain_spec))
        eager_chain = median_time(REPEATS, lambda: eager(client, chain(CHAIN_TASKS)))
        print(
            f"D3 {CHAIN_TASKS}-task chain, DaskRuntime vs Dask alone: "
            f"ratio {dask_chain / eager_chain:.2f}x"
        )

        lazy_ac = median_time(REPEATS, lambda: lazy_as_completed(client, dag))
        lazy_cb = median_time(REPEATS, lambda: lazy_callbacks(client, dag))
        print(
            f"D4 lazy submission vs eager, {DAG_TASKS}-task DAG: as_completed "
            f"{lazy_ac / eager_dag:.2f}x, add_done_callback {lazy_cb / eager_dag:.2f}x"
        )

        builder = WorkflowBuilder(name="bench-dask-cpu")
        for i in range(CPU_TASKS):
            builder.task(name=f"busy{i}")(busy)
        cpu_spec = builder.build()
        sequential = median_time(1, lambda: [busy() for _ in range(CPU_TASKS)])
        parallel = median_time(1, on_dask(cpu_spec))
        print(
            f"D5 {CPU_TASKS} x {CPU_SECONDS} s CPU-bound tasks on 2 workers vs sequential "
            f"in-process: ratio {parallel / sequential:.2f} (ideal 0.5)"
        )
        from molexp.workspace import Workspace

        with tempfile.TemporaryDirectory(prefix="bench-dask-") as root:
            experiment = Workspace(root).Project("bench").Experiment("dask")
            numbers = itertools.count()

            def under_run(spec: Workflow) -> Callable[[], Any]:
                def execute() -> Any:
                    run = experiment.Run(id=f"r{next(numbers)}")
                    return asyncio.run(spec.execute(runtime=runtime, run=run))

                return execute

            using, idle = run_context_workflows()
            under_run(using)()  # warm-up: the workers open the workspace once
            under_run(idle)()
            with_context = median_time(REPEATS, under_run(using))
            without = median_time(REPEATS, under_run(idle))
            print(
                f"D6 {RUN_TASKS} tasks under a run using ctx.set_result + ctx.log on the workers "
                f"({with_context / RUN_TASKS * 1e3:.2f} ms/task) vs not using the run context "
                f"({without / RUN_TASKS * 1e3:.2f} ms/task): ratio {with_context / without:.2f}x"
            )
    finally:
        runtime.close()
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
