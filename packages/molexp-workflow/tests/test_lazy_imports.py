"""A workflow executed without a run and without cached tasks imports neither the resume
journal, the task snapshots nor the cache: a fresh process gets its first result sooner
(``benchmarks/bench_first_result.py``)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from molexp.workflow import TaskContext, workflow

wf = workflow(name="one")


@wf.task
async def only(ctx: TaskContext) -> int:
    return 1


assert wf.build().execute_sync().output == 1
heavy = [name for name in ("molexp.workflow._resume", "molexp.workflow.snapshot",
         "molexp.workflow.cache", "molexp.workflow._code_analysis") if name in sys.modules]
assert not heavy, heavy
"""


def test_a_plain_execution_imports_no_snapshot_resume_or_cache_code() -> None:
    subprocess.run([sys.executable, "-c", CODE], check=True, timeout=60)
