"""Process-local registry binding compiled workflows to workspace experiments.

The workflow layer owns this binding so the workspace stays pure storage: an experiment is
identified here only by duck-typed attributes (``id`` and, when present, its project's ``id`` and
its workspace's ``root``), never by importing the workspace package.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import Workflow

__all__ = [
    "bound_workflows",
    "clear_bindings",
    "get_workflow",
    "promote_callable",
    "set_workflow",
]

BindingKey = tuple[str, str, str]

_lock = threading.Lock()
_registry: dict[BindingKey, Workflow] = {}


def experiment_key(experiment: Any) -> BindingKey:
    """The registry key of ``experiment``: (workspace root, project id, experiment id).

    Keyed by ``experiment.id`` as the seeds describe, qualified by project and workspace so two
    projects with a "baseline" experiment in one script never overwrite each other's binding.
    """
    experiment_id = getattr(experiment, "id", None)
    if not isinstance(experiment_id, str) or not experiment_id:
        raise TypeError(
            f"cannot bind a workflow to {experiment!r}: expected an experiment with a string `id`"
        )
    project = getattr(experiment, "project", None)
    workspace = getattr(project, "workspace", None) or getattr(experiment, "workspace", None)
    project_id = getattr(project, "id", "")
    root = getattr(workspace, "root", "")
    return (str(root), str(project_id), experiment_id)


def set_workflow(experiment: Any, spec: Workflow) -> Workflow:
    """Bind ``spec`` to ``experiment``; binding again replaces the earlier workflow."""
    from .spec import Workflow

    if not isinstance(spec, Workflow):
        raise TypeError(
            "set_workflow expects a compiled Workflow (from wf.build()), "
            f"got {type(spec).__name__}; wrap a bare callable with promote_callable(fn)"
        )
    key = experiment_key(experiment)
    with _lock:
        _registry[key] = spec
    return spec


def get_workflow(experiment: Any) -> Workflow | None:
    """The workflow bound to ``experiment`` in this process, or None."""
    with _lock:
        return _registry.get(experiment_key(experiment))


def bound_workflows() -> dict[BindingKey, Workflow]:
    """A snapshot of every binding made in this process."""
    with _lock:
        return dict(_registry)


def clear_bindings() -> None:
    """Forget every binding (used by tests and by the CLI between script imports)."""
    with _lock:
        _registry.clear()


def promote_callable(fn: Callable[[Any], Any], *, name: str | None = None) -> Workflow:
    """Wrap a callable taking a ``RunContext`` into a one-task ``Workflow``.

    The single task calls ``fn(ctx.run_context)`` (awaiting it when it is a coroutine function) and
    therefore needs a run: executing the result without one raises ``NoRunContextError``.
    """
    from .errors import NoRunContextError
    from .spec import WorkflowBuilder

    if not callable(fn):
        raise TypeError(f"promote_callable expects a callable, got {type(fn).__name__}")
    task_name = name or getattr(fn, "__name__", None) or "main"
    builder = WorkflowBuilder(name=task_name)

    if inspect.iscoroutinefunction(fn):

        async def run_async(ctx: Any) -> Any:
            if ctx.run_context is None:
                raise NoRunContextError(task_name, "run_context")
            return await fn(ctx.run_context)

        builder.task(name=task_name)(run_async)
    else:

        def run_sync(ctx: Any) -> Any:
            if ctx.run_context is None:
                raise NoRunContextError(task_name, "run_context")
            return fn(ctx.run_context)

        builder.task(name=task_name)(run_sync)
    return builder.build()
