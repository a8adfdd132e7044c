"""The first result of a 1-task workflow in a fresh process; every figure a ratio.

Wall time of ``python script.py`` where the script imports ``molexp.workflow``, defines one task,
builds the workflow and executes it (best of several runs), against, in the same run:

- ``python -c pass`` (the interpreter alone);
- the same one-task graph through ``dask.get`` (Dask's synchronous scheduler), when dask is
  installed: the nearest peer doing the same job.

Target: <= 150 ms. Bytecode caches are written and used (``PYTHONDONTWRITEBYTECODE`` is removed
from the children's environment and every command runs once before it is timed), as on a user's
machine.

Run: ``python benchmarks/bench_first_result.py``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

REPEATS = 7

MOLEXP = """
from molexp.workflow import TaskContext, workflow

wf = workflow(name="one")


@wf.task
async def only(ctx: TaskContext) -> int:
    return 1


assert wf.build().execute_sync().output == 1
"""

DASK = """
import dask


def only() -> int:
    return 1


assert dask.get({"only": (only,)}, "only") == 1
"""


def best_wall(code: str) -> float:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-c", code]
    subprocess.run(command, env=environment, check=True)  # write the bytecode caches
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, env=environment, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    bare = best_wall("pass")
    molexp = best_wall(MOLEXP)
    print(
        f"first result of a 1-task workflow in a fresh process: {molexp * 1e3:.0f} ms "
        f"(target <= 150 ms) = {molexp / bare:.1f}x `python -c pass` ({bare * 1e3:.0f} ms)"
    )
    if importlib.util.find_spec("dask") is not None:
        dask = best_wall(DASK)
        print(f"    dask.get of the same graph: {dask * 1e3:.0f} ms; ratio {molexp / dask:.2f}")


if __name__ == "__main__":
    main()
