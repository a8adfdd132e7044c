"""P5: a fully cached re-execution in a fresh process vs the cold execution; every figure a ratio.

A workflow of 1,000 ``cache=True`` tasks (a chain, each doing about 10 ms of CPU work) runs in a
fresh interpreter with a file-backed cache (``Caching(store_dir=...)``): once cold (every task
runs and is stored), then again in another fresh interpreter, where every task is served from
the cache. Printed:

- P5: wall time of the cached process / the cold process (both whole processes: interpreter
  start, imports, build, execution). Target <= 0.05.
- the cost of one cached task inside the cached execution (execution time / tasks, the cache
  modules already imported: snapshot, lookup, reading the entry, scheduling), against the 10 ms
  of work it saves. Target <= 50 us per task.

Run: ``python benchmarks/bench_cache_rerun.py [--tasks N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    import time
    from pathlib import Path

    from molexp.workflow import Caching, MemoryCacheStore, TaskContext, WorkflowBuilder

    TASKS = int(sys.argv[2])
    MODULUS = 1_000_003


    def work(value: int) -> int:
        deadline = time.perf_counter() + 0.010
        while time.perf_counter() < deadline:
            value = (value * 31 + 7) % MODULUS
        return value


    async def step(ctx: TaskContext) -> int:
        previous = int(ctx.inputs or 1)
        # The quotient counts the position in the chain, so no two tasks get the same input
        # (work() alone repeats a value often enough that a cold run would have cache hits).
        return (previous // MODULUS + 1) * MODULUS + work(previous % MODULUS)


    # Load the runtime and the cache modules before the timed execution.
    warm = WorkflowBuilder(name="warm-up")
    warm.task(name="w", cache=True)(step)
    warm.build().execute_sync(1, cache=Caching(store=MemoryCacheStore()))

    builder = WorkflowBuilder(name="cached-chain")
    for i in range(TASKS):
        builder.task(name=f"t{i}", depends_on=[f"t{i - 1}"] if i else [], cache=True)(step)
    spec = builder.build()
    cache = Caching(store_dir=Path(sys.argv[1]), max_entries=10 * TASKS)
    cache.initialize()
    start = time.perf_counter()  # the runtime and cache modules are imported by now
    result = spec.execute_sync(1, cache=cache)
    elapsed = time.perf_counter() - start
    statuses = sorted({str(status) for status in result.statuses.values()})
    print(json.dumps({"execute": elapsed, "statuses": statuses}))
    """
)


def run_process(script: Path, store: Path, tasks: int) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(script), str(store), str(tasks)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    return wall, json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    tasks = parser.parse_args().tasks
    repeats = parser.parse_args().repeats
    root = Path(tempfile.mkdtemp(prefix="molexp-bench-p5-"))
    try:
        script = root / "chain.py"
        script.write_text(SCRIPT)
        colds, cached, lookups = [], [], []
        for repeat in range(repeats):
            store = root / f"cache-{repeat}"
            wall, report = run_process(script, store, tasks)
            assert report["statuses"] == ["succeeded"], report
            colds.append(wall)
            for _ in range(2):
                wall, report = run_process(script, store, tasks)
                assert report["statuses"] == ["cached"], report
                cached.append(wall)
                lookups.append(float(report["execute"]) / tasks)  # type: ignore[arg-type]
        cold, warm, lookup = min(colds), min(cached), min(lookups)
        print(
            f"P5 {tasks} cached tasks x 10 ms, fresh processes: cold {cold:.2f} s, "
            f"fully cached {warm:.3f} s, ratio {warm / cold:.3f} (target <= 0.05)"
        )
        print(
            f"    per task in the cached execution: {lookup * 1e6:.0f} us "
            f"= {lookup / 0.010:.4f}x the 10 ms it saves (target <= 50 us)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
