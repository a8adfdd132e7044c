"""The runtime contract: WorkflowRuntime ABC, default runtime, custom runtimes, options."""

from __future__ import annotations

import pytest
from molexp.workflow import (
    TaskContext,
    WorkflowRuntime,
    create_default_runtime,
    workflow,
)
from molexp.workflow._pydantic_graph.runtime import GraphWorkflowRuntime
from molexp.workflow.runtime import ExecutionOptions, PreparedExecution
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
    """A third runtime is a small class: it implements ``prepare`` only (here by delegating)."""

    execution_label = "recording"

    def __init__(self) -> None:
        self.inner = GraphWorkflowRuntime()
        self.calls: list[ExecutionOptions] = []

    def prepare(self, spec: Workflow, options: ExecutionOptions) -> PreparedExecution:
        self.calls.append(options)
        return self.inner.prepare(spec, options)


async def test_execute_and_start_accept_another_runtime() -> None:
    runtime = RecordingRuntime()
    spec = _spec()
    assert (await spec.execute(5, runtime=runtime, max_concurrency=2)).output == "done"
    execution = await spec.start(runtime=runtime)
    assert (await execution).output == "done"
    assert [options.inputs for options in runtime.calls] == [5, None]
    assert runtime.calls[0].max_concurrency == 2


async def test_a_runtime_that_only_prepares_gets_the_shared_lifecycle_and_result() -> None:
    spec = _spec()
    result = await spec.execute(runtime=RecordingRuntime())
    assert result.statuses == {"t": "succeeded"}
    assert list(result.timings) == ["t"]
    assert result.sinks == ("t",)


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
