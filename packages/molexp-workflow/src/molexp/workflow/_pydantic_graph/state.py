"""Mutable per-execution ``WorkflowState`` and immutable per-execution ``WorkflowDeps``.

Both are plain slotted dataclasses over index-addressed lists: the trampoline touches them once
per task, so they avoid any per-task validation or allocation beyond what is unavoidable.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from molexp.workflow.runtime import TaskError, TaskStatus

if TYPE_CHECKING:
    from molexp.workflow._pydantic_graph.compiler import CompiledWorkflow
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.context import ExecutionScope
    from molexp.workflow.protocols import RemoteExecutor

__all__ = ["WorkflowDeps", "WorkflowState"]


@dataclass(slots=True, eq=False)
class WorkflowState:
    """What changes while one execution runs (pydantic-graph's graph state)."""

    statuses: list[TaskStatus]
    outputs: list[Any]
    started: list[float]
    finished: list[float]
    remaining: list[int]
    ready: deque[int]
    errors: dict[int, TaskError] = field(default_factory=dict)
    failure_order: list[int] = field(default_factory=list)
    cache_notes: dict[int, str] = field(default_factory=dict)
    running: dict[asyncio.Task[None], int] = field(default_factory=dict)
    completed: list[asyncio.Task[None]] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0

    @classmethod
    def for_workflow(cls, compiled: CompiledWorkflow) -> WorkflowState:
        size = len(compiled.entries)
        return cls(
            statuses=[TaskStatus.PENDING] * size,
            outputs=[None] * size,
            started=[0.0] * size,
            finished=[0.0] * size,
            remaining=list(compiled.indegree),
            ready=deque(compiled.roots),
        )

    def apply_resumed(self, compiled: CompiledWorkflow, resumed: Mapping[str, Any]) -> None:
        """Mark ``resumed`` (task name -> stored output) done before anything runs.

        The resumed set is closed under dependencies, so the tasks ready to run are exactly the
        pending ones whose dependencies are all resumed.
        """
        position = {name: i for i, name in enumerate(compiled.names)}
        statuses = self.statuses
        remaining = self.remaining
        for name, output in resumed.items():
            index = position[name]
            statuses[index] = TaskStatus.RESUMED
            self.outputs[index] = output
            for dependent in compiled.entries[index].dependents:
                remaining[dependent] -= 1
        self.ready = deque(
            index
            for index, status in enumerate(statuses)
            if status is TaskStatus.PENDING and remaining[index] == 0
        )

    def on_task_done(self, task: asyncio.Task[None]) -> None:
        """Done-callback of every task: queue it for the trampoline and wake it."""
        self.completed.append(task)
        self.wake.set()

    def request_cancel(self) -> None:
        """Start nothing new and cancel what is running (``WorkflowExecution.cancel``)."""
        self.cancel_requested = True
        self.cancel_running()
        self.wake.set()

    def cancel_running(self) -> None:
        for task in self.running:
            task.cancel()


@dataclass(slots=True, eq=False)
class WorkflowDeps:
    """What stays fixed during one execution (pydantic-graph's graph deps)."""

    compiled: CompiledWorkflow
    scope: ExecutionScope
    inputs: Any
    loop: asyncio.AbstractEventLoop
    max_concurrency: int
    cache: Any = None
    remote_executor: RemoteExecutor | None = None
    resume: ResumePlan | None = None
    snapshots: dict[tuple[int, bool], Any] = field(default_factory=dict)
    """Snapshots of cached tasks computed without a resume plan, shared as in
    ``molexp.workflow._resume.shared_snapshot``."""
