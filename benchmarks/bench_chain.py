"""Per-task overhead of a 10,000-task chain (task i depends on task i-1), no-op async tasks.

The reference, measured in the same process, is raw asyncio: each task an ``asyncio`` task that
awaits its predecessor's task before returning. Prints µs per task for both and the ratio (best
of 3). Target (issue 15): <= 2.5x raw asyncio, still dependency-driven and cancellable.

Usage: ``python benchmarks/bench_chain.py [--tasks 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from molexp.workflow import TaskContext, Workflow, workflow


async def _noop(ctx: TaskContext) -> None:
    return None


def chain(n: int) -> Workflow:
    wf = workflow(name=f"chain-{n}")
    wf.task(name="t0")(_noop)
    for index in range(1, n):
        wf.task(name=f"t{index}", depends_on=[f"t{index - 1}"])(_noop)
    return wf.build()


async def raw_chain(n: int) -> None:
    async def body(previous: asyncio.Task[Any] | None) -> None:
        if previous is not None:
            await previous

    task: asyncio.Task[Any] | None = None
    for _ in range(n):
        task = asyncio.ensure_future(body(task))
    assert task is not None
    await task


async def best(repeats: int, action: Any) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await action()
        times.append(time.perf_counter() - start)
    return min(times)


async def main(n: int) -> None:
    spec = chain(n)
    await spec.execute()  # warm up
    molexp = await best(3, spec.execute)
    raw = await best(3, lambda: raw_chain(n))
    print(
        f"{n}-task chain: raw asyncio {raw / n * 1e6:.1f} us/task, spec.execute "
        f"{molexp / n * 1e6:.1f} us/task, ratio {molexp / raw:.2f}x (target <= 2.5x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().tasks))
