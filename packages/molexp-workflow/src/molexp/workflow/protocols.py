"""Structural interfaces of the workflow layer.

``Runnable`` and ``Streamable`` describe what can be registered as a task. ``RunContextProtocol``
and ``RunProtocol`` describe, structurally, what the workspace layer's ``Run`` / ``RunContext``
provide, so the workflow layer can execute under a tracked run without importing the workspace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from molexp.workflow.context import TaskContext
    from molexp.workflow.spec import TaskRegistration

__all__ = [
    "ArtifactSaverProtocol",
    "LogHandleProtocol",
    "RemoteExecutor",
    "RunContextProtocol",
    "RunProtocol",
    "Runnable",
    "Streamable",
    "WorkerRunContextProtocol",
    "WorkerRunOpener",
    "WorkspaceProtocol",
]


@runtime_checkable
class Runnable(Protocol):
    """Anything with ``execute(ctx)``; the method may be ``async def`` or a plain function."""

    def execute(self, ctx: Any) -> Any:
        """Run the task body.

        Args:
            ctx: The task's context.

        Returns:
            The task's output (awaited first if the method is ``async``).
        """


@runtime_checkable
class Streamable(Protocol):
    """Anything with ``stream(ctx) -> AsyncIterator``; as a task its output is the list of items."""

    def stream(self, ctx: Any) -> AsyncIterator[Any]:
        """Produce the task's output item by item.

        Args:
            ctx: The task's context.

        Returns:
            An async iterator of the items.
        """


@runtime_checkable
class LogHandleProtocol(Protocol):
    """A named log that accepts lines (``ctx.log(name).append(line)``)."""

    def append(self, line: str) -> None: ...


@runtime_checkable
class ArtifactSaverProtocol(Protocol):
    """Saves a named artifact of a run (``ctx.artifact.save(name, data)``)."""

    def save(self, name: str, data: Any) -> Any: ...


class WorkspaceProtocol(Protocol):
    """The part of a workspace the workflow layer uses: its root directory."""

    @property
    def root(self) -> Path: ...


@runtime_checkable
class RunContextProtocol(Protocol):
    """What a live run context (the workspace's ``RunContext``) offers to executing tasks."""

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters."""

    @property
    def config(self) -> Mapping[str, Any]:
        """The profile's merged config."""

    @property
    def run_dir(self) -> Path:
        """The run's directory."""

    @property
    def execution_id(self) -> str:
        """Id of this execution attempt."""

    @property
    def execution_dir(self) -> Path:
        """Directory of this execution attempt."""

    @property
    def artifact(self) -> ArtifactSaverProtocol:
        """Saver of this attempt's artifacts (``ctx.artifact.save(name, data)``)."""

    @property
    def workspace(self) -> Any:
        """The workspace the run belongs to."""

    def set_result(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in the run's results.

        Args:
            key: Name of the result.
            value: Plain JSON data.
        """

    def get_result(self, key: str, default: Any = None) -> Any:
        """A stored result of the run.

        Args:
            key: Name of the result.
            default: What to return if there is no result ``key``.

        Returns:
            The result, else ``default``.
        """

    def log_metric(
        self, name: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        """Add a point to the metric series ``name`` of this attempt.

        Args:
            name: Name of the metric (one path component).
            value: A finite real number.
            step: The point's step; None: one more than the last step of ``name``.
            timestamp: Unix seconds or an aware datetime; None: now.
        """

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, timestamp: Any = None
    ) -> None:
        """Add one point per metric, written as one durable batch.

        Args:
            values: ``name -> value`` of the points.
            step: The step of every point; None: per metric, one more than its last step.
            timestamp: Unix seconds or an aware datetime; None: now.
        """

    def log(self, name: str) -> LogHandleProtocol:
        """This attempt's log ``name``.

        Args:
            name: Name of the log.

        Returns:
            A handle that appends lines to it.
        """

    def find_asset(self, name: str) -> Any:
        """The asset ``name`` visible from the run.

        Args:
            name: Name of the asset.

        Returns:
            The asset, or None if there is none.
        """

    def checkpoint(self, name: str, data: Any = None) -> Any:
        """Append a checkpoint to the run's chain.

        Args:
            name: Name of the checkpoint.
            data: What to store; None records a marker.

        Returns:
            The recorded checkpoint.
        """

    def record_execution_state(self, state: Mapping[str, Any]) -> Any:
        """Record the state of this execution.

        Args:
            state: Plain JSON data describing the execution.

        Returns:
            The recorded state asset.
        """

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None:
        """End this attempt as failed even if the run's ``with`` block exits normally.

        Args:
            error: The exception or message that describes the failure.
            task_name: The task that failed, if one did.
        """


class WorkerRunContextProtocol(RunContextProtocol, Protocol):
    """The run context of one task running in another process or on another host.

    ``close()`` ends it and returns a picklable *report* (what only the run's owner may record,
    e.g. results) that travels back to the submitting process.
    """

    def close(self) -> Any: ...


class WorkerRunOpener(Protocol):
    """Picklable factory of worker-side run contexts, made by the owner's run context.

    A run context that can be used from other processes offers ``worker_opener()`` returning
    one, and ``apply_worker_report(report, task_name)`` to record a worker's report; the
    workflow layer sends the opener with each task and hands the report back (see
    ``molexp.workflow._dask``). The workspace layer implements both.
    """

    def open(self, task_name: str) -> WorkerRunContextProtocol: ...


@runtime_checkable
class RunProtocol(Protocol):
    """A tracked run (the workspace's ``Run``) that a workflow can execute under.

    Optional: a run class with ``START_RECORDS_WORKFLOW = True`` accepts
    ``start(profile_config=..., workflow=payload)`` and stores ``payload`` as ``set_workflow``
    would, in the write that starts the attempt; the lifecycle then makes one write, not two.
    """

    @property
    def id(self) -> str:
        """The run's id."""

    def start(self, profile_config: Any = None) -> AbstractContextManager[RunContextProtocol]:
        """Start an execution attempt of the run.

        Args:
            profile_config: The profile's merged config, if any.

        Returns:
            A context manager yielding the attempt's run context.
        """

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        """Record the workflow the run executes.

        Args:
            payload: Plain JSON description of the workflow.
        """


RemoteExecutor: TypeAlias = "Callable[[TaskRegistration, TaskContext], Awaitable[Any]]"
"""Hook that runs a task carrying a ``remote=`` hint: ``await executor(registration, ctx)``."""
