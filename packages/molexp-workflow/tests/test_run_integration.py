"""Execution under a tracked run (fake Run / RunContext implementing the protocols)."""

from __future__ import annotations

import json

import pytest
from molexp.workflow import (
    RunContextProtocol,
    RunProtocol,
    TaskContext,
    WorkflowFailed,
    WorkflowStatus,
    workflow,
)
from molexp.workflow.spec import Workflow
from workflow_fakes import FakeRun, FakeRunContext


def _spec(fail: bool = False) -> Workflow:
    wf = workflow(name="tracked")

    @wf.task
    async def compute(ctx: TaskContext) -> float:
        assert ctx.run_context is not None
        value = float(ctx.run_context.params["lr"] * ctx.config.get("scale", 1.0))
        ctx.set_result("scaled_lr", value)
        return value

    @wf.task(depends_on=["compute"])
    async def check(ctx: TaskContext) -> float:
        if fail:
            raise ArithmeticError("diverged")
        return float(ctx.inputs)

    return wf.build()


def test_fakes_satisfy_the_protocols() -> None:
    assert isinstance(FakeRunContext(), RunContextProtocol)
    assert isinstance(FakeRun(), RunProtocol)


async def test_successful_execution_under_a_run() -> None:
    context = FakeRunContext(params={"lr": 0.5}, config={"scale": 2.0})
    run = FakeRun(context)
    spec = _spec()
    result = await spec.execute(run=run, profile_config={"profile": "gpu"})
    assert result.output == 1.0
    assert run.events == ["enter", "set_workflow", "exit"]
    assert run.status == "succeeded"
    assert run.profile_configs == [{"profile": "gpu"}]
    assert run.workflow_payloads == [
        {
            "version": 1,
            "workflow_id": spec.workflow_id,
            "workflow_name": "tracked",
            "name": "tracked",
        }
    ]
    assert context.results == {"scaled_lr": 1.0}
    (state,) = context.execution_states
    assert json.loads(json.dumps(state)) == state
    assert state["workflow_id"] == spec.workflow_id
    assert state["status"] == "succeeded"
    assert state["tasks"]["compute"]["status"] == "succeeded"
    assert state["tasks"]["compute"]["duration"] >= 0
    assert state["tasks"]["compute"]["error"] is None


async def test_config_argument_overrides_the_run_profile_config() -> None:
    context = FakeRunContext(params={"lr": 1.0}, config={"scale": 2.0, "other": "kept"})
    result = await _spec().execute(run=FakeRun(context), config={"scale": 3.0})
    assert result.output == 3.0


async def test_failure_is_raised_inside_the_run_so_it_ends_failed() -> None:
    context = FakeRunContext(params={"lr": 0.5})
    run = FakeRun(context)
    with pytest.raises(WorkflowFailed) as info:
        await _spec(fail=True).execute(run=run)
    assert run.status == "failed"
    assert run.exit_exception is info.value
    assert run.error_task_name == "check"
    (state,) = context.execution_states
    assert state["status"] == "failed"
    assert state["tasks"]["check"]["error"]["type"] == "ArithmeticError"
    assert "diverged" in state["tasks"]["check"]["error"]["traceback"]


async def test_raise_on_failure_false_returns_the_result_after_the_run_closed() -> None:
    run = FakeRun(FakeRunContext(params={"lr": 0.5}))
    result = await _spec(fail=True).execute(run=run, raise_on_failure=False)
    assert result.status is WorkflowStatus.FAILED
    assert run.events == ["enter", "set_workflow", "exit-failed"]
    assert run.error_task_name == "check"


async def test_cancelled_execution_marks_the_run_failed() -> None:
    import asyncio

    wf = workflow(name="cancel-run")
    started = asyncio.Event()

    @wf.task
    async def forever(ctx: TaskContext) -> None:
        started.set()
        await asyncio.sleep(10)

    context = FakeRunContext()
    run = FakeRun(context)
    execution = await wf.build().start(run=run)
    await asyncio.wait_for(started.wait(), 2)
    execution.cancel()
    result = await execution
    assert result.status is WorkflowStatus.CANCELLED
    assert context.failures == [("workflow 'cancel-run' was cancelled", None)]
    assert run.status == "failed"
    assert context.execution_states[0]["tasks"]["forever"]["status"] == "cancelled"


async def test_run_context_alone_does_not_open_or_close_anything() -> None:
    context = FakeRunContext(params={"lr": 0.25})
    result = await _spec().execute(run_context=context)
    assert result.output == 0.25
    assert len(context.execution_states) == 1
    with pytest.raises(WorkflowFailed):
        await _spec(fail=True).execute(run_context=context)
    assert context.execution_states[1]["status"] == "failed"
    assert context.failures == []


async def test_argument_errors() -> None:
    spec = _spec()
    with pytest.raises(ValueError, match="either run= .* or run_context="):
        await spec.execute(run=FakeRun(), run_context=FakeRunContext())
    with pytest.raises(ValueError, match="profile_config= is only used when opening a run"):
        await spec.execute(profile_config={"x": 1})
    with pytest.raises(TypeError, match="run= must be a Run"):
        await spec.execute(run=object())  # type: ignore[arg-type]


async def test_start_under_a_run() -> None:
    run = FakeRun(FakeRunContext(params={"lr": 2.0}))
    execution = await _spec().start(run=run)
    result = await execution
    assert result.output == 2.0
    assert run.status == "succeeded"
