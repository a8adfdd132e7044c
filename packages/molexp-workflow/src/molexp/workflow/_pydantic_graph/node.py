"""The ``WorkflowStep`` trampoline node and the per-task coroutine it launches.

pydantic-graph drives an execution as a loop of one node type. Each ``WorkflowStep.run``:
launches every ready task as an asyncio task (bounded by ``max_concurrency``), then, for up to
``STEP_SECONDS``, waits until at least one finishes, drains *all* finished tasks in one go
(recording outcomes, skipping the dependents of failures, making dependents ready) and launches
what became ready; it returns ``WorkflowStep()`` again or ``End(state)`` when nothing is left.
Scheduling is therefore dependency-driven: a task starts as soon as its own dependencies are done.

Waiting uses a done-callback plus an ``asyncio.Event`` rather than re-registering every running
task with ``asyncio.wait(FIRST_COMPLETED)`` on each step; the semantics are the same (wake on the
first completion, then take every completed task) at O(1) cost per task instead of O(running).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from molexp.workflow._pydantic_graph.state import WorkflowDeps, WorkflowState
from molexp.workflow.runtime import TaskError, TaskStatus
from pydantic_graph import BaseNode, End, GraphBuilder, GraphRunContext
from pydantic_graph.step import NodeStep

if TYPE_CHECKING:
    from molexp.workflow._pydantic_graph.compiler import StepEntry
    from molexp.workflow.context import TaskContext
    from pydantic_graph import Graph

__all__ = ["WorkflowStep", "workflow_graph"]

_logger = logging.getLogger("molexp.workflow")

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_SUCCEEDED = TaskStatus.SUCCEEDED
_CACHED = TaskStatus.CACHED
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED

STEP_SECONDS = 0.05
"""How long one ``WorkflowStep`` keeps draining finished tasks and launching ready ones before it
hands control back to pydantic-graph."""


@dataclass
class WorkflowStep(BaseNode[WorkflowState, WorkflowDeps, WorkflowState]):
    """The single trampoline node every execution loops through."""

    async def run(
        self, ctx: GraphRunContext[WorkflowState, WorkflowDeps]
    ) -> WorkflowStep | End[WorkflowState]:
        state = ctx.state
        deps = ctx.deps
        _launch_ready(state, deps)
        # Several rounds of wait/drain/launch per step (up to STEP_SECONDS): a graph step costs
        # far more than a task, and a chain would otherwise pay one step per task.
        deadline = time.monotonic() + STEP_SECONDS
        while state.running:
            if not state.completed:
                state.wake.clear()
                try:
                    await state.wake.wait()
                except asyncio.CancelledError:
                    state.cancel_running()
                    raise
            _drain_completed(state, deps)
            _launch_ready(state, deps)
            if state.cancel_requested or time.monotonic() >= deadline:
                break
        if state.running:
            return WorkflowStep()
        _finish(state)
        return End(state)


@functools.cache
def workflow_graph() -> Graph:
    """The pydantic-graph ``Graph``: start -> WorkflowStep -> (WorkflowStep | End)."""
    builder = GraphBuilder(
        name="molexp_workflow",
        state_type=WorkflowState,
        deps_type=WorkflowDeps,
        input_type=WorkflowStep,
        output_type=WorkflowState,
        auto_instrument=False,
    )
    builder.add(
        builder.edge_from(builder.start_node).to(NodeStep(WorkflowStep)),
        builder.node(WorkflowStep),
    )
    return builder.build()


def _launch_ready(state: WorkflowState, deps: WorkflowDeps) -> None:
    ready = state.ready
    if state.cancel_requested:
        ready.clear()
        return
    running = state.running
    limit = deps.max_concurrency
    entries = deps.compiled.entries
    outputs = state.outputs
    create_task = deps.loop.create_task
    on_done = state.on_task_done
    while ready and len(running) < limit:
        entry = entries[ready.popleft()]
        dep_indices = entry.deps
        if not dep_indices:
            inputs = deps.inputs
        elif len(dep_indices) == 1:
            inputs = outputs[dep_indices[0]]
        else:
            inputs = MappingProxyType(
                {name: outputs[i] for name, i in zip(entry.dep_names, dep_indices, strict=True)}
            )
        task = create_task(_run_task(state, deps, entry, inputs))
        running[task] = entry.index
        task.add_done_callback(on_done)


async def _run_task(
    state: WorkflowState, deps: WorkflowDeps, entry: StepEntry, inputs: Any
) -> None:
    index = entry.index
    state.statuses[index] = _RUNNING
    state.started[index] = time.time()
    ctx = entry.context_type(deps.scope, entry.name, inputs)
    status = _SUCCEEDED
    try:
        if entry.cache:
            output, status = await _run_cached(state, entry, ctx, deps)
        elif entry.remote is not None and deps.remote_executor is not None:
            output = await deps.remote_executor(entry.registration, ctx)
        else:
            output = await entry.runner(ctx)
    except asyncio.CancelledError:
        state.finished[index] = time.time()
        state.statuses[index] = _CANCELLED
        raise
    except Exception as exc:
        state.finished[index] = time.time()
        state.errors[index] = TaskError.from_exception(exc)
        state.failure_order.append(index)
        state.statuses[index] = _FAILED
        return
    state.finished[index] = time.time()
    state.outputs[index] = output
    state.statuses[index] = status
    if deps.resume is not None:
        deps.resume.record_success(entry.name, output)


async def _run_cached(
    state: WorkflowState, entry: StepEntry, ctx: TaskContext, deps: WorkflowDeps
) -> tuple[Any, TaskStatus]:
    from molexp.workflow._resume import shared_snapshot, snapshot_task
    from molexp.workflow.cache import explain_miss
    from molexp.workflow.reads import ReadRecorder, RunValues, whole_run_reads

    registration = entry.registration
    plan = deps.resume
    snapshot = plan.snapshot(entry.name) if plan is not None else None
    if snapshot is None and plan is None:  # no run: computed once per function and execution
        shared = shared_snapshot(registration, deps.snapshots)
        snapshot = shared if not isinstance(shared, str) else None
    if snapshot is None:  # no snapshot: this raises the reason here
        snapshot = snapshot_task(registration)
    # A read-only mapping of several dependency outputs is hashed as the plain dict it mirrors.
    cache_inputs = dict(ctx.inputs) if len(entry.deps) > 1 else ctx.inputs
    cache = deps.cache
    run_values = RunValues.of(ctx)
    lookup = cache.lookup(snapshot, cache_inputs, run=run_values)
    if lookup.hit:
        state.cache_notes[entry.index] = "hit"
        return lookup.value, _CACHED
    state.cache_notes[entry.index] = explain_miss(cache, snapshot, cache_inputs, run_values, lookup)
    if entry.remote is not None and deps.remote_executor is not None:
        # The executor runs the body elsewhere: its reads cannot be observed, key on the run.
        output = await deps.remote_executor(registration, ctx)
        reads = whole_run_reads(run_values)
        uncacheable: list[str] = []
    else:
        recorder = ReadRecorder()
        ctx._track_reads(recorder)
        try:
            output = await entry.runner(ctx)
        finally:
            ctx._track_reads(None)
        reads, uncacheable = recorder.reads(), recorder.uncacheable
    if lookup.key is None or uncacheable:
        why = lookup.reason if lookup.key is None else f"it read {', '.join(uncacheable)}"
        workflow = deps.scope.workflow_name
        _logger.warning("task %r of workflow %r ran uncached: %s", entry.name, workflow, why)
        state.cache_notes[entry.index] = f"not stored: {why}"
        return output, _SUCCEEDED
    # A CacheStoreError names the task and fails it.
    cache.put(snapshot, cache_inputs, output, reads=reads)
    return output, _SUCCEEDED


def _drain_completed(state: WorkflowState, deps: WorkflowDeps) -> None:
    completed = state.completed
    state.completed = []
    running = state.running
    statuses = state.statuses
    remaining = state.remaining
    ready = state.ready
    entries = deps.compiled.entries
    fatal: BaseException | None = None
    for task in completed:
        index = running.pop(task)
        status = statuses[index]
        if status is _SUCCEEDED or status is _CACHED:
            for dependent in entries[index].dependents:
                left = remaining[dependent] - 1
                remaining[dependent] = left
                if left == 0 and statuses[dependent] is _PENDING:
                    ready.append(dependent)
        elif status is _FAILED:
            _mark_dependents(statuses, entries, index, _SKIPPED)
        elif task.cancelled():
            statuses[index] = _CANCELLED
            _mark_dependents(statuses, entries, index, _CANCELLED)
        else:
            # Only a BaseException that is neither an Exception nor a cancellation gets here
            # (e.g. SystemExit): it is not a task failure, it stops the whole execution.
            fatal = task.exception()
    if fatal is not None:
        state.cancel_running()
        raise fatal


def _mark_dependents(
    statuses: list[TaskStatus], entries: tuple[StepEntry, ...], index: int, status: TaskStatus
) -> None:
    """Give every not-yet-started transitive dependent of ``index`` the terminal ``status``."""
    stack = list(entries[index].dependents)
    while stack:
        dependent = stack.pop()
        if statuses[dependent] is _PENDING:
            statuses[dependent] = status
            stack.extend(entries[dependent].dependents)


def _finish(state: WorkflowState) -> None:
    statuses = state.statuses
    for index, status in enumerate(statuses):
        if status is _PENDING:  # only left behind by a cancellation request
            statuses[index] = _CANCELLED
    state.finished_at = time.time()
