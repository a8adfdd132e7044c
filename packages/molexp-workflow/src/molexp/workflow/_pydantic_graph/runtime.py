"""``GraphWorkflowRuntime``: the default runtime, driving executions with pydantic-graph.

It validates and compiles the workflow (synchronously, before any task body runs), optionally
opens the tracked run around the execution, runs the ``WorkflowStep`` trampoline graph and turns
the final ``WorkflowState`` into a ``WorkflowResult``.

Under ``run=``: ``with run.start(profile_config=...) as rc``, then ``run.set_workflow({...})``,
execute, ``rc.record_execution_state(result.to_state())``; a failed workflow raises
``WorkflowFailed`` inside the ``with`` (so the run ends failed, naming the task), a cancelled one
calls ``rc.mark_failed(...)``. With ``raise_on_failure=False`` the failure is caught after the run
closed and the result returned.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from molexp.workflow._pydantic_graph.compiler import CompiledWorkflow, WorkflowGraphCompiler
from molexp.workflow._pydantic_graph.node import WorkflowStep
from molexp.workflow._pydantic_graph.state import WorkflowDeps, WorkflowState
from molexp.workflow.context import ExecutionScope
from molexp.workflow.errors import WorkflowFailed
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
    from molexp.workflow.protocols import RunContextProtocol, RunProtocol
    from molexp.workflow.spec import Workflow

__all__ = ["GraphWorkflowRuntime"]

_process_cache: Any = None


def _default_memory_cache() -> Any:
    """The process-wide in-memory ``Caching`` used without ``cache=`` and without a run."""
    global _process_cache
    if _process_cache is None:
        from molexp.workflow.cache import Caching

        _process_cache = Caching()
    return _process_cache


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
        if run is not None and run_context is not None:
            raise ValueError(
                f"workflow {spec.name!r}: pass either run= (to open the run) or run_context= "
                "(an already open run context), not both"
            )
        if run is not None and not (
            callable(getattr(run, "start", None)) and callable(getattr(run, "set_workflow", None))
        ):
            raise TypeError(
                f"workflow {spec.name!r}: run= must be a Run with start() and set_workflow(), "
                f"got {type(run).__name__}"
            )
        if profile_config is not None and run is None:
            raise ValueError(
                f"workflow {spec.name!r}: profile_config= is only used when opening a run; "
                "pass run= as well"
            )
        options = ExecutionOptions.from_kwargs(spec.name, kwargs)
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
        run = prepared.run
        if run is None:
            return await self._run_in(prepared, prepared.run_context)
        spec = prepared.spec
        failure: WorkflowFailed | None = None
        try:
            with run.start(profile_config=prepared.profile_config) as run_context:
                run.set_workflow({"workflow_id": spec.workflow_id, "name": spec.name})
                result = await self._drive(prepared, run_context)
                run_context.record_execution_state(result.to_state())
                if result.status is WorkflowStatus.FAILED:
                    failure = WorkflowFailed(result)
                    raise failure from _first_exception(result)
                if result.status is WorkflowStatus.CANCELLED:
                    run_context.mark_failed(f"workflow {spec.name!r} was cancelled")
        except WorkflowFailed as exc:
            if exc is failure and not prepared.options.raise_on_failure:
                return exc.result
            raise
        return result

    async def _run_in(
        self, prepared: _Prepared, run_context: RunContextProtocol | None
    ) -> WorkflowResult:
        result = await self._drive(prepared, run_context)
        if run_context is not None:
            run_context.record_execution_state(result.to_state())
        if result.status is WorkflowStatus.FAILED and prepared.options.raise_on_failure:
            raise WorkflowFailed(result) from _first_exception(result)
        return result

    async def _drive(
        self, prepared: _Prepared, run_context: RunContextProtocol | None
    ) -> WorkflowResult:
        options = prepared.options
        compiled = prepared.compiled
        config: dict[str, Any] = {}
        if run_context is not None:
            config.update(run_context.config)
        if options.config:
            config.update(options.config)
        deps = WorkflowDeps(
            compiled=compiled,
            scope=ExecutionScope(compiled.workflow_name, compiled.workflow_id, config, run_context),
            inputs=options.inputs,
            loop=asyncio.get_running_loop(),
            max_concurrency=options.max_concurrency or sys.maxsize,
            cache=_resolve_cache(options, run_context) if compiled.uses_cache else None,
            remote_executor=options.remote_executor,
        )
        state = prepared.state
        state.started_at = time.time()
        try:
            await compiled.graph.run(
                state=state, deps=deps, inputs=WorkflowStep(), infer_name=False
            )
        finally:
            state.cancel_running()
        return _build_result(compiled, state)


def _resolve_cache(options: ExecutionOptions, run_context: RunContextProtocol | None) -> Any:
    if options.cache is not None:
        return options.cache
    if run_context is not None:
        from molexp.workflow.cache import Caching, WorkspaceCacheStore

        return Caching(store=WorkspaceCacheStore(run_context.workspace))
    return _default_memory_cache()


def _first_exception(result: WorkflowResult) -> BaseException | None:
    if not result.failed:
        return None
    return result.errors[result.failed[0]].exception


def _build_result(compiled: CompiledWorkflow, state: WorkflowState) -> WorkflowResult:
    names = compiled.names
    statuses = state.statuses
    outputs = state.outputs
    started = state.started
    finished = state.finished
    result_outputs: dict[str, Any] = {}
    timings: dict[str, TaskTiming] = {}
    for index, task_status in enumerate(statuses):
        if task_status is TaskStatus.SUCCEEDED or task_status is TaskStatus.CACHED:
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
    )
