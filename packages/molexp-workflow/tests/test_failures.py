"""Failure semantics: dependents skipped, independent branches finish, WorkflowFailed details."""

from __future__ import annotations

import asyncio

import pytest
from molexp.workflow import TaskContext, TaskStatus, WorkflowFailed, WorkflowStatus, workflow
from molexp.workflow.spec import Workflow


def _diamond_with_failure(ran: list[str]) -> Workflow:
    """root -> bad -> after_bad -> tail ; root -> good -> after_good ; tail also needs good."""
    wf = workflow(name="failing")

    async def ok(ctx: TaskContext) -> str:
        await asyncio.sleep(0.01)
        ran.append(ctx.task_name)
        return ctx.task_name

    async def boom(ctx: TaskContext) -> None:
        ran.append(ctx.task_name)
        raise ValueError("bad input 42")

    wf.task(name="root")(ok)
    wf.task(name="bad", depends_on=["root"])(boom)
    wf.task(name="good", depends_on=["root"])(ok)
    wf.task(name="after_bad", depends_on=["bad"])(ok)
    wf.task(name="after_good", depends_on=["good"])(ok)
    wf.task(name="tail", depends_on=["after_bad", "good"])(ok)
    return wf.build()


async def test_failure_skips_only_transitive_dependents() -> None:
    ran: list[str] = []
    result = await _diamond_with_failure(ran).execute(raise_on_failure=False)
    assert result.status is WorkflowStatus.FAILED
    assert sorted(ran) == ["after_good", "bad", "good", "root"]
    assert result.statuses == {
        "root": TaskStatus.SUCCEEDED,
        "bad": TaskStatus.FAILED,
        "good": TaskStatus.SUCCEEDED,
        "after_bad": TaskStatus.SKIPPED,
        "after_good": TaskStatus.SUCCEEDED,
        "tail": TaskStatus.SKIPPED,
    }
    assert result.failed == ["bad"]
    assert result.skipped == ["after_bad", "tail"]
    assert set(result.outputs) == {"root", "good", "after_good"}
    error = result.errors["bad"]
    assert (error.type, error.message) == ("ValueError", "bad input 42")
    assert "raise ValueError" in error.traceback
    assert isinstance(error.exception, ValueError)
    with pytest.raises(KeyError, match="'bad'.*failed.*ValueError: bad input 42"):
        result["bad"]
    with pytest.raises(KeyError, match="'tail'.*skipped"):
        result["tail"]
    # Tasks that ran (the failed one too) have timings; skipped ones have none.
    assert sorted(result.timings) == ["after_good", "bad", "good", "root"]
    bad = result.timings["bad"]
    assert result.timings["root"].finished_at <= bad.started_at <= bad.finished_at


async def test_workflow_failed_carries_result_and_task_name() -> None:
    ran: list[str] = []
    with pytest.raises(WorkflowFailed) as info:
        await _diamond_with_failure(ran).execute()
    exc = info.value
    assert exc.task_name == "bad"
    assert exc.failed_tasks == ["bad"]
    assert exc.result.statuses["after_good"] is TaskStatus.SUCCEEDED
    assert "workflow 'failing' failed" in str(exc)
    assert "task 'bad' raised ValueError: bad input 42" in str(exc)
    assert "'after_bad'" in str(exc)
    assert isinstance(exc.__cause__, ValueError)


async def test_message_names_every_failed_task_in_failure_order() -> None:
    wf = workflow(name="multi")

    async def fail_fast(ctx: TaskContext) -> None:
        raise RuntimeError("first")

    async def fail_late(ctx: TaskContext) -> None:
        await asyncio.sleep(0.02)
        raise KeyError("second")

    wf.task(name="late")(fail_late)
    wf.task(name="fast")(fail_fast)
    with pytest.raises(WorkflowFailed) as info:
        await wf.build().execute()
    assert info.value.task_name == "fast"
    assert info.value.failed_tasks == ["fast", "late"]
    message = str(info.value)
    assert "task 'fast' raised RuntimeError: first" in message
    assert "task 'late' raised KeyError" in message


async def test_sync_task_failure_is_recorded() -> None:
    wf = workflow(name="syncfail")

    @wf.task
    def explode(ctx: TaskContext) -> None:
        raise ZeroDivisionError("sync boom")

    result = await wf.build().execute(raise_on_failure=False)
    assert result.errors["explode"].type == "ZeroDivisionError"


class Fatal(BaseException):
    """Not an Exception: must stop the execution instead of being recorded as a task failure."""


async def test_non_exception_base_exceptions_propagate_and_cancel_the_rest() -> None:
    wf = workflow(name="fatal")
    cancelled = asyncio.Event()

    async def fatal(ctx: TaskContext) -> None:
        await asyncio.sleep(0.01)
        raise Fatal("stop")

    async def slow(ctx: TaskContext) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    wf.task(name="fatal")(fatal)
    wf.task(name="slow")(slow)
    with pytest.raises(Fatal):
        await wf.build().execute()
    await asyncio.wait_for(cancelled.wait(), 1)
