"""MolExp: the public surface in one import (``import molexp as me``).

This module owns nothing but re-exports. Names resolve lazily on first attribute access so that
``import molexp`` stays fast and ``molexp.workflow`` keeps working when the workspace layer is not
installed. ``molexp`` is a namespace shared by several distributions; ``extend_path`` lets their
``molexp.<layer>`` packages be found wherever each one is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Spelled the way static readers (griffe, for the API docs) recognise a pkgutil-style namespace.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # workspace layer
    "Workspace": "molexp.workspace",
    "Project": "molexp.workspace",
    "Experiment": "molexp.workspace",
    "Run": "molexp.workspace",
    "RunContext": "molexp.workspace",
    "RunMetadata": "molexp.workspace",
    "RunStatus": "molexp.workspace",
    "ExecutionRecord": "molexp.workspace",
    "ErrorInfo": "molexp.workspace",
    "ProfileConfig": "molexp.workspace",
    "ParamSpace": "molexp.workspace",
    "GridSpace": "molexp.workspace",
    "UniformSpace": "molexp.workspace",
    "entry": "molexp.workspace",
    "derive_run_id": "molexp.workspace",
    "reap_stale_runs": "molexp.workspace",
    # assets layer
    "Asset": "molexp.assets",
    "AssetKind": "molexp.assets",
    "DataAsset": "molexp.assets",
    "ArtifactAsset": "molexp.assets",
    "LogAsset": "molexp.assets",
    "CheckpointAsset": "molexp.assets",
    "ErrorTraceAsset": "molexp.assets",
    "ExecutionStateAsset": "molexp.assets",
    "Producer": "molexp.assets",
    # workflow layer
    "workflow": "molexp.workflow",
    "Workflow": "molexp.workflow",
    "WorkflowBuilder": "molexp.workflow",
    "Task": "molexp.workflow",
    "Actor": "molexp.workflow",
    "TaskContext": "molexp.workflow",
    "ActorContext": "molexp.workflow",
    "WorkflowResult": "molexp.workflow",
    "WorkflowFailed": "molexp.workflow",
    "TaskStatus": "molexp.workflow",
    "parallel_map": "molexp.workflow",
    "join": "molexp.workflow",
    "Caching": "molexp.workflow",
    "TaskSnapshot": "molexp.workflow",
    "WorkflowSnapshotRef": "molexp.workflow",
    "set_workflow": "molexp.workflow.bindings",
    "promote_callable": "molexp.workflow.bindings",
}

__all__ = [
    "Actor",
    "ActorContext",
    "ArtifactAsset",
    "Asset",
    "AssetKind",
    "Caching",
    "CheckpointAsset",
    "DataAsset",
    "ErrorInfo",
    "ErrorTraceAsset",
    "ExecutionRecord",
    "ExecutionStateAsset",
    "Experiment",
    "GridSpace",
    "LogAsset",
    "ParamSpace",
    "Producer",
    "ProfileConfig",
    "Project",
    "Run",
    "RunContext",
    "RunMetadata",
    "RunStatus",
    "Task",
    "TaskContext",
    "TaskSnapshot",
    "TaskStatus",
    "UniformSpace",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowFailed",
    "WorkflowResult",
    "WorkflowSnapshotRef",
    "Workspace",
    "derive_run_id",
    "entry",
    "join",
    "parallel_map",
    "promote_callable",
    "reap_stale_runs",
    "set_workflow",
    "workflow",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'molexp' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # `molexp.workflow` is both the DSL entry point and a subpackage; the import system binds the
    # subpackage to this name, and that package is callable exactly like `workflow(name=...)`.
    value = module if name == "workflow" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from molexp.assets import (
        ArtifactAsset,
        Asset,
        AssetKind,
        CheckpointAsset,
        DataAsset,
        ErrorTraceAsset,
        ExecutionStateAsset,
        LogAsset,
        Producer,
    )
    from molexp.workflow import (
        Actor,
        ActorContext,
        Caching,
        Task,
        TaskContext,
        TaskSnapshot,
        TaskStatus,
        Workflow,
        WorkflowBuilder,
        WorkflowFailed,
        WorkflowResult,
        WorkflowSnapshotRef,
        join,
        parallel_map,
        workflow,
    )
    from molexp.workflow.bindings import promote_callable, set_workflow
    from molexp.workspace import (
        ErrorInfo,
        ExecutionRecord,
        Experiment,
        GridSpace,
        ParamSpace,
        ProfileConfig,
        Project,
        Run,
        RunContext,
        RunMetadata,
        RunStatus,
        UniformSpace,
        Workspace,
        derive_run_id,
        entry,
        reap_stale_runs,
    )
