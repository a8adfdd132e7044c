"""start() handles: live statuses, done(), cancel(), and cancellation of the awaiting caller."""

from __future__ import annotations

import asyncio

import pytest
from molexp.workflow import TaskContext, TaskStatus, WorkflowExecution, WorkflowStatus, workflow
from molexp.workflow.spec import Workflow


def _gated(
    gate: asyncio.Event, cancelled: list[str], started: asyncio.Event | None = None
) -> Workflow:
    wf = workflow(name="gated")

    @wf.task
    async def quick(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["quick"])
    async def waits(ctx: TaskContext) -> int:
        if started is not None:
            started.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(ctx.task_name)
            raise
        return 2

    @wf.task(depends_on=["waits"])
    async def after(ctx: TaskContext) -> int:
        return 3

    return wf.build()


async def _until(predicate: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_start_returns_a_live_awaitable_handle() -> None:
    gate = asyncio.Event()
    execution = await _gated(gate, []).start()
    assert isinstance(execution, WorkflowExecution)
    assert not execution.done()
    await _until(lambda: execution.statuses["waits"] is TaskStatus.RUNNING)
    assert dict(execution.statuses) == {
        "quick": TaskStatus.SUCCEEDED,
        "waits": TaskStatus.RUNNING,
        "after": TaskStatus.PENDING,
    }
    gate.set()
    result = await execution
    assert execution.done()
    assert result.output == 3
    assert execution.statuses["after"] is TaskStatus.SUCCEEDED


async def test_cancel_cancels_running_tasks_and_not_started_ones_end_cancelled() -> None:
    cancelled: list[str] = []
    execution = await _gated(asyncio.Event(), cancelled).start()
    await _until(lambda: execution.statuses["waits"] is TaskStatus.RUNNING)
    execution.cancel()
    result = await execution
    assert cancelled == ["waits"]
    assert result.status is WorkflowStatus.CANCELLED
    assert result.statuses == {
        "quick": TaskStatus.SUCCEEDED,
        "waits": TaskStatus.CANCELLED,
        "after": TaskStatus.CANCELLED,
    }
    assert result.outputs == {"quick": 1}
    assert "waits" in result.timings
    execution.cancel()  # cancelling a finished execution is a no-op


async def test_cancel_before_anything_ran() -> None:
    execution = await _gated(asyncio.Event(), []).start()
    execution.cancel()
    result = await execution
    assert set(result.statuses.values()) == {TaskStatus.CANCELLED}
    assert result.status is WorkflowStatus.CANCELLED


async def test_cancelling_the_awaiting_caller_cancels_running_tasks() -> None:
    cancelled: list[str] = []
    started = asyncio.Event()
    caller = asyncio.create_task(_gated(asyncio.Event(), cancelled, started).execute())
    await asyncio.wait_for(started.wait(), 2)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await _until(lambda: cancelled == ["waits"])


async def test_failed_execution_raises_when_awaited() -> None:
    wf = workflow(name="bad")

    @wf.task
    async def boom(ctx: TaskContext) -> None:
        raise ValueError("x")

    execution = await wf.build().start()
    from molexp.workflow import WorkflowFailed

    with pytest.raises(WorkflowFailed, match="'boom'"):
        await execution
