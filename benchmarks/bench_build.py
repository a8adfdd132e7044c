"""Authoring and ``build()`` of a fan-out workflow: one root, N children, one sink on all N.

Prints, for N = 5,000 / 10,000 / 20,000 / 40,000, the time to register the tasks and the time of
``build()`` (validation and the workflow id), and the growth factor from one N to the next: 2.0
is linear, 4.0 quadratic. The reference, in the same run, is a plain ``graphlib`` topological sort
of the same graph. Target (issue 15): linear; ``build()`` of 20,000 tasks <= 0.3 s.

Usage: ``python benchmarks/bench_build.py``.
"""

from __future__ import annotations

import graphlib
import time
from typing import Any

from molexp.workflow import TaskContext, workflow

SIZES = (5_000, 10_000, 20_000, 40_000)


async def _task(ctx: TaskContext) -> Any:
    return None


def fan_out(n: int) -> tuple[float, float]:
    """Seconds to register the tasks, and seconds of ``build()``."""
    start = time.perf_counter()
    wf = workflow(name=f"fan-{n}")
    wf.task(name="root")(_task)
    for index in range(n):
        wf.task(name=f"child-{index}", depends_on=["root"])(_task)
    wf.task(name="sink", depends_on=[f"child-{index}" for index in range(n)])(_task)
    registered = time.perf_counter()
    wf.build()
    return registered - start, time.perf_counter() - registered


def reference(n: int) -> float:
    """Seconds of a graphlib topological sort of the same graph."""
    graph: dict[str, set[str]] = {"root": set()}
    graph.update({f"child-{index}": {"root"} for index in range(n)})
    graph["sink"] = {f"child-{index}" for index in range(n)}
    start = time.perf_counter()
    list(graphlib.TopologicalSorter(graph).static_order())
    return time.perf_counter() - start


def main() -> None:
    previous: tuple[float, float] | None = None
    for n in SIZES:
        register, build = min((fan_out(n) for _ in range(3)), key=sum)
        sort = min(reference(n) for _ in range(3))
        growth = (
            f"growth x{register / previous[0]:.2f} / x{build / previous[1]:.2f}"
            if previous
            else "growth -"
        )
        print(
            f"fan-out {n:6d}: register {register * 1000:7.1f} ms, build() {build * 1000:6.1f} ms"
            f" ({build / sort:4.1f}x a graphlib sort)   {growth}"
        )
        previous = (register, build)


if __name__ == "__main__":
    main()
