"""``GraphWorkflowRuntime``: the default runtime, driving executions with pydantic-graph.

It compiles the workflow (synchronously, before any task body runs) and drives the
``WorkflowStep`` trampoline graph; validation, the run lifecycle and the result come from the
``WorkflowRuntime`` template (:mod:`molexp.workflow.runtime`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING

from molexp.workflow._lifecycle import merged_config, resolve_cache
from molexp.workflow._pydantic_graph.compiler import CompiledWorkflow, WorkflowGraphCompiler
from molexp.workflow._pydantic_graph.node import WorkflowStep
from molexp.workflow._pydantic_graph.state import WorkflowDeps, WorkflowState
from molexp.workflow.context import ExecutionScope
from molexp.workflow.runtime import (
    ExecutionOptions,
    PreparedExecution,
    WorkflowResult,
    WorkflowRuntime,
    result_from_trace,
)

if TYPE_CHECKING:
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RunContextProtocol
    from molexp.workflow.spec import Workflow

__all__ = ["GraphWorkflowRuntime"]


class _GraphExecution(PreparedExecution):
    """One execution: the compiled graph and its state, driven by the ``WorkflowStep`` loop."""

    def __init__(
        self, spec: Workflow, compiled: CompiledWorkflow, options: ExecutionOptions
    ) -> None:
        self.spec = spec
        self.compiled = compiled
        self.options = options
        self.state = WorkflowState.for_workflow(compiled)
        self.names = compiled.names
        self.statuses = self.state.statuses

    def request_cancel(self) -> None:
        self.state.request_cancel()

    async def drive(
        self, run_context: RunContextProtocol | None, plan: ResumePlan | None
    ) -> WorkflowResult:
        options = self.options
        compiled = self.compiled
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
            cache=resolve_cache(options, run_context, self.spec) if compiled.uses_cache else None,
            remote_executor=options.remote_executor,
            resume=plan,
        )
        state = self.state
        if plan is not None and plan.resumed_outputs:
            state.apply_resumed(compiled, plan.resumed_outputs)
        state.started_at = time.time()
        try:
            await compiled.graph.run(
                state=state, deps=deps, inputs=WorkflowStep(), infer_name=False
            )
        finally:
            state.cancel_running()
        return result_from_trace(
            compiled.workflow_name, compiled.workflow_id, compiled.names, compiled.sinks, state
        )


class GraphWorkflowRuntime(WorkflowRuntime):
    """Executes workflows as a pydantic-graph run of the ``WorkflowStep`` trampoline."""

    def __init__(self) -> None:
        self.compiler = WorkflowGraphCompiler()

    def prepare(self, spec: Workflow, options: ExecutionOptions) -> PreparedExecution:
        return _GraphExecution(spec, self.compiler.compile(spec), options)
