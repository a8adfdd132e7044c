"""Every exception the workflow layer raises, under one base: :class:`WorkflowError`.

Each also derives from the builtin its callers have always caught (``ValueError`` for an invalid
definition, ``KeyError`` for an unknown task or config key, ...). The tree::

    WorkflowError
    ├── WorkflowValidationError (ValueError)   an invalid workflow definition
    ├── WorkflowFailed (RuntimeError)          tasks of an execution failed (.result)
    ├── NoRunContextError (RuntimeError)       a run-backed ctx helper used without a run
    ├── ChannelClosedError (RuntimeError)      an actor used a closed channel
    ├── ParallelMapError                       elements of parallel_map failed
    ├── UnknownTaskError (KeyError)            execute_task of a task the workflow lacks
    ├── ConfigKeyError (KeyError)              ctx.config[key] of a missing key
    ├── UnhashableInputError (TypeError)       a value with no canonical encoding
    └── CacheStoreError (RuntimeError)         a cache store cannot be read or written
        └── UnreadableCacheEntryError          an entry of another format, corrupt or half gone
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molexp.workflow.runtime import WorkflowResult

__all__ = [
    "CacheStoreError",
    "ChannelClosedError",
    "ConfigKeyError",
    "NoRunContextError",
    "ParallelMapError",
    "UnhashableInputError",
    "UnknownTaskError",
    "UnreadableCacheEntryError",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowValidationError",
]


class WorkflowError(Exception):
    """Base of every exception the workflow layer raises."""


class WorkflowValidationError(WorkflowError, ValueError):
    """A workflow definition is invalid (duplicate or empty names, unknown deps, cycles...)."""


class WorkflowFailed(WorkflowError, RuntimeError):
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


class NoRunContextError(WorkflowError, RuntimeError):
    """A task used a run-backed helper (``ctx.set_result``, ``ctx.artifact``...) outside a run."""

    def __init__(self, task_name: str, helper: str) -> None:
        self.task_name = task_name
        self.helper = helper
        super().__init__(
            f"task {task_name!r} used ctx.{helper}, which needs a run context, but the workflow is "
            "executing without one. Execute it under a tracked run with "
            "`await spec.execute(run=run)` (or pass `run_context=` from an open `run.start()`)."
        )


class ChannelClosedError(WorkflowError, RuntimeError):
    """An actor emitted to, or received from, a channel that was closed (and drained)."""

    def __init__(self, channel: str, task_name: str, action: str) -> None:
        self.channel = channel
        self.task_name = task_name
        super().__init__(f"task {task_name!r} cannot {action} channel {channel!r}: it is closed")


class ParallelMapError(WorkflowError):
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


class UnknownTaskError(WorkflowError, KeyError):
    """``execute_task`` was asked for a task the workflow does not have (readable message)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigKeyError(WorkflowError, KeyError):
    """``ctx.config[key]`` for a key the configuration does not have (readable message)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnhashableInputError(WorkflowError, TypeError):
    """A value (or something nested in it) has no canonical encoding.

    ``path`` says where the offending object sits (``"inputs['a'][2]"``) and ``type_name`` names
    its type.
    """

    def __init__(self, path: str, type_name: str, detail: str | None = None) -> None:
        self.path = path
        self.type_name = type_name
        self.detail = detail or f"cannot hash object of type {type_name}"
        super().__init__(f"{path}: {self.detail}")

    def with_prefix(self, prefix: str) -> UnhashableInputError:
        """The same error with ``prefix`` (e.g. ``"task 'train': "``) put before the path."""
        return UnhashableInputError(prefix + self.path, self.type_name, self.detail)


class CacheStoreError(WorkflowError, RuntimeError):
    """A result could not be stored, or a store could not be read or written."""


class UnreadableCacheEntryError(CacheStoreError):
    """An entry exists but cannot be used (other format version, corrupt, half-deleted)."""
