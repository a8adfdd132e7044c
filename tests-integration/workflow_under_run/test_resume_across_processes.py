"""Resume in a fresh process, and after the process executing an attempt crashed.

Each attempt runs ``chain_script.py`` (written into ``tmp_path``) in its own Python process that
only knows the run directory (``RunContext.open(run_dir)``), as ``molexp execute RUN_DIR`` does.
Task bodies append their name to a calls file, so the test sees which bodies ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from molexp.workflow._resume import JOURNAL_DIR, JOURNAL_FILE, read_journal
from molexp.workspace import Run, RunStatus, Workspace, reap_stale_runs

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import os
    import sys
    from pathlib import Path

    import molexp.workflow._resume as resume
    from molexp.workflow import TaskContext, workflow
    from molexp.workspace import RunContext

    resume.FLUSH_INTERVAL = 0.05


    def called(name: str) -> None:
        # The file is looked up when called: a module constant would be part of the code hash.
        with Path(os.environ["CALLS_FILE"]).open("a") as handle:
            handle.write(name + "\\n")


    wf = workflow(name="chain")


    @wf.task(name="A")
    async def a(ctx: TaskContext) -> int:
        called("A")
        return 1


    @wf.task(name="B", depends_on=["A"])
    async def b(ctx: TaskContext) -> int:
        called("B")
        return ctx.inputs + 1


    @wf.task(name="C", depends_on=["B"])
    async def c(ctx: TaskContext) -> int:
        called("C")
        if sys.argv[2] == "crash":
            await asyncio.sleep(0.5)  # A and B reach the journal meanwhile
            os._exit(3)
        if sys.argv[2] == "fail":
            raise RuntimeError("C failed")
        return ctx.inputs * 10


    @wf.task(name="D", depends_on=["C"])
    async def d(ctx: TaskContext) -> int:
        called("D")
        return ctx.inputs + 5


    result = asyncio.run(
        wf.build().execute(run=RunContext.open(sys.argv[1]), raise_on_failure=False)
    )
    print(result.status, ",".join(result.resumed))
    """
)


def _attempt(tmp_path: Path, run: Run, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "chain_script.py"
    if not script.exists():
        script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(run.run_dir), mode],
        env={**os.environ, "CALLS_FILE": str(tmp_path / f"calls-{mode}.txt")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _calls(tmp_path: Path, mode: str) -> list[str]:
    path = tmp_path / f"calls-{mode}.txt"
    return path.read_text().split() if path.exists() else []


def _new_run(tmp_path: Path) -> Run:
    workspace = Workspace(tmp_path / "lab")
    return workspace.Project("p").Experiment("e").Run(id="r1")


def test_a_fresh_process_resumes_from_the_run_directory_alone(tmp_path: Path) -> None:
    run = _new_run(tmp_path)
    failed = _attempt(tmp_path, run, "fail")
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout.split()[0] == "failed"
    assert _calls(tmp_path, "fail") == ["A", "B", "C"]
    fixed = _attempt(tmp_path, run, "fixed")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.split() == ["succeeded", "A,B"]
    assert _calls(tmp_path, "fixed") == ["C", "D"]
    run.reload()
    assert [record.status for record in run.metadata.execution_history] == [
        RunStatus.failed,
        RunStatus.succeeded,
    ]


def test_a_crashed_attempt_is_resumed_even_with_a_torn_journal(tmp_path: Path) -> None:
    run = _new_run(tmp_path)
    crashed = _attempt(tmp_path, run, "crash")
    assert crashed.returncode == 3, crashed.stderr
    assert _calls(tmp_path, "crash") == ["A", "B", "C"]
    run.reload()
    assert run.status is RunStatus.running  # nobody finished it
    (crashed_id,) = (record.execution_id for record in run.metadata.execution_history)
    journal_file = run.run_dir / "execution" / crashed_id / JOURNAL_DIR / JOURNAL_FILE
    journal = read_journal(journal_file)
    assert journal is not None and sorted(journal.tasks) == ["A", "B"]
    with journal_file.open("ab") as handle:  # a record torn by the crash
        handle.write(b"\x40\x00\x00\x00\x01\x02")
    assert [r.id for r in reap_stale_runs(run.workspace)] == ["r1"]

    fixed = _attempt(tmp_path, run, "fixed")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.split() == ["succeeded", "A,B"]
    assert _calls(tmp_path, "fixed") == ["C", "D"]
