"""MolExp workflow layer: author, compile and execute typed DAGs of async tasks.

Public surface (httpx style): everything users need is importable from ``molexp.workflow``.
Caching and snapshot names are resolved lazily on first access so ``import molexp.workflow``
stays cheap (no pydantic, pydantic-graph or asyncio import until a workflow executes).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from molexp.workflow.context import ActorContext, TaskContext
from molexp.workflow.errors import (
    CacheStoreError,
    ChannelClosedError,
    ConfigKeyError,
    NoRunContextError,
    ParallelMapError,
    UnhashableInputError,
    UnknownTaskError,
    UnreadableCacheEntryError,
    WorkflowError,
    WorkflowFailed,
    WorkflowValidationError,
)
from molexp.workflow.protocols import RunContextProtocol, Runnable, RunProtocol, Streamable
from molexp.workflow.runtime import (
    TaskError,
    TaskStatus,
    TaskTiming,
    WorkflowExecution,
    WorkflowResult,
    WorkflowRuntime,
    WorkflowStatus,
    create_default_runtime,
)
from molexp.workflow.spec import (
    TaskRegistration,
    Workflow,
    WorkflowBuilder,
    WorkflowDSL,
    join,
    parallel_map,
    workflow,
)
from molexp.workflow.task import Actor, Task

if TYPE_CHECKING:
    from molexp.workflow._dask import DaskRuntime, runtime_from_config
    from molexp.workflow._hashing import hash_value
    from molexp.workflow._resume import outdated_tasks
    from molexp.workflow.bindings import promote_callable
    from molexp.workflow.cache import (
        CACHE_FORMAT_VERSION,
        Caching,
        FileCacheStore,
        MemoryCacheStore,
        WorkspaceCacheStore,
    )
    from molexp.workflow.reads import RunRead, RunValues
    from molexp.workflow.snapshot import TaskSnapshot
    from molexp.workflow.snapshot_ref import WorkflowSnapshotRef

__all__ = [
    "CACHE_FORMAT_VERSION",
    "Actor",
    "ActorContext",
    "CacheStoreError",
    "Caching",
    "ChannelClosedError",
    "ConfigKeyError",
    "DaskRuntime",
    "FileCacheStore",
    "MemoryCacheStore",
    "NoRunContextError",
    "ParallelMapError",
    "RunContextProtocol",
    "RunProtocol",
    "RunRead",
    "RunValues",
    "Runnable",
    "Streamable",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskRegistration",
    "TaskSnapshot",
    "TaskStatus",
    "TaskTiming",
    "UnhashableInputError",
    "UnknownTaskError",
    "UnreadableCacheEntryError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowDSL",
    "WorkflowError",
    "WorkflowExecution",
    "WorkflowFailed",
    "WorkflowResult",
    "WorkflowRuntime",
    "WorkflowSnapshotRef",
    "WorkflowStatus",
    "WorkflowValidationError",
    "WorkspaceCacheStore",
    "create_default_runtime",
    "hash_value",
    "join",
    "outdated_tasks",
    "parallel_map",
    "promote_callable",
    "runtime_from_config",
    "workflow",
]

_LAZY: dict[str, str] = {
    "TaskSnapshot": "molexp.workflow.snapshot",
    "RunRead": "molexp.workflow.reads",
    "RunValues": "molexp.workflow.reads",
    "Caching": "molexp.workflow.cache",
    "FileCacheStore": "molexp.workflow.cache",
    "MemoryCacheStore": "molexp.workflow.cache",
    "WorkspaceCacheStore": "molexp.workflow.cache",
    "CACHE_FORMAT_VERSION": "molexp.workflow.cache",
    "WorkflowSnapshotRef": "molexp.workflow.snapshot_ref",
    "DaskRuntime": "molexp.workflow._dask",
    "runtime_from_config": "molexp.workflow._dask",
    "promote_callable": "molexp.workflow.bindings",
    "hash_value": "molexp.workflow._hashing",
    "outdated_tasks": "molexp.workflow._resume",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'molexp.workflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    _publish(value)
    globals()[name] = value
    return value


def _publish(value: Any) -> None:
    """Public names say where they live: ``molexp.workflow.X``, not their private module."""
    private = getattr(value, "__module__", "").startswith(f"{__name__}._")
    if private and (isinstance(value, type) or hasattr(value, "__code__")):
        value.__module__ = __name__


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _CallableWorkflowPackage(types.ModuleType):
    """Makes the package itself callable like ``workflow(name=...)``.

    ``import molexp as me`` re-exports ``workflow``, but once ``molexp.workflow`` is imported the
    package attribute of that name is this subpackage; calling it builds a DSL, so
    ``me.workflow(name="demo")`` and ``me.workflow.Workflow`` both work.
    """

    def __call__(self, name: str) -> WorkflowDSL:
        return workflow(name)


sys.modules[__name__].__class__ = _CallableWorkflowPackage
