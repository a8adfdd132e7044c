"""``DaskPlan``: a validated ``Workflow`` as index-addressed tasks ready for Dask submission.

Planning validates the graph (``WorkflowValidationError`` before anything is submitted), rejects
``Actor`` tasks (their channels are in-process queues that cannot span Dask workers) and
classifies each task body once, so the driver never inspects user code while running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from molexp.workflow._dask.worker import BodyKind, body_of
from molexp.workflow.errors import WorkflowValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from molexp.workflow.spec import TaskRegistration, Workflow

__all__ = ["DaskPlan", "PlannedTask", "plan_workflow"]


@dataclass(frozen=True, slots=True, eq=False)
class PlannedTask:
    """One task: its registration, body, and neighbours as indices into ``DaskPlan.tasks``."""

    index: int
    name: str
    registration: TaskRegistration
    kind: BodyKind
    body: Callable[..., Any]
    deps: tuple[int, ...]
    dependents: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class DaskPlan:
    """Every task of a workflow in registration order, with its roots and sinks."""

    workflow_name: str
    workflow_id: str
    tasks: tuple[PlannedTask, ...]
    names: tuple[str, ...]
    roots: tuple[int, ...]
    sinks: tuple[str, ...]


def plan_workflow(spec: Workflow) -> DaskPlan:
    """Validate ``spec`` and plan it for the Dask runtime."""
    spec.validate()
    registrations = list(spec.tasks.values())
    actors = [reg.name for reg in registrations if reg.is_actor]
    if actors:
        raise WorkflowValidationError(
            f"workflow {spec.name!r} cannot run on the Dask runtime: actor task(s) "
            f"{', '.join(map(repr, actors))} talk over in-process channels, which cannot span "
            "Dask workers; execute it with the default runtime"
        )
    names = tuple(reg.name for reg in registrations)
    position = {name: i for i, name in enumerate(names)}
    deps = [tuple(position[dep] for dep in reg.depends_on) for reg in registrations]
    dependents: list[list[int]] = [[] for _ in registrations]
    for i, task_deps in enumerate(deps):
        for dep in task_deps:
            dependents[dep].append(i)
    tasks = []
    for i, reg in enumerate(registrations):
        kind, body = body_of(reg.callable)
        tasks.append(PlannedTask(i, reg.name, reg, kind, body, deps[i], tuple(dependents[i])))
    return DaskPlan(
        workflow_name=spec.name,
        workflow_id=spec.workflow_id,
        tasks=tuple(tasks),
        names=names,
        roots=tuple(i for i, task_deps in enumerate(deps) if not task_deps),
        sinks=tuple(names[i] for i, after in enumerate(dependents) if not after),
    )
