"""The runtime contract: WorkflowRuntime ABC, default runtime, custom runtimes, options."""

from __future__ import annotations

from typing import Any

import pytest
from molexp.workflow import (
    TaskContext,
    WorkflowExecution,
    WorkflowResult,
    WorkflowRuntime,
    create_default_runtime,
    workflow,
)
from molexp.workflow._pydantic_graph.runtime import GraphWorkflowRuntime
from molexp.workflow.spec import Workflow


def _spec() -> Workflow:
    wf = workflow(name="rt")
    wf.task(name="t")(lambda ctx: "done")
    return wf.build()


def test_default_runtime_is_the_graph_runtime_and_is_cached_per_workflow() -> None:
    assert isinstance(create_default_runtime(), GraphWorkflowRuntime)
    spec = _spec()
    assert spec._get_runtime() is spec._get_runtime()


def test_runtime_abc_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        WorkflowRuntime()  # type: ignore[abstract]


class RecordingRuntime(WorkflowRuntime):
    """Delegates to the graph runtime and records what it was asked."""

    def __init__(self) -> None:
        self.inner = GraphWorkflowRuntime()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def execute(
        self,
        spec: Workflow,
        run: Any = None,
        run_context: Any = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowResult:
        self.calls.append(("execute", kwargs))
        return await self.inner.execute(spec, run, run_context, **kwargs)

    async def start(
        self,
        spec: Workflow,
        run: Any = None,
        run_context: Any = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowExecution:
        self.calls.append(("start", kwargs))
        return await self.inner.start(spec, run, run_context, **kwargs)


async def test_execute_and_start_accept_another_runtime() -> None:
    runtime = RecordingRuntime()
    spec = _spec()
    assert (await spec.execute(5, runtime=runtime, max_concurrency=2)).output == "done"
    assert (await (await spec.start(runtime=runtime))).output == "done"
    assert [name for name, _ in runtime.calls] == ["execute", "start"]
    assert runtime.calls[0][1]["inputs"] == 5
    assert runtime.calls[0][1]["max_concurrency"] == 2


async def test_unknown_execution_options_are_rejected() -> None:
    with pytest.raises(TypeError, match="unknown execution option\\(s\\) bogus"):
        await GraphWorkflowRuntime().execute(_spec(), bogus=1)


async def test_bad_option_types() -> None:
    spec = _spec()
    with pytest.raises(TypeError, match="config must be a mapping"):
        await spec.execute(config=[("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache must be a Caching"):
        await spec.execute(cache=object())


async def test_handle_repr_and_done() -> None:
    wf = workflow(name="handle")

    @wf.task
    async def t(ctx: TaskContext) -> None:
        return None

    execution = await wf.build().start()
    assert "handle" in repr(execution)
    await execution
    assert execution.done()
    assert repr(execution) == "WorkflowExecution('handle', done)"
