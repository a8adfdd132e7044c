"""``WorkflowGraphCompiler``: a validated ``Workflow`` -> index plan + pydantic-graph ``Graph``.

The plan (``CompiledWorkflow``) holds one ``StepEntry`` per task with precomputed dependency and
dependent index tuples, so the trampoline never looks anything up by name while running. The
pydantic-graph ``Graph`` is the same for every workflow: a single ``WorkflowStep`` trampoline node.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from molexp.workflow._pydantic_graph.node import workflow_graph
from molexp.workflow.context import ActorContext, TaskContext

if TYPE_CHECKING:
    from molexp.workflow.spec import TaskRegistration, Workflow
    from pydantic_graph import Graph

__all__ = ["CompiledWorkflow", "StepEntry", "WorkflowGraphCompiler"]


class StepEntry:
    """One task of the plan: its registration, runner, neighbours (as indices) and level."""

    __slots__ = (
        "cache",
        "context_type",
        "dep_names",
        "dependents",
        "deps",
        "index",
        "level",
        "name",
        "registration",
        "remote",
        "runner",
    )

    def __init__(
        self,
        index: int,
        registration: TaskRegistration,
        deps: tuple[int, ...],
        dependents: tuple[int, ...],
        level: int,
    ) -> None:
        self.index = index
        self.name = registration.name
        self.registration = registration
        self.runner = registration.runner
        self.deps = deps
        self.dep_names = registration.depends_on
        self.dependents = dependents
        self.level = level
        self.cache = registration.cache
        self.remote = registration.remote
        self.context_type: type[TaskContext] = (
            ActorContext if registration.is_actor else TaskContext
        )


@dataclass(frozen=True, slots=True, eq=False)
class CompiledWorkflow:
    """Everything the runtime needs to execute one workflow, computed once per ``Workflow``."""

    workflow_name: str
    workflow_id: str
    entries: tuple[StepEntry, ...]
    names: tuple[str, ...]
    indegree: tuple[int, ...]
    roots: tuple[int, ...]
    sinks: tuple[str, ...]
    uses_cache: bool
    graph: Graph


class WorkflowGraphCompiler:
    """Validates a ``Workflow`` and compiles it to a ``CompiledWorkflow`` (memoised per spec)."""

    def __init__(self) -> None:
        self._compiled: weakref.WeakKeyDictionary[Workflow, CompiledWorkflow] = (
            weakref.WeakKeyDictionary()
        )

    def compile(self, spec: Workflow) -> CompiledWorkflow:
        """Validate ``spec`` (raising ``WorkflowValidationError``) and return its plan."""
        compiled = self._compiled.get(spec)
        if compiled is None:
            compiled = self._compiled[spec] = _compile(spec)
        return compiled


def _compile(spec: Workflow) -> CompiledWorkflow:
    levels = spec.levels()  # validates first: raises WorkflowValidationError before anything runs
    registrations = list(spec.tasks.values())
    names = tuple(reg.name for reg in registrations)
    index = {name: i for i, name in enumerate(names)}
    deps = [tuple(index[dep] for dep in reg.depends_on) for reg in registrations]
    dependents: list[list[int]] = [[] for _ in registrations]
    for i, task_deps in enumerate(deps):
        for dep in task_deps:
            dependents[dep].append(i)
    level_of = {name: level for level, tier in enumerate(levels) for name in tier}
    entries = tuple(
        StepEntry(i, reg, deps[i], tuple(dependents[i]), level_of[reg.name])
        for i, reg in enumerate(registrations)
    )
    return CompiledWorkflow(
        workflow_name=spec.name,
        workflow_id=spec.workflow_id,
        entries=entries,
        names=names,
        indegree=tuple(len(task_deps) for task_deps in deps),
        roots=tuple(i for i, task_deps in enumerate(deps) if not task_deps),
        sinks=tuple(names[i] for i, after in enumerate(dependents) if not after),
        uses_cache=any(reg.cache for reg in registrations),
        graph=workflow_graph(),
    )
