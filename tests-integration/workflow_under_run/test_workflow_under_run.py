"""Workflows executed under a REAL workspace run (molexp.workspace + molexp.workflow together).

Covers what the fakes of the workflow package cannot: the live ``RunContext`` seen by tasks, the
merged profile config, the workflow id and snapshot stored in ``run.json``, the execution
history, the on-disk ``state.json`` of each attempt, the workspace cache location, and per-task
resume across attempts of the same run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import (
    TaskContext,
    TaskStatus,
    WorkflowBuilder,
    WorkflowFailed,
    WorkflowSnapshotRef,
    workflow,
)
from molexp.workflow._resume import JOURNAL_DIR, JOURNAL_FILE, read_journal
from molexp.workflow.spec import Workflow
from molexp.workspace import ProfileConfig, Run, RunContext, RunStatus, Workspace

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    workspace = Workspace(tmp_path / "lab")
    experiment = workspace.Project("qm9").Experiment("baseline", params={"lr": 0.5})
    return experiment.Run(id="r1")


def chain(*, fail_at_c: bool = False, b_variant: int = 0, b_config: Any = None) -> Workflow:
    """A -> B -> C -> D counting the body calls; ``fail_at_c`` makes C raise."""
    builder = WorkflowBuilder(name="chain")

    @builder.task(name="A")
    async def a(ctx: TaskContext) -> int:
        calls["A"] += 1
        return 1

    async def b_plus_one(ctx: TaskContext) -> int:
        calls["B"] += 1
        return int(ctx.inputs) + 1

    async def b_plus_two(ctx: TaskContext) -> int:
        calls["B"] += 1
        return int(ctx.inputs) + 2

    builder.task(name="B", depends_on=["A"], config=b_config)(
        b_plus_two if b_variant else b_plus_one
    )

    @builder.task(name="C", depends_on=["B"])
    async def c(ctx: TaskContext) -> int:
        calls["C"] += 1
        if fail_at_c:
            raise ArithmeticError("C diverged")
        return int(ctx.inputs) * 10

    @builder.task(name="D", depends_on=["C"])
    async def d(ctx: TaskContext) -> int:
        calls["D"] += 1
        return int(ctx.inputs) + 5

    return builder.build()


def _state(run: Run, execution_id: str) -> dict[str, Any]:
    path = run.run_dir / "execution" / execution_id / "state.json"
    state: dict[str, Any] = json.loads(path.read_text())
    return state


async def test_a_rerun_after_fixing_c_resumes_a_and_b(run: Run) -> None:
    with pytest.raises(WorkflowFailed) as info:
        await chain(fail_at_c=True).execute(run=run)
    assert info.value.task_name == "C"
    run.reload()
    assert run.status is RunStatus.failed
    assert run.metadata.error is not None
    assert run.metadata.error.task_name == "C"
    assert run.metadata.error.type == "WorkflowFailed"
    calls.clear()

    result = await chain().execute(run=run)
    assert calls == {"C": 1, "D": 1}  # A and B bodies were not executed again
    assert result.statuses == {
        "A": TaskStatus.RESUMED,
        "B": TaskStatus.RESUMED,
        "C": TaskStatus.SUCCEEDED,
        "D": TaskStatus.SUCCEEDED,
    }
    assert result.output == 25
    metadata = run.reload().metadata
    assert metadata.status is RunStatus.succeeded and metadata.error is None
    first, second = metadata.execution_history
    assert (first.attempt, first.status) == (1, RunStatus.failed)
    assert first.error is not None and first.error.task_name == "C"
    assert (second.attempt, second.status) == (2, RunStatus.succeeded)
    assert result.resumed_from == first.execution_id


async def test_state_payloads_of_both_attempts(run: Run) -> None:
    await chain(fail_at_c=True).execute(run=run, raise_on_failure=False)
    await chain().execute(run=run)
    run.reload()
    first_id, second_id = (record.execution_id for record in run.metadata.execution_history)
    first, second = _state(run, first_id), _state(run, second_id)
    assert first["status"] == "failed" and first["failed"] == ["C"] and first["skipped"] == ["D"]
    assert first["tasks"]["C"]["error"]["type"] == "ArithmeticError"
    assert [first["tasks"][t]["output_persisted"] for t in "ABCD"] == [True, True, False, False]
    assert second["status"] == "succeeded"
    assert second["resumed"] == ["A", "B"] and second["resumed_from"] == first_id
    assert [second["tasks"][t]["status"] for t in "ABCD"] == [
        "resumed",
        "resumed",
        "succeeded",
        "succeeded",
    ]
    assert all(second["tasks"][t]["output_persisted"] for t in "ABCD")
    for task in "AB":
        assert second["tasks"][task]["snapshot_key"] == first["tasks"][task]["snapshot_key"]
    journal = read_journal(run.run_dir / "execution" / second_id / JOURNAL_DIR / JOURNAL_FILE)
    assert journal is not None and journal.complete and sorted(journal.tasks) == list("ABCD")


@pytest.mark.parametrize(
    "change", [{"b_variant": 1}, {"b_config": {"scale": 2}}], ids=["code", "config"]
)
async def test_changing_b_recomputes_b_c_and_d(run: Run, change: dict[str, Any]) -> None:
    await chain(fail_at_c=True).execute(run=run, raise_on_failure=False)
    calls.clear()
    result = await chain(**change).execute(run=run)
    assert calls == {"B": 1, "C": 1, "D": 1}
    assert result.resumed == ["A"]


async def test_resume_false_runs_everything_under_the_same_run(run: Run) -> None:
    await chain().execute(run=run)
    calls.clear()
    result = await chain().execute(run=run, resume=False)
    assert result.resumed == []
    assert calls == {"A": 1, "B": 1, "C": 1, "D": 1}
    run.reload()
    assert len(run.metadata.execution_history) == 2


async def test_tasks_see_the_live_run_context_and_the_merged_profile_config(run: Run) -> None:
    seen: dict[str, Any] = {}
    wf = workflow(name="inspect")

    @wf.task
    async def look(ctx: TaskContext) -> float:
        seen["run_context"] = ctx.run_context
        seen["config"] = dict(ctx.config)
        value = float(ctx.params["lr"]) * float(ctx.config["scale"])
        ctx.set_result("scaled_lr", value)
        ctx.artifact.save("metrics.json", {"scaled_lr": value})
        ctx.log("train").append(f"scaled_lr={value}")
        return value

    profile = ProfileConfig(name="gpu", config={"scale": 2.0, "device": "cuda"})
    result = await wf.build().execute(run=run, profile_config=profile, config={"scale": 4.0})
    assert result.output == 2.0
    context = seen["run_context"]
    assert isinstance(context, RunContext)
    assert context.run is run
    assert seen["config"] == {"scale": 4.0, "device": "cuda"}
    run.reload()
    assert context.execution_id == run.metadata.execution_history[-1].execution_id
    assert run.metadata.profile is not None and run.metadata.profile.name == "gpu"
    assert run.results == {"scaled_lr": 2.0}
    assert json.loads((run.run_dir / "artifacts" / "metrics.json").read_text()) == {
        "scaled_lr": 2.0
    }
    assert (run.run_dir / "logs" / "train.log").read_text().strip() == "scaled_lr=2.0"


async def test_the_run_records_the_workflow_id_and_snapshot_ref(run: Run, tmp_path: Path) -> None:
    spec = chain()
    script = tmp_path / "train.py"
    run.set_workflow({"cwd": str(tmp_path)})  # e.g. written by the CLI before executing
    await spec.execute(run=run, snapshot={"script": str(script), "source": str(script)})
    run.reload()
    assert run.metadata.workflow_id == spec.workflow_id
    snapshot = run.metadata.workflow_snapshot
    assert snapshot is not None
    assert snapshot["script"] == str(script) and snapshot["cwd"] == str(tmp_path)
    ref = WorkflowSnapshotRef.from_payload(snapshot)
    assert (ref.workflow_id, ref.workflow_name, ref.source) == (
        spec.workflow_id,
        "chain",
        str(script),
    )


async def test_a_task_failure_ends_the_run_failed_naming_the_task(run: Run) -> None:
    result = await chain(fail_at_c=True).execute(run=run, raise_on_failure=False)
    assert result.failed == ["C"]
    run.reload()
    assert run.status is RunStatus.failed
    error = run.metadata.error
    assert error is not None and error.task_name == "C"
    assert "C diverged" in error.message
    assert error.traceback_path is not None
    trace = (run.run_dir / error.traceback_path).read_text()
    assert "ArithmeticError: C diverged" in trace


async def test_cancelling_ends_the_run_failed(run: Run) -> None:
    import asyncio

    wf = workflow(name="slow")
    started = asyncio.Event()

    @wf.task
    async def forever(ctx: TaskContext) -> None:
        started.set()
        await asyncio.sleep(30)

    execution = await wf.build().start(run=run)
    await asyncio.wait_for(started.wait(), 5)
    execution.cancel()
    result = await execution
    assert result.statuses["forever"] is TaskStatus.CANCELLED
    run.reload()
    assert run.status is RunStatus.failed
    assert run.metadata.error is not None and "cancelled" in run.metadata.error.message


async def test_the_workspace_cache_lives_under_subsystems(run: Run) -> None:
    wf = workflow(name="cached")

    @wf.task(cache=True)
    async def expensive(ctx: TaskContext) -> int:
        calls["expensive"] += 1
        return 7

    spec = wf.build()
    first = await spec.execute(run=run)
    assert first.statuses["expensive"] is TaskStatus.SUCCEEDED
    cache_dir = run.workspace.root / ".subsystems" / "workflow.cache"
    assert any(path.is_file() for path in cache_dir.rglob("*"))
    second = await spec.execute(run=run, resume=False)
    assert second.statuses["expensive"] is TaskStatus.CACHED
    assert calls == {"expensive": 1}
