"""Executing ONE task of a workflow on its own, with inputs and config given by the caller.

This is what a scheduler job runs for a task carrying a ``remote=`` hint: the process that
executes the workflow hands the task's inputs over, a worker process rebuilds the task's context
here and awaits the task, and the output (or the exception) travels back. The context is built
the way the runtime builds it: ``ctx.inputs`` is ``inputs`` exactly as given (for a task with
several dependencies, pass the ``name -> output`` mapping), ``ctx.config`` the read-only
``config`` and ``ctx.run_context`` the ``run_context`` (``None``: the run-backed helpers raise
``NoRunContextError``). Sync bodies run in a worker thread and streams are collected into a list,
exactly as in a workflow execution. Nothing is cached, resumed or recorded, and the task's own
exception propagates unchanged.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from molexp.workflow.context import ExecutionScope, TaskContext
from molexp.workflow.errors import UnknownTaskError

if TYPE_CHECKING:
    from molexp.workflow.protocols import RunContextProtocol
    from molexp.workflow.spec import Workflow

__all__ = ["UnknownTaskError", "execute_task"]


async def execute_task(
    spec: Workflow,
    task_name: str,
    inputs: Any = None,
    *,
    config: Mapping[str, Any] | None = None,
    run_context: RunContextProtocol | None = None,
) -> Any:
    """Await the task ``task_name`` of ``spec`` once and return its output.

    Raises ``UnknownTaskError`` (a ``KeyError``) naming the workflow and its tasks for an
    unknown task, and ``ValueError`` for an actor (actors exchange messages with the other tasks
    of one execution over in-process channels, so they cannot execute alone).
    """
    registration = spec.tasks.get(task_name)
    if registration is None:
        known = list(spec.tasks)
        close = difflib.get_close_matches(task_name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownTaskError(
            f"workflow {spec.name!r} has no task {task_name!r}{hint}; "
            f"its tasks: {', '.join(known) or 'none'}"
        )
    if registration.is_actor:
        raise ValueError(
            f"task {task_name!r} of workflow {spec.name!r} is an actor: actors talk to the other "
            "tasks of one execution over in-process channels and cannot execute on their own"
        )
    scope = ExecutionScope(spec.name, spec.workflow_id, config, run_context)
    return await registration.runner(TaskContext(scope, task_name, inputs))
