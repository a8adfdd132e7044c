"""Exceptions raised by the workflow layer: validation, execution failure, missing run context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.workflow.runtime import WorkflowResult

__all__ = [
    "ChannelClosedError",
    "NoRunContextError",
    "ParallelMapError",
    "WorkflowFailed",
    "WorkflowValidationError",
]


class WorkflowValidationError(ValueError):
    """A workflow definition is invalid (duplicate or empty names, unknown deps, cycles...)."""


class WorkflowFailed(RuntimeError):
    """One or more tasks of an execution failed.

    ``result`` is the full :class:`~molexp.workflow.WorkflowResult` (outputs of the tasks that
    did succeed are kept), ``task_name`` names the first task that failed and ``failed_tasks``
    all of them.
    """

    def __init__(self, result: WorkflowResult) -> None:
        self.result = result
        self.failed_tasks: list[str] = result.failed
        self.task_name: str | None = self.failed_tasks[0] if self.failed_tasks else None
        details = "; ".join(
            f"task {name!r} raised {result.errors[name].type}: {result.errors[name].message}"
            for name in self.failed_tasks
        )
        skipped = result.skipped
        suffix = f" (skipped dependents: {', '.join(map(repr, skipped))})" if skipped else ""
        super().__init__(f"workflow {result.workflow_name!r} failed: {details}{suffix}")


class NoRunContextError(RuntimeError):
    """A task used a run-backed helper (``ctx.set_result``, ``ctx.artifact``...) outside a run."""

    def __init__(self, task_name: str, helper: str) -> None:
        self.task_name = task_name
        self.helper = helper
        super().__init__(
            f"task {task_name!r} used ctx.{helper}, which needs a run context, but the workflow is "
            "executing without one. Execute it under a tracked run with "
            "`await spec.execute(run=run)` (or pass `run_context=` from an open `run.start()`)."
        )


class ChannelClosedError(RuntimeError):
    """An actor emitted to, or received from, a channel that was closed (and drained)."""

    def __init__(self, channel: str, task_name: str, action: str) -> None:
        self.channel = channel
        self.task_name = task_name
        super().__init__(f"task {task_name!r} cannot {action} channel {channel!r}: it is closed")


class ParallelMapError(Exception):
    """Some elements of :func:`~molexp.workflow.parallel_map` failed.

    ``results`` holds every successful result at its input index (``None`` where the element failed)
    and ``errors`` maps each failed index to its exception, so no successful result is lost.
    """

    def __init__(self, results: list[Any], errors: Mapping[int, BaseException]) -> None:
        self.results = results
        self.errors = dict(errors)
        first_index = min(self.errors)
        first = self.errors[first_index]
        super().__init__(
            f"{len(self.errors)} of {len(results)} parallel_map elements failed; first at index "
            f"{first_index}: {type(first).__name__}: {first}"
        )
