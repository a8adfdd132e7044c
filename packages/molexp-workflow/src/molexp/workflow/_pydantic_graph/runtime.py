"""``GraphWorkflowRuntime``: the default runtime, driving executions with pydantic-graph.

It validates and compiles the workflow (synchronously, before any task body runs), runs the
``WorkflowStep`` trampoline graph and turns the final ``WorkflowState`` into a ``WorkflowResult``.
Everything about executing under a run (opening it, the workflow snapshot, resume, recording the
execution state, failing the run) is :func:`molexp.workflow._lifecycle.execute_with_lifecycle`;
this module only supplies its ``drive``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from molexp.workflow._lifecycle import (
    execute_with_lifecycle,
    merged_config,
    resolve_cache,
    validate_run_arguments,
)
from molexp.workflow._pydantic_graph.compiler import CompiledWorkflow, WorkflowGraphCompiler
from molexp.workflow._pydantic_graph.node import WorkflowStep
from molexp.workflow._pydantic_graph.state import WorkflowDeps, WorkflowState
from molexp.workflow.context import ExecutionScope
from molexp.workflow.runtime import (
    ExecutionOptions,
    StatusView,
    TaskStatus,
    TaskTiming,
    WorkflowExecution,
    WorkflowResult,
    WorkflowRuntime,
    WorkflowStatus,
)

if TYPE_CHECKING:
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RunContextProtocol, RunProtocol
    from molexp.workflow.spec import Workflow

__all__ = ["GraphWorkflowRuntime"]

_OUTPUT_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.CACHED, TaskStatus.RESUMED)


@dataclass(slots=True)
class _Prepared:
    spec: Workflow
    compiled: CompiledWorkflow
    state: WorkflowState
    options: ExecutionOptions
    run: RunProtocol | None
    run_context: RunContextProtocol | None
    profile_config: Any


class GraphWorkflowRuntime(WorkflowRuntime):
    """Executes workflows as a pydantic-graph run of the ``WorkflowStep`` trampoline."""

    def __init__(self) -> None:
        self.compiler = WorkflowGraphCompiler()

    async def execute(
        self,
        spec: Workflow,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowResult:
        prepared = self._prepare(spec, run, run_context, profile_config, kwargs)
        return await self._run(prepared)

    async def start(
        self,
        spec: Workflow,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowExecution:
        prepared = self._prepare(spec, run, run_context, profile_config, kwargs)
        future = asyncio.get_running_loop().create_task(
            self._run(prepared), name=f"molexp-workflow:{spec.name}"
        )
        return WorkflowExecution(
            spec.name,
            future,
            StatusView(prepared.compiled.names, prepared.state.statuses),
            prepared.state.request_cancel,
        )

    def _prepare(
        self,
        spec: Workflow,
        run: RunProtocol | None,
        run_context: RunContextProtocol | None,
        profile_config: Any,
        kwargs: Mapping[str, Any],
    ) -> _Prepared:
        options = validate_run_arguments(spec, run, run_context, profile_config, kwargs)
        compiled = self.compiler.compile(spec)
        return _Prepared(
            spec=spec,
            compiled=compiled,
            state=WorkflowState.for_workflow(compiled),
            options=options,
            run=run,
            run_context=run_context,
            profile_config=profile_config,
        )

    async def _run(self, prepared: _Prepared) -> WorkflowResult:
        return await execute_with_lifecycle(
            prepared.spec,
            prepared.options,
            run=prepared.run,
            run_context=prepared.run_context,
            profile_config=prepared.profile_config,
            drive=functools.partial(self._drive, prepared),
        )

    async def _drive(
        self,
        prepared: _Prepared,
        run_context: RunContextProtocol | None,
        plan: ResumePlan | None,
    ) -> WorkflowResult:
        options = prepared.options
        compiled = prepared.compiled
        deps = WorkflowDeps(
            compiled=compiled,
            scope=ExecutionScope(
                compiled.workflow_name,
                compiled.workflow_id,
                merged_config(run_context, options),
                run_context,
            ),
            inputs=options.inputs,
            loop=asyncio.get_running_loop(),
            max_concurrency=options.max_concurrency or sys.maxsize,
            cache=resolve_cache(options, run_context) if compiled.uses_cache else None,
            remote_executor=options.remote_executor,
            resume=plan,
        )
        state = prepared.state
        if plan is not None and plan.resumed_outputs:
            state.apply_resumed(compiled, plan.resumed_outputs)
        state.started_at = time.time()
        try:
            await compiled.graph.run(
                state=state, deps=deps, inputs=WorkflowStep(), infer_name=False
            )
        finally:
            state.cancel_running()
        return _build_result(compiled, state)


def _build_result(compiled: CompiledWorkflow, state: WorkflowState) -> WorkflowResult:
    names = compiled.names
    statuses = state.statuses
    outputs = state.outputs
    started = state.started
    finished = state.finished
    result_outputs: dict[str, Any] = {}
    timings: dict[str, TaskTiming] = {}
    for index, task_status in enumerate(statuses):
        if task_status in _OUTPUT_STATUSES:
            result_outputs[names[index]] = outputs[index]
        if started[index]:
            timings[names[index]] = TaskTiming(started[index], finished[index])
    if state.failure_order:
        status = WorkflowStatus.FAILED
    elif state.cancel_requested or TaskStatus.CANCELLED in statuses:
        status = WorkflowStatus.CANCELLED
    else:
        status = WorkflowStatus.SUCCEEDED
    return WorkflowResult(
        workflow_name=compiled.workflow_name,
        workflow_id=compiled.workflow_id,
        status=status,
        outputs=result_outputs,
        statuses=dict(zip(names, statuses, strict=True)),
        timings=timings,
        errors={names[index]: state.errors[index] for index in state.failure_order},
        failed=[names[index] for index in state.failure_order],
        skipped=[name for name, s in zip(names, statuses, strict=True) if s is TaskStatus.SKIPPED],
        sinks=compiled.sinks,
        started_at=datetime.fromtimestamp(state.started_at, tz=UTC),
        finished_at=datetime.fromtimestamp(state.finished_at, tz=UTC),
        cache={names[index]: note for index, note in state.cache_notes.items()},
    )
